"""``/api/connections``, ``/api/channels``, ``/api/consumers``: the clients, as RabbitMQ shows them.

Rules:

1. A connection is named ``"<peer host>:<peer port> -> <host>:<port>"`` and a channel
   ``"<connection name> (<number>)"``; these names are the path keys.
2. ``DELETE /api/connections/{name}`` asks the shell to close that client connection with the
   ``X-Reason`` header as the reason (RabbitMQ's default: "Closed via management plugin").
3. The API's own short-lived connections never appear: they live only inside one request.
4. A user who is not ``monitoring`` (nor ``administrator``) sees only its own connections and
   their channels; naming another's is 401 (``authz.py`` rule 4).
"""

from __future__ import annotations

from typing import Any

from minibroker.management import render
from minibroker.management.api import Api, Call, json_response, no_content
from minibroker.management.authz import not_owner
from minibroker.management.errors import NOT_FOUND
from minibroker.management.listing import listing
from minibroker.management.render import Peer
from minibroker.protocols.http import Response

__all__ = ["DEFAULT_CLOSE_REASON", "ROUTES"]

DEFAULT_CLOSE_REASON = "Closed via management plugin"


def _connections(api: Api, call: Call, *, every: bool = False
                 ) -> list[tuple[str, dict[str, Any], Peer]]:
    """(vhost, rendered connection, peer) of every connection the call covers: those the
    user may see, or (``every``) all of them."""
    out = []
    for vhost in api.backend.vhosts() if every else api.vhosts(call):
        core = api.backend.core(vhost)
        if core is None:
            continue
        snapshot = core.snapshot()
        peers = api.peers(snapshot)
        for info in snapshot.connections:
            if not every and not call.viewer.owns(info.user):
                continue
            peer = peers[info.connection]
            rates = api.sampler.connection_rates(info.connection)
            out.append((vhost, render.connection(vhost, info, peer, api.node, rates), peer))
    out.sort(key=lambda item: item[2].name)
    return out


def list_connections(api: Api, call: Call) -> Response:
    return json_response(listing([item for _, item, _ in _connections(api, call)], call.query))


def _connection(api: Api, call: Call) -> tuple[str, dict[str, Any], Peer]:
    name = call.params["name"]
    for found in _connections(api, call, every=True):
        if found[2].name == name:
            if not call.viewer.owns(found[1]["user"]):
                raise not_owner()
            return found
    raise NOT_FOUND


#: RabbitMQ shows these as "" for one connection and as null in the list.
_TLS_FIELDS = ("peer_cert_issuer", "peer_cert_subject", "peer_cert_validity", "ssl_cipher",
               "ssl_hash", "ssl_key_exchange", "ssl_protocol")


def show_connection(api: Api, call: Call) -> Response:
    item = _connection(api, call)[1]
    return json_response({**item, **{key: "" for key in _TLS_FIELDS if key in item}})


def close_connection(api: Api, call: Call) -> Response:
    _, _, peer = _connection(api, call)
    reason = call.request.header("x-reason") or DEFAULT_CLOSE_REASON
    if not api.backend.close_connection(peer.connection, reason):
        raise NOT_FOUND
    return no_content()


def _channels(api: Api, call: Call, connection: int | None = None, *, every: bool = False
              ) -> list[dict[str, Any]]:
    """The channels the user may see, or (``every``) all of them."""
    out: list[dict[str, Any]] = []
    for vhost in api.backend.vhosts() if every else api.vhosts(call):
        core = api.backend.core(vhost)
        if core is None:
            continue
        snapshot = core.snapshot()
        peers = api.peers(snapshot)
        for info in snapshot.connections:
            if connection is not None and info.connection != connection:
                continue
            if not every and not call.viewer.owns(info.user):
                continue
            out.extend(render.channel(vhost, channel, peers[info.connection], api.node)
                       for channel in info.channels)
    out.sort(key=lambda item: item["name"])
    return out


def list_channels(api: Api, call: Call) -> Response:
    return json_response(listing(_channels(api, call), call.query))


def connection_channels(api: Api, call: Call) -> Response:
    _, _, peer = _connection(api, call)
    return json_response(listing(_channels(api, call, peer.connection, every=True),
                                 call.query))


def show_channel(api: Api, call: Call) -> Response:
    name = call.params["name"]
    for item in _channels(api, call, every=True):
        if item["name"] == name:
            if not call.viewer.owns(item["user"]):
                raise not_owner()
            consumers = [consumer for consumer in _consumers(api, call)
                         if consumer["channel_details"]["name"] == name]
            return json_response({**item, "consumer_details": consumers, "deliveries": [],
                                  "publishes": []})
    raise NOT_FOUND


def _consumers(api: Api, call: Call) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for vhost in api.vhosts(call):
        snapshot = api.core(vhost).snapshot()
        peers = api.peers(snapshot)
        single_active = {queue.name for queue in snapshot.queues
                         if queue.arguments.get("x-single-active-consumer") is True}
        out.extend(
            render.consumer(vhost, consumer, peers[consumer.connection], api.node,
                            single_active=consumer.queue in single_active)
            for consumer in snapshot.consumers if consumer.connection in peers
        )
    out.sort(key=lambda item: (item["queue"]["name"], item["consumer_tag"]))
    return out


def list_consumers(api: Api, call: Call) -> Response:
    return json_response(listing(_consumers(api, call), call.query))


ROUTES = [
    ("/api/connections", {"GET": list_connections}),
    ("/api/vhosts/{vhost}/connections", {"GET": list_connections}),
    ("/api/connections/{name}", {"GET": show_connection, "DELETE": close_connection}),
    ("/api/connections/{name}/channels", {"GET": connection_channels}),
    ("/api/channels", {"GET": list_channels}),
    ("/api/vhosts/{vhost}/channels", {"GET": list_channels}),
    ("/api/channels/{name}", {"GET": show_channel}),
    ("/api/consumers", {"GET": list_consumers}),
    ("/api/consumers/{vhost}", {"GET": list_consumers}),
]
