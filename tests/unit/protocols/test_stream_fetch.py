"""The native StreamFetchOk frame (``protocols/native/runs.py``): runs of entries whose
properties travel packed, what the broker writes from encoded runs, and a 502 naming the fault
for every malformed run or entry."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.errors import FrameError, FrameSyntaxError, ProtocolError
from minibroker.message import EMPTY_PROPERTIES, Message, Properties
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, NativeCodec
from minibroker.protocols.native.frames import Frame
from minibroker.protocols.native.runs import EMPTY_BIN, entries_of, properties_bin
from minibroker.protocols.native.streamframes import StreamFetchOk

_HEADERS = msgpack.packb([None, None, {"n": 7}])


def _raw(*values: object) -> bytes:
    payload: bytes = msgpack.packb(list(values), use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


def _client_reads(frame: bytes) -> list[Frame]:
    codec = NativeCodec(role="client")
    codec.receive_data(frame)
    return codec.frames()


def test_runs_decode_into_columns_with_their_properties() -> None:
    [reply] = _client_reads(_raw(0x77, 1, 12, [
        [0, [["", "s", EMPTY_BIN, b"a"], ["ex", "rk", _HEADERS, b""]]],
        [10, []],
        # a server passes on what AMQP carried: a header integer above 2**63 - 1 is fine
        [2**64 - 1, [["x", "k", msgpack.packb([None, None, {"big": 2**64 - 1}]), b"c"]]],
    ]))
    assert isinstance(reply, StreamFetchOk)
    assert reply.next_offset == 12
    assert reply.chunks == [
        (0, ("", "ex"), ("s", "rk"), (EMPTY_PROPERTIES, Properties(headers={"n": 7})),
         (b"a", b"")),
        (10, (), (), (), ()),
        (2**64 - 1, ("x",), ("k",), (Properties(headers={"big": 2**64 - 1}),), (b"c",)),
    ]


@pytest.mark.parametrize("run", [
    "not a list", [0], [0, [], []], ["0", []], [-1, []], [True, []], [0, "entries"],
    [0, {}],
], ids=["scalar", "one-element", "three-elements", "str-offset", "negative-offset",
        "bool-offset", "str-entries", "map-entries"])
def test_a_malformed_run_is_a_syntax_error(run: object) -> None:
    # A good run first: a check that stops after one run must still see the second.
    with pytest.raises(FrameSyntaxError, match=(
            r"StreamFetchOk\.chunks: each run must be \[first_offset, \[entry, \.\.\.\]\]")):
        _client_reads(_raw(0x77, 1, 9, [[1, [["x", "k", EMPTY_BIN, b"ok"]]], run]))


@pytest.mark.parametrize("entry", [
    "text", ["x", "k", EMPTY_BIN], ["x", "k", EMPTY_BIN, b"a", b"b"], [b"x", "k", EMPTY_BIN, b"a"],
    ["x", None, EMPTY_BIN, b"a"], ["x", "k", [], b"a"], ["x", "k", "props", b"a"],
    ["x", "k", EMPTY_BIN, "a"], ["x", "k", None, b"a"], 7,
], ids=["str", "three-elements", "five-elements", "bin-exchange", "nil-routing-key",
        "array-properties", "str-properties", "str-body", "nil-properties", "int"])
def test_a_malformed_entry_is_a_syntax_error(entry: object) -> None:
    # Good entries around the bad one: the bulk checks must find it wherever it is.
    good = ["x", "k", EMPTY_BIN, b"ok"]
    with pytest.raises(FrameSyntaxError, match=(
            r"StreamFetchOk\.chunks: each entry must be \[exchange: str, routing_key: str, "
            r"properties: bin, body: bin\]")):
        _client_reads(_raw(0x77, 1, 9, [[1, [good, entry, good]]]))


@pytest.mark.parametrize(("blob", "text"), [
    (b"\xc1", r"properties are not one msgpack value"),
    (b"\x90\x90", r"properties are not one msgpack value"),
    (msgpack.packb({"a": 1}), r"properties must be a msgpack array"),
    (msgpack.packb([None, None, {b"k": 2}]), r"headers: field table key b.k. is not a string"),
    (msgpack.packb([7]), r"content_type: expected str, got int"),
], ids=["not-msgpack", "two-values", "map", "bin-header-key", "int-content-type"])
def test_malformed_properties_are_a_syntax_error_naming_the_fault(blob: bytes, text: str) -> None:
    with pytest.raises(FrameSyntaxError, match=rf"StreamFetchOk\.chunks.*{text}"):
        _client_reads(_raw(0x77, 1, 9, [[1, [["x", "k", EMPTY_BIN, b"ok"],
                                             ["x", "k", blob, b"bad"]]]]))


def _server() -> NativeCodec:
    return NativeCodec(role="server")


def test_the_broker_joins_encoded_runs_into_a_frame_the_client_decodes() -> None:
    server = _server()
    headers = Properties(headers={"n": 7}, content_type="text/plain")
    stored = msgpack.packb([["", "s", EMPTY_BIN, b"a"], ["", "s", properties_bin(headers), b"b"]])
    packed = server.pack_entries([["ex", "rk", EMPTY_BIN, b"c"]])
    [reply] = _client_reads(server.send_fetch_ok(3, 41, [(5, stored), (40, packed)]))
    assert reply == StreamFetchOk(3, 41, [
        (5, ("", ""), ("s", "s"), (EMPTY_PROPERTIES, headers), (b"a", b"b")),
        (40, ("ex",), ("rk",), (EMPTY_PROPERTIES,), (b"c",)),
    ])


def test_a_fetch_reply_over_the_frame_size_is_refused_before_anything_is_written() -> None:
    server = _server()
    server.max_frame_size = MIN_FRAME_SIZE
    big = server.pack_entries([["", "s", EMPTY_BIN, b"x" * MIN_FRAME_SIZE]])
    with pytest.raises(FrameError, match=r"StreamFetchOk frame of \d+ bytes does not fit"):
        server.send_fetch_ok(1, 1, [(0, big)])


def test_text_from_amqp_that_is_not_utf8_travels_as_its_octets() -> None:
    routing_key = b"k\xff".decode("utf-8", "surrogateescape")
    packed = _server().pack_entries([["", routing_key, EMPTY_BIN, b"a"]])
    [reply] = _client_reads(_server().send_fetch_ok(1, 1, [(0, packed)]))
    assert isinstance(reply, StreamFetchOk)
    assert reply.chunks[0][2] == (routing_key,)


def test_messages_become_one_run_per_stretch_of_consecutive_offsets() -> None:
    a, b, c = (Message("", "s", body) for body in (b"a", b"b", b"c"))
    runs = entries_of([(3, a), (4, b), (9, c)])
    assert [(first, [entry[3] for entry in entries]) for first, entries in runs] == [
        (3, [b"a", b"b"]), (9, [b"c"])]


entries = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8),
                             st.sampled_from([EMPTY_PROPERTIES, Properties(priority=3),
                                              Properties(headers={"h": [1, "x"]})]),
                             st.binary(max_size=16)), max_size=20)


@given(st.lists(st.tuples(st.integers(0, 2**40), entries), max_size=5))
def test_any_runs_round_trip_through_the_encoded_path(runs: list[tuple[int, list[
        tuple[str, str, Properties, bytes]]]]) -> None:
    server = _server()
    encoded = [(first, server.pack_entries([[e, k, properties_bin(p), body]
                                             for e, k, p, body in rows]))
               for first, rows in runs]
    [reply] = _client_reads(server.send_fetch_ok(1, 7, encoded))
    assert isinstance(reply, StreamFetchOk)
    assert [(first, list(zip(*columns, strict=True))) for first, *columns in reply.chunks] == [
        (first, rows) for first, rows in runs]


@given(st.binary(min_size=1, max_size=60), st.data())
def test_corrupted_fetch_replies_raise_only_protocol_errors(noise: bytes,
                                                            data: st.DataObject) -> None:
    server = _server()
    packed = server.pack_entries([["x", "k", properties_bin(Properties(priority=1)), b"a"]] * 3)
    frame = bytearray(server.send_fetch_ok(1, 4, [(0, packed)]))
    at = data.draw(st.integers(4, len(frame) - 1))
    frame[at:at + len(noise)] = noise
    payload = bytes(frame[4:])
    codec = NativeCodec(role="client")
    codec.receive_data(len(payload).to_bytes(4, "big") + payload)
    with contextlib.suppress(ProtocolError):  # anything else escaping fails the test
        codec.frames()
