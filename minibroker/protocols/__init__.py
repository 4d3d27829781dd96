"""Wire protocols: each a sans-IO codec plus a mapping onto core commands and effects.

Rule: one port serves every protocol; the first 8 bytes a client sends choose it. Both headers
are 8 bytes long: AMQP 0-9-1's ``AMQP\\x00\\x00\\x09\\x01`` and the native ``MBRK`` preamble.
Any header starting with ``AMQP`` goes to the AMQP session: its codec also accepts AMQP 0-9's
``AMQP\\x01\\x01\\x00\\x09`` (RabbitMQ speaks 0-9-1 to it) and answers any other version
with the header it supports (AMQP §4.2.2).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["AMQP_HEADER", "HEADER_NAMED", "NATIVE_HEADER", "PROTOCOL_HEADER_SIZE", "detect"]

PROTOCOL_HEADER_SIZE = 8
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
#: Must equal ``minibroker.protocols.native.codec.PREAMBLE`` (a test checks it).
NATIVE_HEADER = b"MBRK\x00\x01\x01\x00"


#: The protocols :func:`detect` can name by their header.
HEADER_NAMED = ("native", "amqp")


def detect(header: bytes) -> Literal["native", "amqp"] | None:
    """Which protocol the first 8 bytes of a connection ask for, if any we speak."""
    if header[:4] == b"AMQP":
        return "amqp"
    if header[:4] == NATIVE_HEADER[:4]:
        return "native"
    return None
