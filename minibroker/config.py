"""Configuration: frozen dataclasses, built once by the CLI or the test toolkit.

Rules:

1. Defaults are safe for a developer's machine: listen on 127.0.0.1 only, on a port that does not
   collide with a RabbitMQ on the same host (never 5672).
2. Limits that a peer can lower during the handshake (frame size, channels, heartbeat) are the
   server's proposal; the protocol sessions negotiate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DEFAULT_PORT", "LoopKind", "ServerConfig"]

#: The default listening port: next to RabbitMQ's 5672 without colliding with it.
DEFAULT_PORT = 5680

LoopKind = Literal["auto", "asyncio", "uvloop"]


def _default_users() -> dict[str, str]:
    return {"guest": "guest"}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    #: The port serving both protocols (chosen by the first 8 bytes); 0 = any free port.
    port: int = DEFAULT_PORT
    #: An optional second port that serves AMQP 0-9-1 only; ``None`` = no such port.
    amqp_port: int | None = None
    #: Largest frame the server accepts and proposes (AMQP frame-max, native max frame size).
    max_frame_size: int = 131072
    channel_max: int = 2047
    #: Heartbeat interval the server proposes, in seconds (0 disables).
    heartbeat: int = 60
    #: Users allowed to log in (AMQP PLAIN/AMQPLAIN; the native hello's credentials).
    users: dict[str, str] = field(default_factory=_default_users)
    #: Log every frame in both directions, decoded (logger ``minibroker.trace``).
    trace: bool = False
    #: Seconds to wait for clients to close after telling them the broker is shutting down.
    shutdown_grace: float = 1.0
    #: Seconds a new socket has to complete its protocol handshake before it is dropped
    #: (RabbitMQ's ``handshake_timeout`` is 10 s): half-open connections must not pile up.
    handshake_timeout: float = 10.0
