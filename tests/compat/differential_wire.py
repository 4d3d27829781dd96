"""Raw-frame differential scenarios: octets no client library would send, and the broker's exact
answer to them (reply codes, reply texts octet for octet, which side closes).

Rules:

1. A scenario gets a :class:`Wire` (one raw socket, handshake done unless it says otherwise)
   and returns what the broker answered as plain JSON data: each frame it sent as a short list
   (``["connection.close", 501, "FRAME_ERROR - ...", 0, 0]``), then ``["eof"]`` when it closed
   the socket, ``["quiet"]`` when it said nothing more within the wait.
2. Octets that are not UTF-8 (routing keys, exchange names, properties RabbitMQ passes on
   unchanged) appear in outcomes as hex, so the recording stays plain JSON.
3. Every wait is bounded: a read waits at most :data:`WAIT` seconds (RabbitMQ closes a refused
   handshake only after 3 s), never longer.
4. Names are unique per run and exclusive queues go away with their connection, so the same
   scenario can run against a shared RabbitMQ.
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.content import encode_properties
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_method
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER, PROTOCOL_HEADER_0_9

#: Longest wait for one answer (RabbitMQ drops a refused handshake after 3 seconds).
WAIT = 6.0
#: How long "nothing more" takes to be believed.
QUIET = 0.5

Outcome = list[Any]
WireScenario = Callable[["Wire"], Outcome]
WIRE_SCENARIOS: dict[str, WireScenario] = {}


def wire_scenario(fn: WireScenario) -> WireScenario:
    WIRE_SCENARIOS[fn.__name__] = fn
    return fn


def frame(ftype: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + end


def shortstr(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def publish_frames(channel: int, exchange: bytes, routing_key: bytes, body: bytes,
                   properties: bytes = b"\x00\x00") -> bytes:
    """basic.publish + content header + body, built from raw octets (any names at all)."""
    method = struct.pack(">HHH", 60, 40, 0) + shortstr(exchange) + shortstr(routing_key) + b"\x00"
    header = struct.pack(">HHQ", 60, 0, len(body)) + properties
    return (frame(1, channel, method) + frame(2, channel, header)
            + (frame(3, channel, body) if body else b""))


def raw_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, channel, payload) of every whole frame in ``data``."""
    out = []
    pos = 0
    while pos + 7 <= len(data):
        ftype, channel, size = struct.unpack_from(">BHI", data, pos)
        out.append((ftype, channel, data[pos + 7 : pos + 7 + size]))
        pos += 8 + size
    return out


def describe(event: object) -> list[Any]:
    """A frame the broker sent, as short JSON data (rule 1)."""
    if isinstance(event, MethodFrame):
        method = event.method
        if isinstance(method, m.ConnectionClose | m.ChannelClose):
            return [method.NAME, method.reply_code, method.reply_text, method.class_id,
                    method.method_id]
        return [method.NAME]
    if isinstance(event, ContentMethod):
        return [event.method.NAME]
    return [type(event).__name__]


class Wire:
    """One raw AMQP 0-9-1 socket to the broker under test."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672),
                                             timeout=WAIT)
        self.codec = AMQPCodec("client")
        self.raw = b""  # every octet received, for scenarios that look at them
        self.prefix = f"mbwire-{uuid.uuid4().hex[:10]}"
        self.closed = False

    # -- reading -------------------------------------------------------------------------------

    def next(self, wait: float = WAIT) -> Any:
        """The next frame the broker sent, ``"eof"`` or ``"quiet"`` (rule 3)."""
        while True:
            event = self.codec.next_frame()
            if event is not None:
                return event
            if self.closed:
                return "eof"
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                return "quiet"
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                return "eof"
            self.raw += data
            self.codec.receive_data(data)

    def answer(self, wait: float = WAIT) -> Outcome:
        """What the broker says to the last input: its frames up to a close, then whether the
        socket closed."""
        out: Outcome = []
        while True:
            event = self.next(wait if not out else QUIET)
            if event in ("eof", "quiet"):
                return [*out, [event]]
            out.append(describe(event))
            if isinstance(event, MethodFrame) and isinstance(event.method, m.ConnectionClose):
                # The broker now waits for close-ok; see whether it also closes by itself.
                return [*out, [self.next(QUIET)]]

    def expect(self, name: str) -> MethodFrame:
        event = self.next()
        assert isinstance(event, MethodFrame) and name == event.method.NAME, (name, event)
        return event

    # -- writing -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def call(self, channel: int, method: m.Method) -> None:
        self.send(encode_method(channel, method))

    def handshake(self, *, frame_max: int = 131072, channel_max: int = 2047,
                  header: bytes = PROTOCOL_HEADER) -> None:
        self.send(header)
        self.expect("connection.start")
        self.call(0, m.ConnectionStartOk({"capabilities": {"authentication_failure_close": True}},
                                         "PLAIN", b"\x00guest\x00guest"))
        self.expect("connection.tune")
        self.call(0, m.ConnectionTuneOk(channel_max, frame_max, 0))
        self.codec.frame_max = frame_max
        self.call(0, m.ConnectionOpen("/"))
        self.expect("connection.open-ok")

    def open_channel(self, channel: int = 1) -> None:
        self.call(channel, m.ChannelOpen())
        self.expect("channel.open-ok")

    def close(self) -> None:
        self.sock.close()


def run_wire_scenario(name: str, url: str) -> Outcome:
    wire = Wire(url)
    try:
        return WIRE_SCENARIOS[name](wire)
    finally:
        wire.close()


def opened(wire: Wire, frame_max: int = 131072) -> Wire:
    wire.handshake(frame_max=frame_max)
    wire.open_channel()
    return wire


# -- frame_max on every frame type ---------------------------------------------------------------


@wire_scenario
def frame_max_method_frame(wire: Wire) -> Outcome:
    opened(wire, 4096).call(1, m.QueueDeclare(queue="q", arguments={"x": "y" * 10_000}))
    return wire.answer()


@wire_scenario
def frame_max_content_header_frame(wire: Wire) -> Outcome:
    opened(wire, 4096).call(1, m.BasicPublish(routing_key="q"))
    properties = encode_properties(Properties(headers={"x": "y" * 10_000}))
    wire.send(frame(2, 1, struct.pack(">HHQ", 60, 0, 5) + properties))
    return wire.answer()


@wire_scenario
def frame_max_body_frame_and_its_slack(wire: Wire) -> Outcome:
    opened(wire, 4096)
    fits = publish_frames(1, b"", wire.prefix.encode(), b"x" * 4096)  # 8 octets of slack
    wire.send(fits)
    quiet = wire.answer(QUIET)
    wire.send(publish_frames(1, b"", wire.prefix.encode(), b"x" * 4097))
    return [quiet, wire.answer()]


# -- frame-error texts ---------------------------------------------------------------------------


@wire_scenario
def unknown_frame_type_texts(wire: Wire) -> Outcome:
    opened(wire).send(frame(9, 1, b"hello world, this is a long payload of more than 16 bytes"))
    return wire.answer()


@wire_scenario
def unknown_frame_type_binary_wraps_at_column_80(wire: Wire) -> Outcome:
    opened(wire).send(frame(9, 1, bytes([128] * 16)))
    return wire.answer()


@wire_scenario
def bad_frame_end_marker_text(wire: Wire) -> Outcome:
    opened(wire).send(frame(1, 1, b"abcdefghijklmnopq", end=b"\xff"))
    return wire.answer()


@wire_scenario
def oversized_unknown_frame_is_frame_too_large(wire: Wire) -> Outcome:
    opened(wire, 4096).send(struct.pack(">BHI", 9, 1, 5000))
    return wire.answer()


@wire_scenario
def heartbeat_on_a_channel(wire: Wire) -> Outcome:
    opened(wire).send(frame(8, 1, b""))
    return wire.answer()


@wire_scenario
def heartbeat_with_a_payload(wire: Wire) -> Outcome:
    opened(wire).send(frame(8, 0, b"abc"))
    return wire.answer()


@wire_scenario
def content_body_on_channel_0(wire: Wire) -> Outcome:
    opened(wire).send(frame(3, 0, b"hello"))
    return wire.answer()


@wire_scenario
def method_frame_without_method_id(wire: Wire) -> Outcome:
    opened(wire).send(frame(1, 1, b"\x00\x32"))
    return wire.answer()


@wire_scenario
def truncated_queue_declare_is_cannot_decode(wire: Wire) -> Outcome:
    payload = encode_method(1, m.QueueDeclare(queue="abcdef", arguments={"k": "v"}))[7:-1]
    opened(wire).send(frame(1, 1, payload[:-3]))
    return wire.answer()


@wire_scenario
def long_cannot_decode_text_is_cut_like_rabbitmq(wire: Wire) -> Outcome:
    payload = encode_method(1, m.QueueDeclare(queue="q" * 200, arguments={"k": "v"}))[7:-1]
    opened(wire).send(frame(1, 1, payload[:-3]))
    return wire.answer()


# -- octets that are not UTF-8 -------------------------------------------------------------------


@wire_scenario
def queue_declare_name_not_utf8(wire: Wire) -> Outcome:
    args = b"\x00\x00" + shortstr(b"q\xff\xfe") + b"\x00" + b"\x00\x00\x00\x00"
    opened(wire).send(frame(1, 1, struct.pack(">HH", 50, 10) + args))
    return wire.answer()


@wire_scenario
def routing_key_and_property_not_utf8_are_routed_and_delivered_unchanged(wire: Wire) -> Outcome:
    opened(wire)
    queue = f"{wire.prefix}-q"
    wire.call(1, m.QueueDeclare(queue=queue, exclusive=True))
    wire.expect("queue.declare-ok")
    wire.call(1, m.QueueBind(queue=queue, exchange="amq.topic", routing_key="a.*.c"))
    wire.expect("queue.bind-ok")
    properties = b"\x80\x00" + shortstr(b"t\xff")  # content-type
    wire.send(publish_frames(1, b"amq.topic", b"a.\xff\xfe.c", b"hi", properties))
    wire.raw = b""
    wire.call(1, m.BasicGet(queue=queue, no_ack=True))
    got = describe(wire.next())  # get-ok with its content, or get-empty
    # The routing key and the content type, as the octets delivered (rule 2).
    return [got, *(payload.hex() for ftype, _, payload in raw_frames(wire.raw) if ftype < 3)]


@wire_scenario
def publish_to_an_exchange_name_not_utf8(wire: Wire) -> Outcome:
    opened(wire)
    wire.raw = b""
    wire.send(publish_frames(1, b"x\xff", b"rk", b"hi"))
    answer = wire.answer()
    [(_, _, close)] = raw_frames(wire.raw)
    return [answer[0][:2], close.hex()]  # the reply text quotes the name's octets (rule 2)


# -- header timestamps ---------------------------------------------------------------------------


@wire_scenario
def header_timestamp_after_year_9999_round_trips(wire: Wire) -> Outcome:
    opened(wire)
    queue = f"{wire.prefix}-q"
    wire.call(1, m.QueueDeclare(queue=queue, exclusive=True))
    wire.expect("queue.declare-ok")
    table = (b"\x01tT" + (2**64 - 1).to_bytes(8, "big")
             + b"\x01uT" + (253_402_300_800).to_bytes(8, "big"))
    properties = b"\x20\x00" + len(table).to_bytes(4, "big") + table
    wire.send(publish_frames(1, b"", queue.encode(), b"hi", properties))
    wire.raw = b""
    wire.call(1, m.BasicGet(queue=queue, no_ack=True))
    got = describe(wire.next())
    return [got, *(payload.hex() for ftype, _, payload in raw_frames(wire.raw) if ftype == 2)]


# -- handshake -----------------------------------------------------------------------------------


@wire_scenario
def amqp_0_9_protocol_header_starts_the_handshake(wire: Wire) -> Outcome:
    wire.send(PROTOCOL_HEADER_0_9)
    start = wire.expect("connection.start").method
    assert isinstance(start, m.ConnectionStart)
    wire.call(0, m.ConnectionStartOk({}, "PLAIN", b"\x00guest\x00guest"))
    tune = wire.expect("connection.tune").method
    return [[start.version_major, start.version_minor], tune.NAME]


def _tune_ok_channel_max(wire: Wire, channel_max: int) -> Outcome:
    wire.send(PROTOCOL_HEADER)
    wire.expect("connection.start")
    wire.call(0, m.ConnectionStartOk({}, "PLAIN", b"\x00guest\x00guest"))
    wire.expect("connection.tune")
    wire.call(0, m.ConnectionTuneOk(channel_max, 131072, 0))
    wire.call(0, m.ConnectionOpen("/"))
    return wire.answer()


@wire_scenario
def tune_ok_channel_max_above_the_servers(wire: Wire) -> Outcome:
    return _tune_ok_channel_max(wire, 4000)


@wire_scenario
def tune_ok_channel_max_zero(wire: Wire) -> Outcome:
    return _tune_ok_channel_max(wire, 0)


# -- channels ------------------------------------------------------------------------------------


@wire_scenario
def channel_open_pipelined_behind_channel_close(wire: Wire) -> Outcome:
    opened(wire).send(encode_method(1, m.ChannelClose(200, "bye", 0, 0))
                      + encode_method(1, m.ChannelOpen()))
    return wire.answer()


@wire_scenario
def frames_pipelined_behind_channel_close(wire: Wire) -> Outcome:
    """The closing channel ignores a method, answers a second close, and sends no close-ok
    when the client sends close-ok itself."""
    opened(wire)
    close = encode_method(1, m.ChannelClose(200, "bye", 0, 0))
    wire.send(close + encode_method(1, m.QueueDeclare(queue=f"{wire.prefix}-x", exclusive=True)))
    ignored = wire.answer()
    wire.call(1, m.ChannelOpen())
    wire.answer()
    wire.send(close + close)
    twice = wire.answer()
    wire.call(1, m.ChannelOpen())
    wire.answer()
    wire.send(close + encode_method(1, m.ChannelCloseOk()))
    dropped = wire.answer(QUIET)
    return [ignored, twice, dropped]


@wire_scenario
def channel_open_after_close_ok_reuses_the_number(wire: Wire) -> Outcome:
    opened(wire).call(1, m.ChannelClose(200, "bye", 0, 0))
    close_ok = wire.answer(WAIT)
    wire.call(1, m.ChannelOpen())
    return [close_ok, wire.answer()]


@wire_scenario
def channel_open_before_acknowledging_the_brokers_close(wire: Wire) -> Outcome:
    opened(wire).call(1, m.BasicAck(99, False))
    closed = wire.answer()
    wire.call(1, m.ChannelOpen())
    return [closed, wire.answer()]


# -- max_message_size ----------------------------------------------------------------------------

MAX_MESSAGE_SIZE = 128 * 1024 * 1024  # RabbitMQ's default


@wire_scenario
def message_over_max_message_size(wire: Wire) -> Outcome:
    """RabbitMQ answers after reading the whole body, minibroker as soon as the content header
    declares the size; the answer itself is the same. The body is only sent to a broker that
    has not answered yet."""
    opened(wire).call(1, m.BasicPublish(routing_key=f"{wire.prefix}-nowhere"))
    size = MAX_MESSAGE_SIZE + 1
    wire.send(frame(2, 1, struct.pack(">HHQ", 60, 0, size) + b"\x00\x00"))
    early = wire.answer(QUIET)
    if early != [["quiet"]]:
        return early
    chunk = b"x" * (131072 - 8)
    for offset in range(0, size, len(chunk)):
        wire.send(frame(3, 1, chunk[: min(len(chunk), size - offset)]))
    return wire.answer()
