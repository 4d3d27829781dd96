"""Drive the management app through the real HTTP codec, with a real core and no sockets."""

from __future__ import annotations

import base64
import http.client
import io
import json
from dataclasses import dataclass, field
from typing import Any

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.management import ConnectionDetails, Listener, LocalBackend, ManagementApp
from minibroker.management.rates import RateSampler
from minibroker.message import FieldTable
from minibroker.protocols.http import HTTPCodec, Request


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Socket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def parse_response(data: bytes, method: str = "GET") -> Reply:
    response = http.client.HTTPResponse(_Socket(data), method=method)  # type: ignore[arg-type]
    response.begin()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                 response.read())


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """A broker, its management app, and helpers to play clients (as the shell would)."""

    broker: Broker = field(default_factory=Broker)
    clock: Clock = field(default_factory=Clock)
    details: dict[int, ConnectionDetails] = field(default_factory=dict)
    closed: list[tuple[int, str]] = field(default_factory=list)
    effects: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.backend = LocalBackend(
            {"/": self.broker}, self.clock,
            listener_list=[Listener("amqp", "127.0.0.1", 5680),
                           Listener("http", "127.0.0.1", 15680)],
            details=self.details.get, closer=self._close, on_effects=self.effects.extend,
            memory=lambda: 12_345_678,
        )
        self.sampler = RateSampler(self.backend)
        self.app = ManagementApp(self.backend, sampler=self.sampler)
        self.codec = HTTPCodec()

    def _close(self, connection: int, reason: str) -> bool:
        if connection not in self.broker.connections:
            return False
        self.closed.append((connection, reason))
        self.run(c.CloseConnection(connection))
        return True

    # -- playing clients ----------------------------------------------------------------------

    def run(self, command: c.Command) -> Any:
        return self.broker.handle(command, now=self.clock())

    def client(self, connection: int, *, port: int = 50000 + 1, user: str = "guest",
               properties: FieldTable | None = None, channels: int = 1) -> None:
        peer_port = 50000 + connection
        self.run(c.OpenConnection(connection, user, f"127.0.0.1:{peer_port}"))
        self.details[connection] = ConnectionDetails(
            "AMQP 0-9-1", "127.0.0.1", peer_port, "127.0.0.1", 5680,
            connected_at=1_700_000_000_000 + connection,
            client_properties=properties or {"product": "test", "capabilities": {}},
            frame_max=131072, channel_max=2047, heartbeat=60, recv_oct=100 * connection,
            send_oct=200 * connection, recv_cnt=3, send_cnt=4)
        for number in range(1, channels + 1):
            self.run(c.OpenChannel(connection, number))

    # -- HTTP ---------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, auth: tuple[str, str] | None = (
            "guest", "guest"), headers: dict[str, str] | None = None, raw: bytes | None = None,
    ) -> Reply:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if data:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        self.codec.receive_data("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + data)
        request = self.codec.next_frame()
        assert isinstance(request, Request)
        return parse_response(self.codec.send(self.app.handle(request)), method)

    def get(self, path: str, **kwargs: Any) -> Any:
        reply = self.request("GET", path, **kwargs)
        assert reply.status == 200, (reply.status, reply.body)
        return reply.json


def publish(world: World, exchange: str, routing_key: str, payload: str = "x",
            **extra: Any) -> dict[str, Any]:
    reply = world.request("POST", f"/api/exchanges/%2F/{exchange}/publish", {
        "routing_key": routing_key, "payload": payload, "payload_encoding": "string",
        "properties": {}, **extra})
    assert reply.status == 200, reply.body
    return reply.json  # type: ignore[no-any-return]
