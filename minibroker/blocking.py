"""The blocking client: the asyncio client driven from ordinary threads, no ``await``.

    with minibroker.blocking.connect("minibroker://127.0.0.1:5680") as conn:
        ch = conn.channel()
        q = ch.declare_queue("", exclusive=True)
        ch.publish("", q.name, b"hello")
        with ch.consume(q.name) as consumer:
            for delivery in consumer.iter(timeout=1.0):
                delivery.ack()

Rules:

1. Each blocking connection runs the asyncio client on its own event loop in a daemon thread;
   every method submits the matching coroutine to that loop and waits for its result. The
   semantics (errors, confirms, channel closes) are therefore exactly the asyncio client's.
2. The loop thread keeps reading while the caller's thread is busy: deliveries fill the
   consumer's buffer (bounded by the prefetch window) and heartbeats are answered.
3. Waiting for a delivery takes a ``timeout`` in seconds: :meth:`BlockingConsumer.receive`
   raises ``TimeoutError``; :meth:`BlockingConsumer.iter` simply ends after that much silence.
4. Calling a blocking method from the loop thread itself (e.g. from an ``on_return`` callback)
   would deadlock; it raises :class:`~minibroker.errors.ClientError` instead.
5. ``publish`` outside confirm mode pipelines: the caller's thread encodes the frame (so a
   message the wire cannot carry raises right there) and hands the bytes to the loop without
   waiting (``Channel.write_publish``; callbacks run in submission order, so a later request
   is still written after it). It waits for the loop every ``_SYNC_EVERY`` publishes and while
   the socket's buffer is full (``Connection.writable``, ``drain``), so the backlog between
   the threads stays bounded.
6. Only the asyncio client's public API is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar, Unpack

from minibroker.client.channel import Channel, QueueInfo
from minibroker.client.connection import Connection
from minibroker.client.connection import connect as _async_connect
from minibroker.client.consumer import Consumer, ConsumerStatistics
from minibroker.client.delivery import Delivery, MessageFields
from minibroker.client.params import DEFAULT_URL
from minibroker.client.publish import PublishProperties, encode_publish, message_properties
from minibroker.client.streams import Offset, StreamBatch
from minibroker.errors import ClientError
from minibroker.message import FieldTable, Properties
from minibroker.protocols.native.codec import NativeCodec

__all__ = [
    "BlockingChannel", "BlockingConnection", "BlockingConsumer", "BlockingDelivery", "connect",
]

_T = TypeVar("_T")
#: Publishes handed to the loop thread before the caller waits for it to catch up (rule 5).
_SYNC_EVERY = 256


class _LoopThread:
    """An event loop running in a daemon thread (rule 1)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="minibroker-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise ClientError("a blocking client method was called from the client's own "
                              "event-loop thread (e.g. a callback); it would deadlock")
        if self.loop.is_closed():
            coro.close()
            raise ClientError("the blocking connection is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s") from None

    def submit(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` in the loop thread soon, without waiting for it."""
        if self.loop.is_closed():
            raise ClientError("the blocking connection is closed")
        self.loop.call_soon_threadsafe(callback, *args)

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join()


def connect(
    url: str = DEFAULT_URL, *, username: str | None = None, password: str | None = None,
    heartbeat: int | None = None, max_frame_size: int | None = None,
    channel_max: int | None = None, client_name: str | None = None,
    connect_timeout: float | None = None, close_timeout: float | None = None,
) -> BlockingConnection:
    """Connect to a broker and return a :class:`BlockingConnection` (use it with ``with``)."""
    runner = _LoopThread()

    async def open_connection() -> Connection:
        return await _async_connect(
            url, username=username, password=password, heartbeat=heartbeat,
            max_frame_size=max_frame_size, channel_max=channel_max, client_name=client_name,
            connect_timeout=connect_timeout, close_timeout=close_timeout)

    try:
        connection = runner.run(open_connection())
    except BaseException:
        runner.stop()
        raise
    return BlockingConnection(connection, runner)


class BlockingConnection:
    def __init__(self, connection: Connection, runner: _LoopThread) -> None:
        self.connection = connection
        self._runner = runner

    @property
    def is_closed(self) -> bool:
        return self.connection.is_closed

    @property
    def server_version(self) -> str:
        return self.connection.server_version

    @property
    def heartbeat(self) -> int:
        return self.connection.heartbeat

    def channel(self) -> BlockingChannel:
        return BlockingChannel(self._runner.run(self.connection.channel()), self._runner)

    def close(self) -> None:
        """Close the connection (unacked messages return to their queues) and the loop."""
        try:
            if not self._runner.loop.is_closed():
                self._runner.run(self.connection.aclose())
        finally:
            self._runner.stop()

    def __enter__(self) -> BlockingConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class BlockingChannel:
    """The blocking twin of :class:`~minibroker.client.channel.Channel`."""

    def __init__(self, channel: Channel, runner: _LoopThread) -> None:
        self.channel = channel
        self._run = runner.run
        self._runner = runner
        self._unsynced = 0
        # Publishes are encoded in the caller's thread with a codec of their own (rule 5).
        self._encoder = NativeCodec(role="client",
                                    max_frame_size=channel.connection.max_frame_size)
        self._encoder_lock = threading.Lock()

    @property
    def number(self) -> int:
        return self.channel.number

    @property
    def is_closed(self) -> bool:
        return self.channel.is_closed

    def close(self) -> None:
        self._run(self.channel.aclose())

    def __enter__(self) -> BlockingChannel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def declare_exchange(
        self, exchange: str, type: str = "direct", *, passive: bool = False,
        durable: bool = False, auto_delete: bool = False, internal: bool = False,
        arguments: FieldTable | None = None,
    ) -> None:
        self._run(self.channel.declare_exchange(
            exchange, type, passive=passive, durable=durable, auto_delete=auto_delete,
            internal=internal, arguments=arguments))

    def delete_exchange(self, exchange: str, *, if_unused: bool = False) -> None:
        self._run(self.channel.delete_exchange(exchange, if_unused=if_unused))

    def bind_exchange(self, destination: str, source: str, routing_key: str = "",
                      arguments: FieldTable | None = None) -> None:
        self._run(self.channel.bind_exchange(destination, source, routing_key, arguments))

    def unbind_exchange(self, destination: str, source: str, routing_key: str = "",
                        arguments: FieldTable | None = None) -> None:
        self._run(self.channel.unbind_exchange(destination, source, routing_key, arguments))

    def declare_queue(
        self, queue: str = "", *, passive: bool = False, durable: bool = False,
        exclusive: bool = False, auto_delete: bool = False, arguments: FieldTable | None = None,
    ) -> QueueInfo:
        return self._run(self.channel.declare_queue(
            queue, passive=passive, durable=durable, exclusive=exclusive,
            auto_delete=auto_delete, arguments=arguments))

    def bind_queue(self, queue: str, exchange: str, routing_key: str = "",
                   arguments: FieldTable | None = None) -> None:
        self._run(self.channel.bind_queue(queue, exchange, routing_key, arguments))

    def unbind_queue(self, queue: str, exchange: str, routing_key: str = "",
                     arguments: FieldTable | None = None) -> None:
        self._run(self.channel.unbind_queue(queue, exchange, routing_key, arguments))

    def purge_queue(self, queue: str) -> int:
        return self._run(self.channel.purge_queue(queue))

    def delete_queue(self, queue: str, *, if_unused: bool = False,
                     if_empty: bool = False) -> int:
        return self._run(self.channel.delete_queue(queue, if_unused=if_unused,
                                                   if_empty=if_empty))

    def qos(self, prefetch_count: int = 0, *, global_: bool = False) -> None:
        self._run(self.channel.qos(prefetch_count, global_=global_))

    def confirm_select(self) -> None:
        self._run(self.channel.confirm_select())

    def recover(self, *, requeue: bool = True) -> None:
        self._run(self.channel.recover(requeue=requeue))

    def publish(
        self, exchange: str, routing_key: str, body: bytes | str, *, mandatory: bool = False,
        properties: Properties | None = None, **fields: Unpack[PublishProperties],
    ) -> None:
        """Publish; in confirm mode, return once the broker confirmed (or raise).

        Outside confirm mode the frame is encoded here and handed to the loop thread without
        waiting for it (rule 5); every ``_SYNC_EVERY`` publishes, and whenever the socket's
        buffer is full, the caller waits for the loop to catch up."""
        channel = self.channel
        properties = message_properties(properties, fields)
        if channel.confirm_mode or channel.is_closed:
            # (on a closed channel: the asyncio publish raises the channel's own error)
            self._run(channel.publish(exchange, routing_key, body, mandatory=mandatory,
                                      properties=properties))
            return
        connection = channel.connection
        with self._encoder_lock:  # a msgpack Packer is not thread-safe
            data, _ = encode_publish(self._encoder, channel.number, exchange, routing_key, body,
                                     mandatory, properties)
        # Written on the loop thread only if the channel is still open there: the broker may
        # have closed it since the test above, and a publish on a channel the broker has
        # forgotten would cost the whole connection (504).
        self._runner.submit(channel.write_publish, data)
        self._unsynced += 1
        if self._unsynced >= _SYNC_EVERY or not connection.writable:
            self._unsynced = 0
            self._run(connection.drain())

    def get(self, queue: str, *, no_ack: bool = False) -> BlockingDelivery | None:
        delivery = self._run(self.channel.get(queue, no_ack=no_ack))
        return None if delivery is None else BlockingDelivery(delivery, self._runner)

    def consume(self, queue: str, *, consumer_tag: str = "", no_ack: bool = False,
                exclusive: bool = False, arguments: FieldTable | None = None,
                offset: Offset | None = None) -> BlockingConsumer:
        """Start consuming now; use the result with ``with`` to cancel on exit. ``offset``:
        where to start in a stream (``client/streams.py``)."""
        consumer = self.channel.consume(queue, consumer_tag=consumer_tag, no_ack=no_ack,
                                        exclusive=exclusive, arguments=arguments, offset=offset)
        self._run(consumer.start())
        return BlockingConsumer(consumer, self._runner)

    def cancel(self, consumer_tag: str) -> None:
        self._run(self.channel.cancel(consumer_tag))

    def read(self, stream: str, offset: Offset, *, max_messages: int = 1000,
             max_bytes: int = 1 << 20, filter: str | Iterable[str] | None = None,
             match_unfiltered: bool = False) -> StreamBatch:
        """Read a stream without subscribing (``Channel.read``)."""
        return self._run(self.channel.read(stream, offset, max_messages=max_messages,
                                           max_bytes=max_bytes, filter=filter,
                                           match_unfiltered=match_unfiltered))

    def commit_offset(self, stream: str, name: str, offset: int) -> None:
        self._run(self.channel.commit_offset(stream, name, offset))

    def committed_offset(self, stream: str, name: str) -> int | None:
        return self._run(self.channel.committed_offset(stream, name))

    def publish_batch(
        self, exchange: str, routing_key: str,
        messages: Iterable[bytes | str | tuple[bytes | str, Properties]], *,
        mandatory: bool = False, properties: Properties | None = None,
        **fields: Unpack[PublishProperties],
    ) -> None:
        """Many messages in one frame (``Channel.publish_batch``)."""
        self._run(self.channel.publish_batch(exchange, routing_key, list(messages),
                                             mandatory=mandatory, properties=properties,
                                             **fields))

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        self._run(self.channel.ack(delivery_tag, multiple=multiple))

    def nack(self, delivery_tag: int, *, requeue: bool = True, multiple: bool = False) -> None:
        self._run(self.channel.nack(delivery_tag, requeue=requeue, multiple=multiple))

    def reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        self._run(self.channel.reject(delivery_tag, requeue=requeue))


class BlockingConsumer:
    """Deliveries of one consumer, waited for in the caller's thread (rule 3)."""

    def __init__(self, consumer: Consumer, runner: _LoopThread) -> None:
        self.consumer = consumer
        self._runner = runner

    @property
    def consumer_tag(self) -> str:
        return self.consumer.consumer_tag

    def receive(self, timeout: float | None = None) -> BlockingDelivery:
        """The next delivery; ``TimeoutError`` after ``timeout`` seconds without one,
        ``ClientError`` when the consumer has ended."""
        delivery = self._runner.run(_next_delivery(self.consumer, timeout))
        if delivery is None:
            raise ClientError(f"consumer {self.consumer.consumer_tag!r} has ended")
        return BlockingDelivery(delivery, self._runner)

    def iter(self, timeout: float | None = None) -> Iterator[BlockingDelivery]:
        """Deliveries until the consumer ends, or until ``timeout`` seconds pass without one."""
        while True:
            try:
                delivery = self._runner.run(_next_delivery(self.consumer, timeout))
            except TimeoutError:
                return
            if delivery is None:
                return
            yield BlockingDelivery(delivery, self._runner)

    def __iter__(self) -> Iterator[BlockingDelivery]:
        return self.iter()

    def cancel(self) -> None:
        self._runner.run(self.consumer.cancel())

    def close(self) -> None:
        """Cancel and requeue the deliveries not yet taken (like leaving ``async with``)."""
        self._runner.run(self.consumer.aclose())

    def statistics(self) -> ConsumerStatistics:
        return self.consumer.statistics()

    def __enter__(self) -> BlockingConsumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


async def _next_delivery(consumer: Consumer, timeout: float | None) -> Delivery | None:
    """The consumer's next delivery, None when it ended (a StopAsyncIteration cannot cross
    the thread boundary cleanly)."""
    try:
        async with asyncio.timeout(timeout):
            return await consumer.__anext__()
    except StopAsyncIteration:
        return None


class BlockingDelivery(MessageFields):
    """A :class:`~minibroker.client.delivery.Delivery` with blocking ack/nack/reject."""

    __slots__ = ("_runner", "body", "consumer_tag", "delivery", "delivery_tag", "exchange",
                 "message_count", "properties", "redelivered", "routing_key")

    def __init__(self, delivery: Delivery, runner: _LoopThread) -> None:
        self.delivery = delivery
        self._runner = runner
        self.body = delivery.body
        self.exchange = delivery.exchange
        self.routing_key = delivery.routing_key
        self.redelivered = delivery.redelivered
        self.delivery_tag = delivery.delivery_tag
        self.consumer_tag = delivery.consumer_tag
        self.properties = delivery.properties
        self.message_count = delivery.message_count

    @property
    def offset(self) -> int | None:
        """Its offset, when it came from a stream."""
        return self.delivery.offset

    @property
    def settled(self) -> bool:
        """True once acked, nacked or rejected, by itself or by a ``multiple`` of a later
        delivery (see :attr:`Delivery.settled <minibroker.client.delivery.Delivery.settled>`)."""
        return self.delivery.settled

    def ack(self, *, multiple: bool = False) -> None:
        self._runner.run(self.delivery.ack(multiple=multiple))

    def nack(self, *, requeue: bool = True, multiple: bool = False) -> None:
        self._runner.run(self.delivery.nack(requeue=requeue, multiple=multiple))

    def reject(self, *, requeue: bool = True) -> None:
        self._runner.run(self.delivery.reject(requeue=requeue))

    def __repr__(self) -> str:
        return f"<Blocking{repr(self.delivery)[1:]}"
