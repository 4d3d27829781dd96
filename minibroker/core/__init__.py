"""The sans-IO broker core: exchanges, queues, channels, consumers and acknowledgements.

Nothing in this package does I/O, reads a clock, draws random numbers or knows a wire format
(``tests/test_layering.py`` enforces it). Start reading at :mod:`minibroker.core.broker`.
"""

from minibroker.core.broker import Broker
from minibroker.message import Message, Properties

__all__ = ["Broker", "Message", "Properties"]
