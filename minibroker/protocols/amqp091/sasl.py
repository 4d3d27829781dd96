"""SASL responses of AMQP 0-9-1 logins (connection.start-ok), read as RabbitMQ reads them.

Rules:

1. The mechanisms are RabbitMQ's defaults, ``PLAIN`` and ``AMQPLAIN`` (:data:`MECHANISMS`, in
   the order connection.start announces them). Any other name is 503 COMMAND_INVALID
   ``unknown authentication mechanism 'X'``.
2. ``PLAIN`` (RFC 4616 ``[authzid] NUL authcid NUL passwd``) is accepted with an *empty*
   authorization identity only, as RabbitMQ's ``rabbit_auth_mechanism_plain`` does: a response
   naming any authzid — another user's (``admin\\0guest\\0guest``) or the same one — is invalid,
   so it never logs in as either user. So is a response with a third NUL or without the second.
3. ``AMQPLAIN`` is a field table without its length prefix whose ``LOGIN`` and ``PASSWORD`` are
   long strings; anything else is invalid.
4. An invalid response is 502 SYNTAX_ERROR ``response invalid`` (or RabbitMQ's AMQPLAIN text).
   RabbitMQ never sends these: during the handshake it logs them and closes the socket without
   a connection.close. Only a refused login (403, ``core/access.py``) is told to the client, and
   only when the client announced the ``authentication_failure_close`` capability.
5. Names and passwords are UTF-8; invalid UTF-8 makes the response invalid.
"""

from __future__ import annotations

from minibroker.errors import CommandInvalid, FrameSyntaxError, ProtocolError
from minibroker.protocols.amqp091.fields import decode_table

__all__ = ["MECHANISMS", "read_response"]

MECHANISMS = ("PLAIN", "AMQPLAIN")


def read_response(mechanism: str, response: bytes) -> tuple[str, str]:
    """(user, password) from a connection.start-ok's ``mechanism`` and ``response``."""
    if mechanism == "PLAIN":
        return _plain(response)
    if mechanism == "AMQPLAIN":
        return _amqplain(response)
    raise CommandInvalid(f"unknown authentication mechanism '{mechanism}'")


def _plain(response: bytes) -> tuple[str, str]:
    # rabbit_auth_mechanism_plain:extract_user_pass/1: <<0, User, 0, Pass>> and nothing more.
    parts = response.split(b"\x00")
    if len(parts) != 3 or parts[0] != b"":
        raise FrameSyntaxError(f"response {response!r} invalid")
    try:
        return parts[1].decode("utf-8"), parts[2].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameSyntaxError(f"response {response!r} invalid") from None


def _amqplain(response: bytes) -> tuple[str, str]:
    try:
        table, _ = decode_table(len(response).to_bytes(4, "big") + response, 0)
    except ProtocolError:
        raise FrameSyntaxError(f"AMQPLAIN response {response!r} is not a field table") from None
    login, password = table.get("LOGIN"), table.get("PASSWORD")
    if not isinstance(login, str) or not isinstance(password, str):
        raise FrameSyntaxError(
            f"AMQPLAIN auth info {sorted(table)} is missing LOGIN or PASSWORD field")
    return login, password
