"""The command line: ``python -m minibroker`` (or ``minibroker``) runs a broker until signalled.

Rules:

1. Safe defaults: 127.0.0.1 and :data:`~minibroker.config.DEFAULT_PORT` (never AMQP's 5672).
2. Readiness is ONE line on stdout, flushed, printed only once every listener accepts:
   ``minibroker listening on minibroker://host:port (native) and amqp://... (AMQP 0-9-1)``.
   Scripts and tests wait for that line, never for a delay.
3. An address that cannot be listened on (a port in use, a host name that does not resolve) or a
   loop that is not installed is one line on stderr saying so in words, and exit code 2 (the
   usage-error code, like argparse's): no traceback, no stray warning.
4. SIGINT/SIGTERM shut down gracefully: stop accepting, tell clients (320 CONNECTION_FORCED),
   wait briefly (``shutdown_grace``), close, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import socket
import sys

from minibroker import __version__
from minibroker.config import DEFAULT_PORT, ServerConfig
from minibroker.core.generations import NEWEST, OLDEST, Profile
from minibroker.server.loop import loop_factory, run
from minibroker.server.server import BrokerServer

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_USAGE = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibroker",
        description="Run a minibroker message broker (RabbitMQ semantics) serving the native "
        "protocol and AMQP 0-9-1 on one port, until SIGINT or SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"minibroker {__version__}")
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default: %(default)s; use 0.0.0.0 to accept remote clients)",
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help="port serving both protocols, told apart by their first bytes; 0 picks any free "
        "port (default: %(default)s)",
    )
    parser.add_argument(
        "--amqp-port", type=_port, default=None, metavar="PORT",
        help="also listen on this port for AMQP 0-9-1 only (default: no such port)",
    )
    parser.add_argument(
        "--log-level", default="warning", type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="logging level on stderr (default: %(default)s)",
    )
    parser.add_argument(
        "--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
        help="event loop: uvloop when installed (auto), or force one (default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat", type=_uint16, default=ServerConfig().heartbeat, metavar="SECONDS",
        help="heartbeat interval proposed to clients; 0 disables heartbeats "
        "(default: %(default)s)",
    )
    defaults = ServerConfig()
    parser.add_argument(
        "--memory-high-water", type=_positive, default=defaults.memory_high_water,
        metavar="BYTES",
        help="block publishers while ready messages hold about this many bytes; resume them "
        "below 80%% of it (default: %(default)s = 256 MiB)",
    )
    parser.add_argument(
        "--queue-high-water", type=_positive, default=defaults.queue_high_water, metavar="N",
        help="block publishers while one queue has more than N ready messages; resume them "
        "at 80%% of it (default: %(default)s)",
    )
    parser.add_argument(
        "--rabbitmq-version", type=_rabbitmq_version, default=NEWEST, metavar="VERSION",
        help=f"answer as this RabbitMQ version where releases differ ({OLDEST} to {NEWEST}, "
        "e.g. 3.10: an unknown exchange type closes the connection with 503; see "
        "docs/compatibility.md) (default: %(default)s)",
    )
    parser.add_argument(
        "--trace", action="store_true",
        help="log every frame in both directions, decoded (logger minibroker.trace, stderr)",
    )
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0..65535)")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _rabbitmq_version(text: str) -> str:
    try:
        Profile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _uint16(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not in 0..65535")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.trace:
        logging.getLogger("minibroker.trace").setLevel(logging.INFO)
    config = ServerConfig(
        host=args.host, port=args.port, amqp_port=args.amqp_port, heartbeat=args.heartbeat,
        trace=args.trace, memory_high_water=args.memory_high_water,
        queue_high_water=args.queue_high_water, rabbitmq=args.rabbitmq_version,
    )
    try:
        loop_factory(args.loop)  # before any coroutine exists: a refusal leaves nothing behind
    except RuntimeError as exc:  # --loop uvloop without uvloop
        print(f"minibroker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(_serve(config), args.loop)


async def _serve(config: ServerConfig) -> int:
    server = BrokerServer(config)
    server.broker.profile = Profile(config.rabbitmq)  # before the first command
    try:
        await server.start()
    except OSError as exc:
        await server.close()
        print(f"minibroker: {_listen_error(exc, config)}", file=sys.stderr)
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"minibroker listening on {_listening(server)}", flush=True)
    await stop.wait()
    logging.getLogger("minibroker.server").info("shutting down")
    await server.close()
    return EXIT_OK


def _listening(server: BrokerServer) -> str:
    native = f"{server.url} (native)"
    if "amqp" not in server.adapters:
        return native
    return f"{native} and {server.amqp_url} (AMQP 0-9-1)"


def _listen_error(exc: OSError, config: ServerConfig) -> str:
    """Rule 3's one line: what could not be done, and why, in words."""
    if isinstance(exc, socket.gaierror):  # its errno is a getaddrinfo code, not an OS errno
        return (f"cannot listen on {config.host}: the host name does not resolve "
                f"({exc.strerror}); give an IP address or a name this machine resolves")
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc)
    return f"cannot listen on {config.host} port {_failed_port(exc, config)}: {reason}"


def _failed_port(exc: OSError, config: ServerConfig) -> int:
    """The port asyncio could not bind: its message names the address; else the main port."""
    found = re.search(r"\(['\"][^'\"]*['\"], (\d+)\)", str(exc))
    return int(found.group(1)) if found else config.port
