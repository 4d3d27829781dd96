"""``/api/exchanges``: list, show, declare, delete, publish, and an exchange's bindings.

Rules:

1. The default exchange is named ``""`` in answers and ``amq.default`` in paths (RabbitMQ's
   convention: a path segment cannot be empty).
2. ``PUT`` declares as ``exchange.declare`` does (``type`` defaults to ``direct``; ``durable``,
   ``auto_delete``, ``internal`` false; ``arguments``): 201 when new, 204 when an equivalent one
   existed, 400 with the core's text otherwise; reserved ``amq.*`` names are 401
   ``not_authorised`` (RabbitMQ's answer to ACCESS_REFUSED).
3. ``POST .../publish`` publishes with ``mandatory`` set on the API's own channel and answers
   ``{"routed": false}`` when the core returns the message unroutable; a publish the core
   refuses is 400 with the AMQP code and text (``"404 NOT_FOUND - no exchange ..."``).
"""

from __future__ import annotations

from typing import Any

from minibroker.core.commands import DeclareExchange, DeleteExchange, Publish
from minibroker.core.effects import Return
from minibroker.core.exchanges import DestinationKind
from minibroker.core.statistics import ExchangeInfo
from minibroker.errors import AMQPError, NotFound
from minibroker.management import render
from minibroker.management.api import Api, Call, created, json_response, no_content
from minibroker.management.body import field_table, flag, text
from minibroker.management.errors import NOT_FOUND, bad_request, from_amqp
from minibroker.management.listing import listing
from minibroker.management.messages import message_of
from minibroker.protocols.http import Response

__all__ = ["ROUTES", "exchange_name"]

DEFAULT_EXCHANGE_PATH = "amq.default"


def exchange_name(segment: str) -> str:
    """The exchange a path segment names (rule 1)."""
    return "" if segment == DEFAULT_EXCHANGE_PATH else segment


def _info(api: Api, vhost: str, name: str) -> ExchangeInfo | None:
    core = api.backend.core(vhost)
    if core is None:
        return None
    try:
        return core.exchange_info(name)
    except NotFound:
        return None


def list_exchanges(api: Api, call: Call) -> Response:
    items: list[dict[str, Any]] = []
    for vhost in api.vhosts(call):
        exchanges = api.core(vhost).snapshot().exchanges
        items.extend(render.exchange(vhost, info)
                     for info in sorted(exchanges, key=lambda info: info.name))
    return json_response(listing(items, call.query))


def show_exchange(api: Api, call: Call) -> Response:
    vhost = call.params["vhost"]
    info = _info(api, vhost, exchange_name(call.params["name"]))
    if info is None:
        raise NOT_FOUND
    out = render.exchange(vhost, info)
    out["incoming"] = []  # per-channel detail of RabbitMQ's "detailed" rates mode: not kept
    out["outgoing"] = []
    return json_response(out)


def declare_exchange(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], exchange_name(call.params["name"])
    obj = call.json()
    kind = text(obj, "type", "direct")
    durable, auto_delete = flag(obj, "durable"), flag(obj, "auto_delete")
    internal, arguments = flag(obj, "internal"), field_table(obj, "arguments")
    existed = _info(api, vhost, name) is not None
    with api.channel(vhost, call.user) as channel:
        try:
            channel.run(DeclareExchange(channel.connection, channel.channel, name, kind,
                                        durable=durable, auto_delete=auto_delete,
                                        internal=internal, arguments=arguments))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content() if existed else created()


def delete_exchange(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], exchange_name(call.params["name"])
    if _info(api, vhost, name) is None:
        raise NOT_FOUND
    with api.channel(vhost, call.user) as channel:
        try:
            channel.run(DeleteExchange(channel.connection, channel.channel, name,
                                       if_unused=call.query_flag("if-unused")))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content()


def publish(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], exchange_name(call.params["name"])
    message = message_of(name, call.json())
    with api.channel(vhost, call.user) as channel:
        try:
            outcome = channel.run(Publish(channel.connection, channel.channel, message,
                                          mandatory=True))
        except AMQPError as err:
            raise bad_request(str(err)) from None
    routed = not any(isinstance(effect, Return) and effect.connection == channel.connection
                     for effect in outcome.effects)
    return json_response({"routed": routed})


def _bindings(api: Api, call: Call, *, as_source: bool) -> Response:
    vhost, name = call.params["vhost"], exchange_name(call.params["name"])
    if _info(api, vhost, name) is None:
        raise NOT_FOUND
    items = [
        render.binding(vhost, binding) for binding in api.core(vhost).snapshot().bindings
        if (binding.source == name if as_source else
            binding.destination.kind is DestinationKind.EXCHANGE
            and binding.destination.name == name)
    ]
    return json_response(listing(items, call.query))


def source_bindings(api: Api, call: Call) -> Response:
    return _bindings(api, call, as_source=True)


def destination_bindings(api: Api, call: Call) -> Response:
    return _bindings(api, call, as_source=False)


ROUTES = [
    ("/api/exchanges", {"GET": list_exchanges}),
    ("/api/exchanges/{vhost}", {"GET": list_exchanges}),
    ("/api/exchanges/{vhost}/{name}", {"GET": show_exchange, "PUT": declare_exchange,
                                       "DELETE": delete_exchange}),
    ("/api/exchanges/{vhost}/{name}/publish", {"POST": publish}),
    ("/api/exchanges/{vhost}/{name}/bindings/source", {"GET": source_bindings}),
    ("/api/exchanges/{vhost}/{name}/bindings/destination", {"GET": destination_bindings}),
]
