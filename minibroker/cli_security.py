"""The command line's users, vhosts and TLS options (``cli.py`` adds them to its parser).

Rules:

1. ``--user NAME:PASSWORD`` (repeatable) replaces the default ``guest`` user; each is an
   administrator with full permissions on ``/``, or on the vhosts it names after an ``@``:
   ``--user app:s3cret@/,orders``. The split is at the first ``:`` and the last ``@``, so a
   password may hold ``:`` — one holding ``@`` is followed by an ``@`` and its vhosts
   (``--user app:p@ss@/``). A vhost a user names is created.
2. ``--vhost NAME`` (repeatable) creates a vhost; users get permissions on it only by naming it.
3. ``--allow-remote-guest`` lets ``guest`` log in from any address (RabbitMQ's
   ``loopback_users = none``); by default it may log in from loopback addresses only.
4. ``--tls-port`` needs ``--certfile`` (and ``--keyfile`` unless the key is in the certfile);
   ``--cafile`` trusts client certificates and ``--verify-peer`` requires one. A TLS option
   without ``--tls-port`` is a usage error, as is ``--verify-peer`` without ``--cafile``.
"""

from __future__ import annotations

import argparse
from typing import Any

from minibroker.tls import TLSConfigError, TLSSettings

__all__ = ["add_security_arguments", "parse_user", "security_options"]


def parse_user(text: str) -> tuple[str, str, tuple[str, ...]]:
    """Rule 1: ``NAME:PASSWORD[@VHOST,...]`` -> (name, password, vhosts)."""
    name, colon, rest = text.partition(":")
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD[@VHOST,...], got {text!r}")
    password, at, vhosts = rest.rpartition("@")
    if not at:
        return name, rest, ("/",)
    names = tuple(vhost for vhost in vhosts.split(",") if vhost)
    if not names:
        raise argparse.ArgumentTypeError(f"no vhost after '@' in {text!r}")
    return name, password, names


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("users, vhosts and TLS")
    group.add_argument(
        "--user", action="append", default=[], type=parse_user, metavar="NAME:PASSWORD",
        help="a user (repeatable; replaces the default guest/guest): an administrator with "
        "full permissions on '/', or on the vhosts listed after '@' (NAME:PASSWORD@/,orders)",
    )
    group.add_argument("--vhost", action="append", default=[], metavar="NAME",
                       help="a virtual host besides '/' (repeatable)")
    group.add_argument("--allow-remote-guest", action="store_true",
                       help="let guest log in from any address (default: loopback only)")
    group.add_argument("--tls-port", type=int, default=None, metavar="PORT",
                       help="also serve both protocols over TLS on this port (AMQPS and "
                       "minibrokers://)")
    group.add_argument("--certfile", metavar="FILE", help="the server certificate (PEM)")
    group.add_argument("--keyfile", metavar="FILE",
                       help="its private key (PEM; default: in the certfile)")
    group.add_argument("--cafile", metavar="FILE",
                       help="CA certificates that sign trusted client certificates (PEM)")
    group.add_argument("--verify-peer", action="store_true",
                       help="require a client certificate signed by a --cafile CA")


def security_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The ``ServerConfig`` fields the options above set (a usage error through ``parser``)."""
    options: dict[str, Any] = {}
    if args.user:
        options["users"] = {name: password for name, password, _ in args.user}
        options["user_vhosts"] = {name: vhosts for name, _, vhosts in args.user}
    named = {vhost for _, _, vhosts in args.user for vhost in vhosts}
    options["vhosts"] = tuple(dict.fromkeys([*args.vhost, *sorted(named - {"/"})]))
    if args.allow_remote_guest:
        options["loopback_users"] = frozenset()
    tls_given = args.certfile or args.keyfile or args.cafile or args.verify_peer
    if args.tls_port is None:
        if tls_given:
            parser.error("--certfile, --keyfile, --cafile and --verify-peer need --tls-port")
        return options
    if not args.certfile:
        parser.error("--tls-port needs --certfile")
    try:
        options["tls"] = TLSSettings(args.certfile, args.keyfile, args.cafile, args.verify_peer)
    except TLSConfigError as exc:
        parser.error(str(exc))
    options["tls_port"] = args.tls_port
    return options
