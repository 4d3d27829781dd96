"""``/api/bindings``: list, create (``POST`` answers ``Location``), show and delete by key.

Rules:

1. Paths name a binding by source, destination (``q/<queue>`` or ``e/<exchange>``) and its
   *properties key* (``render.properties_key``): the routing key, plus a hash of the arguments
   when there are any. ``POST`` answers 201 with ``Location: <destination>/<properties key>``
   (relative to the request path, as RabbitMQ's is).
2. The default exchange binds every queue by its name; those implicit bindings are listed
   (source ``""``), as RabbitMQ lists them, and cannot be created or deleted.
3. A source or destination that does not exist is 404 — ``Object Not Found`` for a read,
   ``not_found`` with the core's text for a ``POST``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from minibroker.core.commands import BindExchange, BindQueue, UnbindExchange, UnbindQueue
from minibroker.core.exchanges import DestinationKind
from minibroker.errors import AMQPError, NotFound
from minibroker.management import render
from minibroker.management.api import Api, Call, created, json_response, no_content
from minibroker.management.body import field_table, text
from minibroker.management.errors import NOT_FOUND, from_amqp
from minibroker.management.exchanges import exchange_name
from minibroker.management.listing import listing
from minibroker.management.queues import default_binding
from minibroker.protocols.http import Response

__all__ = ["ROUTES"]

_KINDS = {"q": DestinationKind.QUEUE, "e": DestinationKind.EXCHANGE}


def list_bindings(api: Api, call: Call) -> Response:
    items: list[dict[str, Any]] = []
    for vhost in api.vhosts(call):
        snapshot = api.core(vhost).snapshot()
        items.extend(default_binding(vhost, queue.name)
                     for queue in sorted(snapshot.queues, key=lambda queue: queue.name))
        items.extend(render.binding(vhost, binding) for binding in snapshot.bindings)
    return json_response(listing(items, call.query))


def _ends(api: Api, call: Call) -> tuple[str, str, DestinationKind, str]:
    """(vhost, source, destination kind, destination) of the path; 404 if either is missing."""
    vhost = call.params["vhost"]
    source = exchange_name(call.params["source"])
    kind = _KINDS[call.params["kind"]]
    destination = call.params["destination"]
    core = api.core(vhost)
    try:
        core.exchange_info(source)
        if kind is DestinationKind.QUEUE:
            core.queue_statistics(destination)
        else:
            core.exchange_info(exchange_name(destination))
    except NotFound:
        raise NOT_FOUND from None
    if kind is DestinationKind.EXCHANGE:
        destination = exchange_name(destination)
    return vhost, source, kind, destination


def _between(api: Api, call: Call) -> list[dict[str, Any]]:
    vhost, source, kind, destination = _ends(api, call)
    found = [
        render.binding(vhost, binding) for binding in api.core(vhost).snapshot().bindings
        if binding.source == source and binding.destination.kind is kind
        and binding.destination.name == destination
    ]
    if source == "" and kind is DestinationKind.QUEUE:
        found.insert(0, default_binding(vhost, destination))
    return found


def bindings_between(api: Api, call: Call) -> Response:
    return json_response(listing(_between(api, call), call.query))


def _the_binding(api: Api, call: Call) -> dict[str, Any]:
    for item in _between(api, call):
        if item["properties_key"] == call.params["props"]:
            return item
    raise NOT_FOUND


def show_binding(api: Api, call: Call) -> Response:
    return json_response(_the_binding(api, call))


def create_binding(api: Api, call: Call) -> Response:
    vhost = call.params["vhost"]
    source = exchange_name(call.params["source"])
    kind = _KINDS[call.params["kind"]]
    destination = call.params["destination"]
    obj = call.json()
    routing_key = text(obj, "routing_key")
    arguments = field_table(obj, "arguments")
    with api.channel(vhost, call.user) as channel:
        conn, number = channel.connection, channel.channel
        try:
            if kind is DestinationKind.QUEUE:
                channel.run(BindQueue(conn, number, destination, source, routing_key, arguments))
            else:
                channel.run(BindExchange(conn, number, exchange_name(destination), source,
                                         routing_key, arguments))
        except AMQPError as err:
            raise from_amqp(err) from None
    key = render.properties_key(routing_key, arguments)
    return created((("Location", f"{quote(destination, safe='')}/{quote(key, safe='~')}"),))


def delete_binding(api: Api, call: Call) -> Response:
    item = _the_binding(api, call)
    vhost, source, destination = item["vhost"], item["source"], item["destination"]
    with api.channel(vhost, call.user) as channel:
        conn, number = channel.connection, channel.channel
        key, arguments = item["routing_key"], _arguments_of(api, vhost, item)
        try:
            if item["destination_type"] == "queue":
                channel.run(UnbindQueue(conn, number, destination, source, key, arguments))
            else:
                channel.run(UnbindExchange(conn, number, destination, source, key, arguments))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content()


def _arguments_of(api: Api, vhost: str, item: dict[str, Any]) -> Any:
    """The binding's arguments as the core holds them (the JSON rendering may have changed
    their types: bytes became text), so unbinding names exactly that binding."""
    for binding in api.core(vhost).snapshot().bindings:
        if (binding.source == item["source"] and binding.destination.name == item["destination"]
                and binding.destination.kind.value == item["destination_type"]
                and render.properties_key(binding.binding_key, binding.arguments)
                == item["properties_key"]):
            return binding.arguments
    return {}


_BETWEEN = "/api/bindings/{vhost}/e/{source}/{kind:q|e}/{destination}"
ROUTES = [
    ("/api/bindings", {"GET": list_bindings}),
    ("/api/bindings/{vhost}", {"GET": list_bindings}),
    (_BETWEEN, {"GET": bindings_between, "POST": create_binding}),
    (_BETWEEN + "/{props}", {"GET": show_binding, "DELETE": delete_binding}),
]
