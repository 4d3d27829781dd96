"""Minimal load-generating clients, one per protocol, behind one interface (:class:`Conn`).

Rules:

1. The broker, not the client, must be the bottleneck: publishes are pre-encoded frames written
   in batches (``publish_frame(...) * n``), the acks for one read are written in one go, and the
   hot callbacks receive whole reads (``on_deliver(tags, bodies)``, ``on_confirm(max_tag)``).
2. The same scenario code drives the native protocol (our ``NativeCodec``) and AMQP 0-9-1 (our
   ``AMQPCodec``, so it works against RabbitMQ too); only this module knows the frames.
3. Control calls (declare, bind, purge, consume ...) are request/reply and may be pipelined:
   :meth:`Conn.pipeline` writes many requests and then awaits as many replies.
4. Writers honour TCP backpressure: ``pause_writing`` clears :attr:`Conn.writable`, and a
   flooding publisher awaits it, so memory grows in the broker, never in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from harness import Broker

from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_basic_ack
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

DeliverHandler = Callable[[list[int], list[bytes]], None]
ConfirmHandler = Callable[[int], None]


def _ignore_deliveries(tags: list[int], bodies: list[bytes]) -> None:
    raise RuntimeError(f"unexpected deliveries {tags[:3]}...")


def _drop(tags: list[int], bodies: list[bytes]) -> None:
    pass  # late deliveries while closing (no-ack consumers)


def _ignore_confirms(tag: int) -> None:
    pass


class Conn(asyncio.Protocol):
    """One connection with one channel (number 1); subclasses speak one protocol."""

    protocol = ""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.replies: asyncio.Queue[object] = asyncio.Queue()
        self.on_deliver: DeliverHandler = _ignore_deliveries
        self.on_confirm: ConfirmHandler = _ignore_confirms
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def reply(self, kind: type) -> object:
        got = await asyncio.wait_for(self.replies.get(), 60)
        if not isinstance(got, kind):
            raise RuntimeError(f"{self.protocol}: expected {kind.__name__}, got {got!r}")
        return got

    async def pipeline(self, requests: list[bytes], kind: type) -> None:
        """Rule 3: write every request at once, then await one reply of ``kind`` for each."""
        self.write(b"".join(requests))
        for _ in requests:
            await self.reply(kind)

    # -- the operations, per protocol ------------------------------------------------------
    def publish_frame(self, exchange: str, routing_key: str, body: bytes) -> bytes:
        raise NotImplementedError

    def acks(self, tags: list[int]) -> bytes:
        raise NotImplementedError

    def bind_frame(self, queue: str, exchange: str, binding_key: str) -> bytes:
        raise NotImplementedError

    async def bind(self, queue: str, exchange: str, binding_keys: list[str]) -> None:
        raise NotImplementedError

    async def declare_queue(self, queue: str) -> None:
        raise NotImplementedError

    async def delete_queue(self, queue: str) -> None:
        raise NotImplementedError

    async def declare_exchange(self, exchange: str, kind: str) -> None:
        raise NotImplementedError

    async def delete_exchange(self, exchange: str) -> None:
        raise NotImplementedError

    async def purge(self, queue: str) -> None:
        raise NotImplementedError

    async def confirm_select(self) -> None:
        raise NotImplementedError

    async def consume(self, queue: str, prefetch: int, no_ack: bool) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class NativeConn(Conn):
    protocol = "native"

    def __init__(self) -> None:
        super().__init__()
        self.codec = NativeCodec(role="client")

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        tags: list[int] = []
        bodies: list[bytes] = []
        for frame in self.codec.frames():
            if type(frame) is f.Deliver:
                tags.append(frame.delivery_tag)
                bodies.append(frame.body)
            elif type(frame) is f.ConfirmAck:
                self.on_confirm(frame.delivery_tag)
            elif isinstance(frame, f.ConfirmNack):
                raise RuntimeError(f"publish nacked: {frame}")
            else:
                self.replies.put_nowait(frame)
        if tags:
            self.on_deliver(tags, bodies)

    def send(self, *frames: f.Frame) -> None:
        self.write(self.codec.send_many(frames))

    async def call(self, frame: f.Frame, kind: type) -> object:
        self.send(frame)
        return await self.reply(kind)

    def publish_frame(self, exchange: str, routing_key: str, body: bytes) -> bytes:
        return self.codec.send(f.Publish(1, exchange, routing_key, False, Properties(), body))

    def acks(self, tags: list[int]) -> bytes:
        return self.codec.send_many([f.Ack(1, tag) for tag in tags])

    def bind_frame(self, queue: str, exchange: str, binding_key: str) -> bytes:
        return self.codec.send(f.QueueBind(1, queue, exchange, binding_key, {}))

    async def bind(self, queue: str, exchange: str, binding_keys: list[str]) -> None:
        await self.pipeline([self.bind_frame(queue, exchange, key) for key in binding_keys],
                            f.QueueBindOk)

    async def declare_queue(self, queue: str) -> None:
        await self.call(f.QueueDeclare(1, queue, False, False, False, False, {}), f.QueueDeclareOk)

    async def delete_queue(self, queue: str) -> None:
        await self.call(f.QueueDelete(1, queue, False, False), f.QueueDeleteOk)

    async def declare_exchange(self, exchange: str, kind: str) -> None:
        await self.call(f.ExchangeDeclare(1, exchange, kind, False, False, False, False, {}),
                        f.ExchangeDeclareOk)

    async def delete_exchange(self, exchange: str) -> None:
        await self.call(f.ExchangeDelete(1, exchange, False), f.ExchangeDeleteOk)

    async def purge(self, queue: str) -> None:
        await self.call(f.QueuePurge(1, queue), f.QueuePurgeOk)

    async def confirm_select(self) -> None:
        await self.call(f.ConfirmSelect(1), f.ConfirmSelectOk)

    async def consume(self, queue: str, prefetch: int, no_ack: bool) -> None:
        await self.call(f.Qos(1, prefetch, False), f.QosOk)
        await self.call(f.Consume(1, queue, "", no_ack, False, {}), f.ConsumeOk)

    async def close(self) -> None:
        self.on_deliver = _drop
        if self.transport is not None and not self.transport.is_closing():
            await self.call(f.ConnectionClose(200, "bench done"), f.ConnectionCloseOk)
            self.transport.close()


class AMQPConn(Conn):
    protocol = "AMQP"

    def __init__(self) -> None:
        super().__init__()
        self.codec = AMQPCodec(role="client")

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        tags: list[int] = []
        bodies: list[bytes] = []
        for frame in self.codec.frames():
            if type(frame) is ContentMethod:
                deliver = frame.method
                assert isinstance(deliver, m.BasicDeliver), deliver
                tags.append(deliver.delivery_tag)
                bodies.append(frame.body)
            elif type(frame) is MethodFrame:
                method = frame.method
                if type(method) is m.BasicAck:
                    self.on_confirm(method.delivery_tag)
                elif isinstance(method, m.BasicNack):
                    raise RuntimeError(f"publish nacked: {method}")
                else:
                    self.replies.put_nowait(method)
        if tags:
            self.on_deliver(tags, bodies)

    def send(self, method: m.Method, channel: int = 1) -> None:
        self.write(self.codec.encode_method(channel, method))

    async def call(self, method: m.Method, kind: type, channel: int = 1) -> object:
        self.send(method, channel)
        return await self.reply(kind)

    def publish_frame(self, exchange: str, routing_key: str, body: bytes) -> bytes:
        return self.codec.encode_content(
            1, m.BasicPublish(exchange=exchange, routing_key=routing_key), Properties(), body)

    def acks(self, tags: list[int]) -> bytes:
        return b"".join([encode_basic_ack(1, tag) for tag in tags])

    def bind_frame(self, queue: str, exchange: str, binding_key: str) -> bytes:
        return self.codec.encode_method(
            1, m.QueueBind(queue=queue, exchange=exchange, routing_key=binding_key))

    async def bind(self, queue: str, exchange: str, binding_keys: list[str]) -> None:
        await self.pipeline([self.bind_frame(queue, exchange, key) for key in binding_keys],
                            m.QueueBindOk)

    async def declare_queue(self, queue: str) -> None:
        await self.call(m.QueueDeclare(queue=queue), m.QueueDeclareOk)

    async def delete_queue(self, queue: str) -> None:
        await self.call(m.QueueDelete(queue=queue), m.QueueDeleteOk)

    async def declare_exchange(self, exchange: str, kind: str) -> None:
        await self.call(m.ExchangeDeclare(exchange=exchange, exchange_type=kind),
                        m.ExchangeDeclareOk)

    async def delete_exchange(self, exchange: str) -> None:
        await self.call(m.ExchangeDelete(exchange=exchange), m.ExchangeDeleteOk)

    async def purge(self, queue: str) -> None:
        await self.call(m.QueuePurge(queue=queue), m.QueuePurgeOk)

    async def confirm_select(self) -> None:
        await self.call(m.ConfirmSelect(), m.ConfirmSelectOk)

    async def consume(self, queue: str, prefetch: int, no_ack: bool) -> None:
        await self.call(m.BasicQos(prefetch_count=prefetch), m.BasicQosOk)
        await self.call(m.BasicConsume(queue=queue, no_ack=no_ack), m.BasicConsumeOk)

    async def close(self) -> None:
        self.on_deliver = _drop
        if self.transport is not None and not self.transport.is_closing():
            await self.call(m.ConnectionClose(reply_code=200, reply_text="bench done"),
                            m.ConnectionCloseOk, 0)
            self.transport.close()


async def open_native(broker: Broker) -> Conn:
    _, conn = await asyncio.get_running_loop().create_connection(NativeConn, broker.host,
                                                                 broker.port)
    conn.write(conn.codec.send_preamble())
    conn.send(f.Hello("minibroker-bench", "guest", "guest"))
    hello = await conn.reply(f.HelloOk)
    assert isinstance(hello, f.HelloOk)
    await conn.call(f.Tune(hello.max_frame_size, hello.channel_max, 0), f.TuneOk)
    await conn.call(f.ChannelOpen(1), f.ChannelOpenOk)
    return conn


async def open_amqp(broker: Broker, kind: type[AMQPConn] = AMQPConn) -> Conn:
    _, conn = await asyncio.get_running_loop().create_connection(kind, broker.host,
                                                                 broker.port)
    conn.write(PROTOCOL_HEADER)
    await conn.reply(m.ConnectionStart)
    response = f"\0{broker.user}\0{broker.password}".encode()
    tune = await conn.call(m.ConnectionStartOk({"product": "minibroker-bench"}, "PLAIN", response),
                           m.ConnectionTune, 0)
    assert isinstance(tune, m.ConnectionTune)
    frame_max = min(tune.frame_max, 131072) if tune.frame_max else 131072
    conn.send(m.ConnectionTuneOk(tune.channel_max, frame_max, 0), 0)
    conn.codec.frame_max = frame_max
    await conn.call(m.ConnectionOpen(virtual_host=broker.vhost), m.ConnectionOpenOk, 0)
    await conn.call(m.ChannelOpen(), m.ChannelOpenOk)
    return conn


OPENERS = {"native": open_native, "AMQP": open_amqp}
