"""The handlers' toolbox: one request (:class:`Call`), the broker (:class:`Api`), JSON answers.

Rules:

1. A handler is ``handler(api, call) -> Response``: pure over the :class:`Api`, which reads the
   core through the backend and changes it only with core commands.
2. Commands run on a :class:`CommandChannel`: a core connection of the API's own, opened as the
   authenticated user for one request and closed before the answer (RabbitMQ's management
   plugin likewise opens a direct connection per operation). Closing it requeues what a
   ``get`` left unacknowledged, so nothing outlives the request.
3. JSON answers are UTF-8, compact, ``application/json``, never cached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from minibroker import __version__
from minibroker.core.commands import CloseConnection, Command, OpenChannel, OpenConnection
from minibroker.core.effects import Outcome
from minibroker.core.statistics import TopologySnapshot
from minibroker.management.authz import EVERYONE, Viewer
from minibroker.management.backend import Backend, CoreView
from minibroker.management.body import json_object
from minibroker.management.errors import NOT_FOUND, ApiError
from minibroker.management.rates import RateSampler
from minibroker.management.render import Peer, peer_of
from minibroker.protocols.http import Headers, Request, Response
from minibroker.valueclass import valueclass

__all__ = [
    "PRODUCT_NAME", "PRODUCT_VERSION", "RABBITMQ_VERSION", "Api", "Call", "CommandChannel",
    "created", "json_response", "no_content",
]

#: The RabbitMQ release whose management API this package reproduces (field names, answers).
RABBITMQ_VERSION = "3.10.8"
PRODUCT_NAME = "minibroker"
PRODUCT_VERSION = __version__
JSON_HEADERS: Headers = (
    ("Content-Type", "application/json"), ("Cache-Control", "no-cache"),
)


def json_response(value: Any, status: int = 200, headers: Headers = ()) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, JSON_HEADERS + headers, body)


def no_content() -> Response:
    return Response(204)


def created(headers: Headers = ()) -> Response:
    return Response(201, headers)


@valueclass(frozen=True)
class Call:
    """One authenticated API request as a handler sees it."""

    request: Request
    user: str
    #: Path parameters by name (``{vhost}`` -> ``"/"``), percent-decoded.
    params: Mapping[str, str]
    #: Query parameters, percent-decoded (the last of a repeated name wins).
    query: Mapping[str, str]
    #: What the user may see (``authz.py``).
    viewer: Viewer = EVERYONE

    def json(self) -> dict[str, Any]:
        return json_object(self.request.body)

    def query_flag(self, name: str) -> bool:
        return self.query.get(name, "false").lower() == "true"


class CommandChannel:
    """A short-lived core connection and channel for running commands (rule 2)."""

    CHANNEL = 1

    def __init__(self, backend: Backend, vhost: str, user: str) -> None:
        self.backend = backend
        self.vhost = vhost
        self.user = user
        self.connection = backend.new_connection_id()
        self.channel = self.CHANNEL

    def __enter__(self) -> CommandChannel:
        self.backend.execute(self.vhost, OpenConnection(self.connection, self.user,
                                                        peer="management API"))
        try:
            self.backend.execute(self.vhost, OpenChannel(self.connection, self.channel))
        except BaseException:
            self.backend.execute(self.vhost, CloseConnection(self.connection))
            raise
        return self

    def run(self, command: Command) -> Outcome:
        return self.backend.execute(self.vhost, command)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.backend.execute(self.vhost, CloseConnection(self.connection))


class Api:
    """The broker as the handlers see it: the backend, the rate sampler, names and versions."""

    def __init__(self, backend: Backend, sampler: RateSampler) -> None:
        self.backend = backend
        self.sampler = sampler

    @property
    def node(self) -> str:
        return self.backend.node

    def vhosts(self, call: Call) -> list[str]:
        """The vhosts a list endpoint covers: the one in the path, or all those the user may
        see."""
        vhost = call.params.get("vhost")
        if vhost is None:
            return [name for name in self.backend.vhosts() if call.viewer.sees(name)]
        self.core(vhost)
        return [vhost]

    def core(self, vhost: str) -> CoreView:
        """The vhost's core; ``404 Object Not Found`` when there is no such vhost."""
        core = self.backend.core(vhost)
        if core is None:
            raise NOT_FOUND
        return core

    def channel(self, vhost: str, user: str) -> CommandChannel:
        """A command channel in ``vhost``; 404 ``vhost_not_found`` when there is none (the
        answer RabbitMQ gives a write to a missing vhost)."""
        if self.backend.core(vhost) is None:
            raise ApiError(404, "not_found", "vhost_not_found")
        return CommandChannel(self.backend, vhost, user)

    def peers(self, snapshot: TopologySnapshot) -> dict[int, Peer]:
        """Every client connection of a snapshot, named as the API names it."""
        return {info.connection: peer_of(info, self.backend.connection_details(info.connection))
                for info in snapshot.connections}
