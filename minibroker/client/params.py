"""Connection parameters, parsed from a ``minibroker://`` URL.

Rules:

1. The URL is ``minibroker://[user[:password]@]host[:port][/vhost][?option=value&...]``; the
   port defaults to 5680 (``minibroker.config.DEFAULT_PORT``) and the host to 127.0.0.1. Options:
   ``heartbeat``, ``max_frame_size``, ``channel_max`` (integers), ``connect_timeout``,
   ``close_timeout`` (seconds) and ``client_name``. Without user info the client logs in as
   guest/guest (the broker never picks a user).
4. The path names the vhost, percent-encoded as in AMQP URIs (``/orders``; ``/%2F`` is
   ``/``); no path, or ``/`` alone, is the default vhost ``/``.
5. ``minibrokers://`` is the same over TLS (default port 5681): the server's certificate is
   verified against ``cafile`` (else the system's CAs) and its host name; ``certfile`` and
   ``keyfile`` are the client's own certificate for a server that verifies peers.
2. Keyword arguments given to ``connect()`` override what the URL says.
3. ``None`` for a negotiated limit means "take the broker's proposal"; a value asks for at most
   that much (the broker's proposal is the ceiling, docs/protocol.md's Tune rule).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, unquote, urlsplit

from minibroker.config import DEFAULT_PORT
from minibroker.valueclass import valueclass

__all__ = ["DEFAULT_TLS_PORT", "DEFAULT_URL", "ConnectionParameters"]

#: The port ``minibrokers://`` URLs default to (rule 5).
DEFAULT_TLS_PORT = 5681

DEFAULT_URL = f"minibroker://127.0.0.1:{DEFAULT_PORT}"

_INT_OPTIONS = ("heartbeat", "max_frame_size", "channel_max")
_FLOAT_OPTIONS = ("connect_timeout", "close_timeout")
_TEXT_OPTIONS = ("client_name", "cafile", "certfile", "keyfile")


@valueclass(frozen=True)
class ConnectionParameters:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    #: Heartbeat interval to ask for, in seconds (0 disables); None takes the broker's.
    heartbeat: int | None = None
    max_frame_size: int | None = None
    channel_max: int | None = None
    client_name: str = "minibroker-python"
    #: Seconds allowed for the TCP connect plus the handshake.
    connect_timeout: float = 10.0
    #: Seconds to wait for the broker's close-ok before dropping the socket.
    close_timeout: float = 5.0
    #: The virtual host to open (rule 4).
    vhost: str = "/"
    #: TLS (``minibrokers://``, rule 5) and its files.
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> ConnectionParameters:
        """Parse ``url`` (rule 1), then apply the non-None ``overrides`` (rule 2)."""
        parts = urlsplit(url)
        shown = _without_password(url)
        if parts.scheme not in ("minibroker", "minibrokers"):
            hint = ""
            if parts.scheme in ("amqp", "amqps"):
                hint = (": amqp:// is for AMQP clients (pika, aio-pika, kombu); this native "
                        "client takes the same broker at minibroker://host:5680")
            raise ValueError(f"expected a minibroker:// URL, got {shown!r}{hint}")
        tls = parts.scheme == "minibrokers"
        values: dict[str, object] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            "tls": tls,
        }
        if parts.path not in ("", "/"):
            values["vhost"] = unquote(parts.path[1:])
        if parts.username is not None:
            values["username"] = unquote(parts.username)
            values["password"] = unquote(parts.password) if parts.password is not None else ""
        for key, raw in parse_qsl(parts.query):
            kind = int if key in _INT_OPTIONS else float if key in _FLOAT_OPTIONS else None
            if kind is not None:
                try:
                    values[key] = kind(raw)
                except ValueError:
                    expected = "an integer" if kind is int else "a number of seconds"
                    raise ValueError(f"connection option {key} must be {expected}, not {raw!r}"
                                     f" (in {shown!r})") from None
            elif key in _TEXT_OPTIONS:
                values[key] = raw
            else:
                raise ValueError(f"unknown connection option {key!r} in {shown!r}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise TypeError(f"unknown connection parameters: {', '.join(sorted(unknown))}")
        # (``values`` holds only field names, checked above, of the types parsed for them)
        return cls(**values)  # type: ignore[arg-type]


def _without_password(url: str) -> str:
    """``url`` fit for an error message: a password shows as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
