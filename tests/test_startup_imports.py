"""A start loads only what it uses (``docs/benchmarks.md``, "Start-up"): each check runs in a
fresh interpreter, since this one has imported everything already.

1. ``--help`` and usage errors load neither asyncio nor the server nor the core's broker
   (``cli.py`` rule 6), nor ``ssl`` (``tls.py`` rule 5).
2. A broker without a data directory or a management port loads no storage and no management
   code; with them, both.
3. ``minibroker.config`` does not load the core's broker (``minibroker.core`` imports
   ``Broker`` on first use).
"""

from __future__ import annotations

import subprocess
import sys

SERVE = """
import asyncio, sys, tempfile
from minibroker.config import ServerConfig
from minibroker.server.server import BrokerServer

async def main(config):
    server = BrokerServer(config)
    await server.start()
    await server.close()

with tempfile.TemporaryDirectory() as directory:
    asyncio.run(main(ServerConfig(port=0, {options})))
print(" ".join(sorted(sys.modules)))
"""


def modules_after(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    return set(result.stdout.split())


def test_help_loads_no_server_asyncio_or_ssl() -> None:
    loaded = modules_after(
        "import contextlib, io, sys\n"
        "from minibroker.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    assert "minibroker.cli" in loaded
    for module in ("asyncio", "ssl", "minibroker.server.server", "minibroker.core.broker"):
        assert module not in loaded, module


def test_in_memory_broker_without_management_loads_no_storage_or_management() -> None:
    loaded = modules_after(SERVE.format(options="management_port=None"))
    assert "minibroker.core.broker" in loaded
    for module in ("minibroker.storage.store", "minibroker.server.durability",
                   "minibroker.management.app", "minibroker.server.management"):
        assert module not in loaded, module


def test_data_dir_and_management_load_their_code() -> None:
    loaded = modules_after(SERVE.format(options="management_port=0, data_dir=directory"))
    for module in ("minibroker.storage.store", "minibroker.server.durability",
                   "minibroker.management.app", "minibroker.server.management"):
        assert module in loaded, module


def test_config_does_not_load_the_broker() -> None:
    loaded = modules_after("import sys, minibroker.config; print(' '.join(sorted(sys.modules)))")
    assert "minibroker.core.broker" not in loaded
