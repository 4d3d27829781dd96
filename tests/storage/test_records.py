"""Record framing: headers, records, and what the scanner makes of damage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.storage.errors import UnsupportedFormat
from minibroker.storage.records import (
    FILE_HEADER,
    KIND_MESSAGES,
    RecordScanner,
    decode_file_header,
    encode_file_header,
    encode_record,
)

TYPES = frozenset({1, 2, 3})


def image(payloads: list[bytes], first_seq: int = 1) -> bytes:
    return encode_file_header(KIND_MESSAGES, 7, 2) + b"".join(
        encode_record(1, first_seq + i, p) for i, p in enumerate(payloads))


def scan(data: bytes) -> tuple[list[tuple[int, int, bytes]], RecordScanner]:
    scanner = RecordScanner(data, FILE_HEADER.size, types=TYPES)
    return [(kind, seq, bytes(payload)) for _o, kind, seq, payload in scanner], scanner


def test_file_header_round_trip() -> None:
    header = decode_file_header(encode_file_header(KIND_MESSAGES, 7, 2))
    assert not isinstance(header, str)
    assert (header.kind, header.number, header.generation) == (KIND_MESSAGES, 7, 2)


def test_golden_bytes() -> None:
    # The on-disk format is a promise to every data directory ever written: a change here
    # must come with a new format version.
    assert encode_file_header(KIND_MESSAGES, 1).hex() == (
        "4d424c47" "0001" "0001" "0000000000000001" "00000000" "376dece7")
    assert encode_record(1, 5, b"\x90").hex() == "00000001" "81306449" "01" "0000000000000005" "90"


@pytest.mark.parametrize(("data", "reason"), [
    (b"MBLG\x00", "shorter than a file header"),
    (b"XXXX" + encode_file_header(KIND_MESSAGES, 1)[4:], "bad magic"),
    (encode_file_header(KIND_MESSAGES, 1)[:-1] + b"\x00", "CRC mismatch"),
])
def test_bad_file_headers_are_described(data: bytes, reason: str) -> None:
    result = decode_file_header(data)
    assert isinstance(result, str)
    assert reason in result


def test_unknown_version_is_an_error_not_a_guess() -> None:
    import zlib
    body = struct.pack(">4sHHQI", b"MBLG", 99, KIND_MESSAGES, 1, 0)
    with pytest.raises(UnsupportedFormat, match="version 99"):
        decode_file_header(body + zlib.crc32(body).to_bytes(4, "big"))


def test_records_come_back_in_order() -> None:
    records, scanner = scan(image([b"a", b"bb", b""]))
    assert records == [(1, 1, b"a"), (1, 2, b"bb"), (1, 3, b"")]
    assert scanner.damage == [] and scanner.last_seq == 3


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.data())
def test_any_cut_is_a_torn_tail_that_keeps_every_whole_record(payloads: list[bytes],
                                                              data: st.DataObject) -> None:
    whole = image(payloads)
    cut = data.draw(st.integers(FILE_HEADER.size, len(whole)))
    records, scanner = scan(whole[:cut])
    ends = [len(image(payloads[:n])) for n in range(len(payloads) + 1)]
    complete = max(n for n, end in enumerate(ends) if end <= cut)
    assert [r[2] for r in records] == payloads[:complete]
    assert scanner.valid_end == ends[complete]
    if cut == ends[complete]:
        assert scanner.damage == []
    else:
        assert len(scanner.damage) == 1 and scanner.damage[0].tail
        assert scanner.damage[0].offset == ends[complete]


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=3, max_size=6), st.data())
def test_a_damaged_record_in_the_middle_is_skipped_and_the_rest_kept(
        payloads: list[bytes], data: st.DataObject) -> None:
    whole = bytearray(image(payloads))
    victim = data.draw(st.integers(0, len(payloads) - 2))  # not the last one
    start = len(image(payloads[:victim]))
    end = len(image(payloads[:victim + 1]))
    whole[data.draw(st.integers(start + 4, end - 1))] ^= 0x55  # inside crc, type, seq or payload
    records, scanner = scan(bytes(whole))
    assert [r[2] for r in records] == payloads[:victim] + payloads[victim + 1:]
    [damage] = scanner.damage
    assert (damage.offset, damage.length, damage.tail) == (start, end - start, False)


def test_a_record_with_an_old_sequence_number_is_not_taken_for_a_resync() -> None:
    # A message body may hold bytes that look like a record; seq must still go forward.
    fake = encode_record(1, 1, b"x")
    data = image([b"a", fake, b"c"])
    broken = bytearray(data)
    second = len(image([b"a"]))
    broken[second] ^= 0xFF  # the second record's length field: the record is lost
    records, scanner = scan(bytes(broken))
    assert [r[1] for r in records] == [1, 3]
    assert scanner.damage[0].offset == second


def test_an_unknown_record_type_is_damage() -> None:
    data = encode_file_header(KIND_MESSAGES, 1) + encode_record(9, 1, b"x")
    records, scanner = scan(data)
    assert records == []
    assert "unknown record type 9" in scanner.damage[0].reason
