"""The command line: ``python -m minibroker`` (or ``minibroker``) runs a broker until signalled.

Rules:

1. Safe defaults: 127.0.0.1 and :data:`~minibroker.config.DEFAULT_PORT` (never AMQP's 5672).
2. Readiness is ONE line on stdout, flushed, printed only once every listener accepts:
   ``minibroker listening on minibroker://host:port (native) and amqp://... (AMQP 0-9-1)``,
   then `` and http://host:port/ (management)`` unless ``--no-management``.
   Scripts and tests wait for that line, never for a delay.
3. An address that cannot be listened on (a port in use, a host name that does not resolve) or a
   loop that is not installed is one line on stderr saying so in words, and exit code 2 (the
   usage-error code, like argparse's): no traceback, no stray warning.
4. SIGINT/SIGTERM shut down gracefully: stop accepting, tell clients (320 CONNECTION_FORCED),
   wait briefly (``shutdown_grace``), close, exit 0.
5. Storage: durable state lives in ``--data-dir`` (default ``$MINIBROKER_DATA_DIR``, else the
   per-user state directory, ``storage.resolve_data_dir``); ``--in-memory`` keeps nothing.
   The ready line ends with where data lives (or that nothing is kept); what recovery found
   goes to stderr before it. A data directory held by another broker is one line naming the
   directory and its PID, exit 2. ``minibroker export-definitions`` writes the definitions
   of a stopped broker's data directory as RabbitMQ's JSON.
6. ``--help``, ``--version`` and usage errors load neither the server nor asyncio: they are
   imported once the arguments are good (``docs/benchmarks.md``, "Start-up").
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import TYPE_CHECKING

from minibroker import __version__
from minibroker.cli_security import add_security_arguments, security_options
from minibroker.config import DEFAULT_PORT, ServerConfig
from minibroker.core.generations import NEWEST, OLDEST, Profile
from minibroker.storage.datadir import DEFAULT_DISK_FREE_LIMIT, resolve_data_dir
from minibroker.storage.errors import StorageError
from minibroker.tls import TLSConfigError

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_USAGE = 0, 2
#: Seconds between the ready line and tuning the collector (``server/collector.py``).
COLLECTOR_DELAY = 1.0
#: The management listener's default port (RabbitMQ's is 15672; ours sits beside our 5680).
DEFAULT_MANAGEMENT_PORT = 15680


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
        "--queue-credit", type=_non_negative, default=defaults.queue_credit, metavar="N",
        help="pause a connection that publishes into a queue with consumers and more than N "
        "ready messages, until the queue is down to N/2; other publishers go on; 0 turns this "
        "off (default: %(default)s)",
    )
    parser.add_argument(
        "--frame-timeout", type=_seconds, default=defaults.frame_timeout, metavar="SECONDS",
        help="close a connection that takes longer than this to complete a frame it began "
        "sending; 0 disables (default: %(default)s)",
    )
    parser.add_argument(
        "--consumer-timeout", type=_seconds, default=defaults.consumer_timeout, metavar="SECONDS",
        help="close with 406 a channel whose delivery stays unacknowledged longer than this "
        "(RabbitMQ's consumer_timeout); 0 disables (default: %(default)s)",
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
    management = parser.add_argument_group("management")
    management.add_argument(
        "--management-port", type=_port, default=DEFAULT_MANAGEMENT_PORT, metavar="PORT",
        help="serve RabbitMQ's management HTTP API, Prometheus metrics (/metrics) and a web "
        "page on this port; 0 picks any free port (default: %(default)s)",
    )
    management.add_argument(
        "--no-management", action="store_true",
        help="do not serve the management API, metrics or web page",
    )
    storage = parser.add_argument_group("storage")
    storage.add_argument(
        "--data-dir", metavar="PATH", default=None,
        help="where durable queues, exchanges, bindings and persistent messages are kept "
        "(default: $MINIBROKER_DATA_DIR, else the per-user state directory, e.g. "
        "~/.local/state/minibroker); one broker per directory",
    )
    storage.add_argument(
        "--in-memory", action="store_true",
        help="keep nothing on disk: every queue and message is gone after a restart",
    )
    storage.add_argument(
        "--sync", choices=["always", "never"], default="always",
        help="always: confirm a persistent message only after fdatasync; never: after the "
        "write to the OS (faster; a power cut may lose confirmed messages) "
        "(default: %(default)s)",
    )
    storage.add_argument(
        "--disk-free-limit", type=_non_negative, default=DEFAULT_DISK_FREE_LIMIT,
        metavar="BYTES",
        help="block publishers while the data directory's disk has less free space; 0 "
        "disables the check (default: %(default)s, RabbitMQ's 50 MB)",
    )
    storage.add_argument(
        "--definitions", metavar="FILE", default=None,
        help="load RabbitMQ definitions JSON (rabbitmqctl export_definitions) at start, as "
        "RabbitMQ's load_definitions; durable objects are then stored",
    )
    add_security_arguments(parser)
    return parser


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibroker export-definitions",
        description="Write the durable definitions (exchanges, queues, bindings) of a data "
        "directory as RabbitMQ definitions JSON, for rabbitmqctl import_definitions. The "
        "broker using the directory must be stopped.",
    )
    parser.add_argument("--data-dir", metavar="PATH", default=None,
                        help="the data directory (default: as for the broker)")
    parser.add_argument("--output", "-o", metavar="FILE", default="-",
                        help="where to write (default: stdout)")
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


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a non-negative integer")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export-definitions"]:
        return export_definitions(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.in_memory and args.data_dir is not None:
        parser.error("--in-memory and --data-dir exclude each other")
    data_dir = None if args.in_memory else str(resolve_data_dir(args.data_dir))
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.trace:
        logging.getLogger("minibroker.trace").setLevel(logging.INFO)
    config = ServerConfig(
        host=args.host, port=args.port, amqp_port=args.amqp_port, heartbeat=args.heartbeat,
        trace=args.trace, memory_high_water=args.memory_high_water,
        queue_high_water=args.queue_high_water, queue_credit=args.queue_credit,
        rabbitmq=args.rabbitmq_version,
        data_dir=data_dir, sync=args.sync, disk_free_limit=args.disk_free_limit,
        definitions_file=args.definitions, frame_timeout=args.frame_timeout,
        consumer_timeout=args.consumer_timeout,
        management_port=None if args.no_management else args.management_port,
        **security_options(parser, args),
    )
    from minibroker.server.loop import loop_factory, run  # rule 6

    try:
        loop_factory(args.loop)  # before any coroutine exists: a refusal leaves nothing behind
    except RuntimeError as exc:  # --loop uvloop without uvloop
        print(f"minibroker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(_serve(config), args.loop)


async def _serve(config: ServerConfig) -> int:
    import asyncio
    import signal

    from minibroker.server.collector import tune_collector
    from minibroker.server.server import BrokerServer

    server = BrokerServer(config)
    try:
        await server.start()
    except ValueError as exc:  # a definitions file that is not RabbitMQ's JSON (named: the
        # DefinitionsError it raises is a StorageError too, whose line names no file)
        await server.close()
        print(f"minibroker: {config.definitions_file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as exc:  # the data directory is in use, or of a newer format
        await server.close()
        print(f"minibroker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        await server.close()
        if exc.filename is not None:  # the data directory or the definitions file
            print(f"minibroker: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        else:
            print(f"minibroker: {_listen_error(exc, config)}", file=sys.stderr)
        return EXIT_USAGE
    except TLSConfigError as exc:  # a certificate or key that cannot be served
        await server.close()
        print(f"minibroker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in server.storage_lines:
        print(f"minibroker: {line}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    where = (f"; data in {config.data_dir}" if config.data_dir is not None
             else "; in memory only (nothing survives a restart)")
    print(f"minibroker listening on {_listening(server)}{where}", flush=True)
    # The broker owns this process (collector.py rule 1). A second after the ready line, not
    # before it: the full collection takes 5-9 ms, which the first connection of a starting
    # test suite would otherwise wait for (exec to first answer, bench/startup.py --exec).
    loop.call_later(COLLECTOR_DELAY, tune_collector)
    await stop.wait()
    logging.getLogger("minibroker.server").info("shutting down")
    await server.close()
    return EXIT_OK


def _listening(server: BrokerServer) -> str:
    native = f"{server.url} (native)"
    if "amqp" in server.adapters:
        native = f"{native} and {server.amqp_url} (AMQP 0-9-1)"
    if server.config.tls_port is not None:
        native = f"{native}, TLS on port {server.tls_port} (minibrokers://, amqps://)"
    if server.management_url is not None:
        native = f"{native} and {server.management_url} (management)"
    return native


def _listen_error(exc: OSError, config: ServerConfig) -> str:
    """Rule 3's one line: what could not be done, and why, in words."""
    import socket

    if isinstance(exc, socket.gaierror):  # its errno is a getaddrinfo code, not an OS errno
        return (f"cannot listen on {config.host}: the host name does not resolve "
                f"({exc.strerror}); give an IP address or a name this machine resolves")
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc)
    port = _failed_port(exc, config)
    if port == config.management_port and port not in (config.port, config.amqp_port):
        return (f"cannot listen on {config.host} port {port} for the management API: {reason}; "
                "choose another with --management-port, or --no-management")
    return f"cannot listen on {config.host} port {port}: {reason}"


def _failed_port(exc: OSError, config: ServerConfig) -> int:
    """The port asyncio could not bind: its message names the address; else the main port."""
    found = re.search(r"\(['\"][^'\"]*['\"], (\d+)\)", str(exc))
    return int(found.group(1)) if found else config.port


def export_definitions(argv: list[str]) -> int:
    """``minibroker export-definitions`` (rule 5)."""
    from minibroker.storage import definitions_json
    from minibroker.storage.files import OsFileSystem
    from minibroker.storage.recovered import RecoveryReport
    from minibroker.storage.recovery import replay_definitions

    args = build_export_parser().parse_args(argv)
    directory = resolve_data_dir(args.data_dir)
    if not directory.is_dir():
        print(f"minibroker: no data directory at {directory}", file=sys.stderr)
        return EXIT_USAGE
    fs = OsFileSystem()
    try:
        lock = fs.lock(str(directory / "LOCK"))
    except StorageError as exc:
        print(f"minibroker: {exc}; stop that broker first (a running broker's definitions "
              "come from its management API)", file=sys.stderr)
        return EXIT_USAGE
    try:
        state, _last = replay_definitions(fs, str(directory), RecoveryReport(clean=False))
        text = definitions_json.render(state.definitions())
    finally:
        lock.release()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    return EXIT_OK
