"""What an import costs: ``import minibroker`` and the pytest plugin load no broker; the
submodules are reachable as attributes all the same.

Each check runs in a fresh interpreter, where ``sys.modules`` starts empty of minibroker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(statement: str, setup: str = "") -> list[str]:
    """The modules ``statement`` adds to a fresh interpreter (after its startup and ``setup``)."""
    script = (
        "import json, sys\n"
        f"{setup}\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(json.dumps(sorted(set(sys.modules) - before - {'json'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return [name for name in loaded if not name.startswith("json.")]


def test_import_minibroker_loads_only_the_package() -> None:
    assert _loaded_after("import minibroker") == ["minibroker"]


def test_the_pytest_plugin_loads_no_broker_until_a_fixture_is_used() -> None:
    loaded = _loaded_after("import minibroker.testing.pytest_plugin", setup="import pytest")
    assert loaded == ["minibroker", "minibroker.testing", "minibroker.testing.pytest_plugin"]


def test_submodules_and_connect_are_reachable_from_the_package() -> None:
    script = (
        "import minibroker\n"
        "from minibroker.client import connect\n"
        "assert minibroker.connect is connect\n"
        "assert callable(minibroker.blocking.connect)\n"
        "assert minibroker.testing.running_broker is not None\n"
        "assert minibroker.core.Broker is not None\n"
        "assert 'blocking' in dir(minibroker) and 'connect' in dir(minibroker)\n"
        "try:\n"
        "    minibroker.no_such_thing\n"
        "except AttributeError as exc:\n"
        "    assert str(exc) == \"module 'minibroker' has no attribute 'no_such_thing'\"\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "from minibroker.testing import GotMessage, broker_in_thread\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.stdout == "ok\n", done.stderr


def test_every_public_testing_name_resolves() -> None:
    import minibroker.testing as testing

    for name in testing.__all__:
        assert getattr(testing, name) is not None, name
    assert sorted(testing.__all__) == testing.__all__
