"""``/api/queues``: list, show, declare, delete, purge, fetch messages, bindings of a queue.

Rules:

1. ``PUT`` declares as ``queue.declare`` does (``durable``, ``auto_delete``, ``exclusive``,
   ``arguments``; all false/empty by default): 201 when the queue is new, 204 when an
   equivalent one existed, 400 with the core's text when it is not equivalent.
2. ``DELETE`` takes ``if-empty`` and ``if-unused`` (query parameters, ``true``); a queue that
   does not exist is 404, a condition that fails 400 (RabbitMQ's answers).
3. ``POST .../get`` takes up to ``count`` messages with ``basic.get`` on the API's own channel,
   then settles them all at once by ``ackmode``: ``ack_requeue_false`` acknowledges,
   ``reject_requeue_false`` rejects without requeue (dead-lettering applies),
   ``ack_requeue_true`` / ``reject_requeue_true`` put them back, redelivered, where they were.
"""

from __future__ import annotations

from typing import Any

from minibroker.core.commands import Ack, DeclareQueue, DeleteQueue, Get, Nack, PurgeQueue
from minibroker.core.effects import GetOk
from minibroker.core.exchanges import DestinationKind
from minibroker.core.statistics import QueueStatistics, TopologySnapshot
from minibroker.errors import AMQPError, NotFound
from minibroker.management import render
from minibroker.management.api import Api, Call, created, json_response, no_content
from minibroker.management.body import field_table, flag, integer, require
from minibroker.management.errors import NOT_FOUND, bad_request, from_amqp
from minibroker.management.listing import listing
from minibroker.management.messages import ENCODINGS, rendered
from minibroker.protocols.http import Response

__all__ = ["ACKMODES", "ROUTES", "default_binding", "queue_exists"]

ACKMODES = ("ack_requeue_true", "ack_requeue_false", "reject_requeue_true",
            "reject_requeue_false")


def _exclusive_tags(snapshot: TopologySnapshot) -> dict[str, str]:
    return {consumer.queue: consumer.consumer_tag for consumer in snapshot.consumers
            if consumer.exclusive}


def queue_json(api: Api, vhost: str, stats: QueueStatistics, exclusive_tag: str | None
               ) -> dict[str, Any]:
    return render.queue(vhost, stats, api.node, api.sampler.queue_rates(vhost, stats.name),
                        exclusive_tag)


def list_queues(api: Api, call: Call) -> Response:
    items: list[dict[str, Any]] = []
    for vhost in api.vhosts(call):
        snapshot = api.core(vhost).snapshot()
        tags = _exclusive_tags(snapshot)
        items.extend(queue_json(api, vhost, stats, tags.get(stats.name))
                     for stats in sorted(snapshot.queues, key=lambda stats: stats.name))
    return json_response(listing(items, call.query))


def _statistics(api: Api, vhost: str, name: str) -> QueueStatistics:
    try:
        return api.core(vhost).queue_statistics(name)
    except NotFound:
        raise NOT_FOUND from None


def queue_exists(api: Api, vhost: str, name: str) -> bool:
    core = api.backend.core(vhost)
    if core is None:
        return False
    try:
        core.queue_statistics(name)
    except NotFound:
        return False
    return True


def show_queue(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    stats = _statistics(api, vhost, name)
    snapshot = api.core(vhost).snapshot()
    peers = api.peers(snapshot)
    out = queue_json(api, vhost, stats, _exclusive_tags(snapshot).get(name))
    sac = stats.arguments.get("x-single-active-consumer") is True
    out["consumer_details"] = [
        render.consumer(vhost, consumer, peers[consumer.connection], api.node, single_active=sac)
        for consumer in snapshot.consumers
        if consumer.queue == name and consumer.connection in peers
    ]
    out["deliveries"] = []  # per-channel detail of RabbitMQ's "detailed" rates mode: not kept
    out["incoming"] = []
    return json_response(out)


def declare_queue(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    obj = call.json()
    durable, auto_delete = flag(obj, "durable"), flag(obj, "auto_delete")
    exclusive, arguments = flag(obj, "exclusive"), field_table(obj, "arguments")
    existed = queue_exists(api, vhost, name)
    with api.channel(vhost, call.user) as channel:
        try:
            channel.run(DeclareQueue(channel.connection, channel.channel, name, durable=durable,
                                     exclusive=exclusive, auto_delete=auto_delete,
                                     arguments=arguments))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content() if existed else created()


def delete_queue(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    _statistics(api, vhost, name)
    with api.channel(vhost, call.user) as channel:
        try:
            channel.run(DeleteQueue(channel.connection, channel.channel, name,
                                    if_unused=call.query_flag("if-unused"),
                                    if_empty=call.query_flag("if-empty")))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content()


def purge_queue(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    _statistics(api, vhost, name)
    with api.channel(vhost, call.user) as channel:
        try:
            channel.run(PurgeQueue(channel.connection, channel.channel, name))
        except AMQPError as err:
            raise from_amqp(err) from None
    return no_content()


def get_messages(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    obj = call.json()
    require(obj, ("count", "ackmode", "encoding"))
    count = integer(obj, "count") or 0
    truncate = integer(obj, "truncate")
    ackmode, encoding = obj["ackmode"], obj["encoding"]
    if encoding not in ENCODINGS:
        raise bad_request("Unsupported encoding. Please use auto or base64.")
    if ackmode not in ACKMODES:
        raise bad_request(f"Unsupported ackmode {ackmode!r}. Please use one of "
                          f"{', '.join(ACKMODES)}.")
    messages: list[dict[str, Any]] = []
    with api.channel(vhost, call.user) as channel:
        conn, number = channel.connection, channel.channel
        last = 0
        try:
            for _ in range(max(count, 0)):
                reply = channel.run(Get(conn, number, name)).reply
                if not isinstance(reply, GetOk):
                    break
                last = reply.delivery_tag
                messages.append(rendered(reply, encoding=encoding, truncate=truncate))
        except AMQPError as err:
            raise from_amqp(err, prefixed=True) from None
        if last and ackmode == "ack_requeue_false":
            channel.run(Ack(conn, number, last, multiple=True))
        elif last:
            channel.run(Nack(conn, number, last, multiple=True,
                             requeue=ackmode != "reject_requeue_false"))
    return json_response(messages)


def default_binding(vhost: str, queue: str) -> dict[str, Any]:
    """The default exchange's implicit binding of every queue, which RabbitMQ lists."""
    return {
        "source": "", "vhost": vhost, "destination": queue, "destination_type": "queue",
        "routing_key": queue, "arguments": {}, "properties_key": render.properties_key(queue, {}),
    }


def queue_bindings(api: Api, call: Call) -> Response:
    vhost, name = call.params["vhost"], call.params["name"]
    _statistics(api, vhost, name)
    snapshot = api.core(vhost).snapshot()
    items = [default_binding(vhost, name)] + [
        render.binding(vhost, binding) for binding in snapshot.bindings
        if binding.destination.kind is DestinationKind.QUEUE and binding.destination.name == name
    ]
    return json_response(listing(items, call.query))


ROUTES = [
    ("/api/queues", {"GET": list_queues}),
    ("/api/queues/{vhost}", {"GET": list_queues}),
    ("/api/queues/{vhost}/{name}", {"GET": show_queue, "PUT": declare_queue,
                                    "DELETE": delete_queue}),
    ("/api/queues/{vhost}/{name}/contents", {"DELETE": purge_queue}),
    ("/api/queues/{vhost}/{name}/get", {"POST": get_messages}),
    ("/api/queues/{vhost}/{name}/bindings", {"GET": queue_bindings}),
]
