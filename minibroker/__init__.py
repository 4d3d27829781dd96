"""minibroker: a faithful, instant, pure-Python message broker.

Reading map (in order):

1. ``minibroker/message.py`` — what a message is.
2. ``minibroker/core/broker.py``, ``publishing.py``, ``delivery.py``, ``acks.py`` — commands
   in, replies and effects out; the life of a message.
3. ``minibroker/core/exchanges.py``, ``topic.py``, ``headers.py`` — routing.
4. ``minibroker/core/queues.py``, ``stores.py``, ``consumers.py``, ``channels.py`` — storage,
   whose turn it is, delivery tags, prefetch, acks.
5. ``minibroker/core/lifecycle.py``, ``features.py`` — TTL, dead-lettering, limits, priorities.
6. ``minibroker/protocols/`` — codecs: bytes in, frames out, no I/O.
7. ``minibroker/server/`` — the thin asyncio shell that joins sockets to the core.
8. ``minibroker/client/`` and ``minibroker/testing/`` — the native client and the test toolkit.
9. ``minibroker/management/`` — RabbitMQ's management HTTP API, metrics and the web page
   (``docs/management.md``).

``docs/architecture.md`` walks one message through these files.

Rule: ``import minibroker`` loads nothing else. ``minibroker.connect`` and the subpackages
(``minibroker.blocking``, ``minibroker.testing``...) are imported on first use (PEP 562), so a
program that needs only the CLI, the core or the test plugin does not pay for the client, and
``import minibroker; minibroker.blocking.connect(...)`` works without importing
``minibroker.blocking`` first.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "connect"]

#: Attributes imported on first use: name -> the module that defines it.
_LAZY_ATTRIBUTES = {"connect": "minibroker.client"}
#: Subpackages and modules reachable as attributes of the package.
_SUBMODULES = frozenset({
    "blocking", "cli", "client", "config", "core", "errors", "management", "message", "protocols",
    "server", "testing",
})

# Not ``typing.TYPE_CHECKING``: importing typing would cost several times what this module does
# (type checkers treat any constant of this name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and editors
    from typing import Any

    from minibroker import blocking as blocking
    from minibroker import cli as cli
    from minibroker import client as client
    from minibroker import config as config
    from minibroker import core as core
    from minibroker import errors as errors
    from minibroker import management as management
    from minibroker import message as message
    from minibroker import protocols as protocols
    from minibroker import server as server
    from minibroker import testing as testing
    from minibroker.client import connect as connect


def __getattr__(name: str) -> "Any":
    import importlib

    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_ATTRIBUTES, *_SUBMODULES})
