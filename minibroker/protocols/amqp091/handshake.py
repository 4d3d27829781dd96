"""The AMQP 0-9-1 handshake's vocabulary: what the server announces and how it reads logins.

Rules:

1. Advertise only what works end to end (``CAPABILITIES``): clients switch features on from
   this table (pika needs ``publisher_confirms`` and ``basic.nack`` for confirms, aiormq's
   default channel needs ``publisher_confirms``).
2. Logins: the SASL responses are read by ``sasl.py``, the credentials checked by the
   server's ``accounts.Login``.
3. Reply texts are RabbitMQ's ``"NAME - detail"`` and always fit a shortstr: a longer one is
   cut to 252 octets and ``"..."`` as RabbitMQ cuts it (at a character boundary here, so the
   text stays UTF-8).
"""

from __future__ import annotations

import sys

from minibroker import __version__
from minibroker.errors import REPLY_NAMES
from minibroker.message import FieldTable
from minibroker.protocols.amqp091.fields import encode_text

__all__ = ["CAPABILITIES", "LOGIN_REFUSED", "reply_text", "server_properties"]

#: What the broker advertises in connection.start. Only what works end to end.
CAPABILITIES: FieldTable = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "consumer_priorities": True,
    "direct_reply_to": True,
}

LOGIN_REFUSED = (
    "Login was refused using authentication mechanism {}. For details see the broker logfile."
)


def server_properties() -> FieldTable:
    return {
        "product": "minibroker",
        "version": __version__,
        "platform": f"Python {sys.version.split()[0]}",
        "copyright": "Copyright (c) the minibroker authors",
        "information": "Licensed under the MIT license",
        "capabilities": dict(CAPABILITIES),
    }


def reply_text(reply_code: int, text: str) -> str:
    """``"NAME - text"`` (RabbitMQ's convention), cut to fit a shortstr."""
    name = REPLY_NAMES.get(reply_code)
    if name and not text.startswith(name):
        text = f"{name} - {text}"
    if len(encode_text(text)) <= 255:
        return text
    kept: list[str] = []
    size = 0
    for char in text:  # whole characters only (a surrogate-escaped octet is one octet)
        size += len(encode_text(char))
        if size > 252:
            break
        kept.append(char)
    return "".join(kept) + "..."
