"""Recovery meets damaged files: it reports by file name and offset, and never crashes."""

from __future__ import annotations

import pytest

from minibroker.storage import QueueDefinition, UnsupportedFormat
from minibroker.storage.deflog import DECLARE, SNAPSHOT_END, encode_definition, pack
from minibroker.storage.records import (
    FILE_HEADER,
    KIND_DEFINITIONS,
    encode_file_header,
    encode_record,
)
from minibroker.storage.simdisk import SimDisk

from .helpers import DATA, bodies, message, open_store, settle_down

SEGMENT = f"{DATA}/messages/00000000000000000001.seg"


def store_with_batches(disk: SimDisk, batches: int = 3) -> None:
    """One segment holding one PUBLISH record per batch (two messages each)."""
    store = open_store(disk)
    queue = store.declare_queue(QueueDefinition("q"))
    for batch in range(batches):
        queue.publish(2 * batch + 1, message(f"{batch}a"))
        queue.publish(2 * batch + 2, message(f"{batch}b"))
        settle_down(store)
    disk.process_crash()


def record_offsets(data: bytes) -> list[int]:
    import struct
    offsets, position = [], FILE_HEADER.size
    while position < len(data):
        offsets.append(position)
        position += 17 + struct.unpack_from(">I", data, position)[0]
    return offsets


def test_a_torn_tail_is_cut_off_reported_and_gone_on_the_next_start() -> None:
    disk = SimDisk()
    store_with_batches(disk)
    data = disk.names[SEGMENT].data
    last = record_offsets(bytes(data))[-1]
    del data[-5:]
    store = open_store(disk)
    assert bodies(store) == [b"0a", b"0b", b"1a", b"1b"]
    [(name, damage)] = store.recovered.report.damage
    assert (name, damage.offset, damage.tail) == ("00000000000000000001.seg", last, True)
    assert any(f"torn tail in {name} at offset {last}" in line
               for line in store.recovered.report.lines())
    assert len(disk.names[SEGMENT].data) == last
    disk.process_crash()
    assert open_store(disk).recovered.report.damage == []


def test_a_corrupt_record_in_the_middle_is_reported_and_the_rest_recovered() -> None:
    disk = SimDisk()
    store_with_batches(disk)
    data = disk.names[SEGMENT].data
    middle = record_offsets(bytes(data))[1]
    data[middle + 30] ^= 0x01  # one bit flips inside the second record
    store = open_store(disk)
    assert bodies(store) == [b"0a", b"0b", b"2a", b"2b"]
    [(name, damage)] = store.recovered.report.damage
    assert (name, damage.offset, damage.tail) == ("00000000000000000001.seg", middle, False)
    assert damage.reason == "record CRC mismatch"
    assert f"damaged record in {name} at offset {middle}" in "\n".join(
        store.recovered.report.lines())


def test_garbage_after_the_last_record_is_a_torn_tail() -> None:
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    size = len(disk.names[SEGMENT].data)
    disk.names[SEGMENT].data += b"\x00\x00\x00\x07garbage"
    store = open_store(disk)
    assert bodies(store) == [b"0a", b"0b"]
    assert store.recovered.report.damage[0][1].offset == size


def test_a_segment_with_a_damaged_header_is_set_aside_not_deleted() -> None:
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    disk.names[SEGMENT].data[0:4] = b"JUNK"
    store = open_store(disk)
    assert bodies(store) == []
    assert disk.exists(SEGMENT + ".damaged")
    assert any("set 00000000000000000001.seg aside" in note
               for note in store.recovered.report.notes)
    disk.process_crash()
    assert any("check it and remove it" in note
               for note in open_store(disk).recovered.report.notes)


def test_a_segment_shorter_than_its_header_is_removed() -> None:
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    disk.makedirs(f"{DATA}/messages")
    disk.open_append(f"{DATA}/messages/00000000000000000099.seg").write(b"MBL")
    store = open_store(disk)
    assert not disk.exists(f"{DATA}/messages/00000000000000000099.seg")
    assert bodies(store) == [b"0a", b"0b"]


def test_a_file_from_a_newer_version_is_refused_by_name() -> None:
    import struct
    import zlib
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    body = struct.pack(">4sHHQI", b"MBLG", 2, 1, 1, 0)
    disk.names[SEGMENT].data[0:FILE_HEADER.size] = body + zlib.crc32(body).to_bytes(4, "big")
    with pytest.raises(UnsupportedFormat, match=f"{SEGMENT}: format version 2"):
        open_store(disk)
    disk.lock(f"{DATA}/LOCK").release()  # the refused start released the lock


def definitions_file(*records: bytes) -> bytes:
    return encode_file_header(KIND_DEFINITIONS, 0) + b"".join(records)


def declare(seq: int, name: str, incarnation: int) -> bytes:
    return encode_record(DECLARE, seq, pack(encode_definition(QueueDefinition(name),
                                                              incarnation)))


def test_an_interrupted_definitions_compaction_is_finished() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    disk.open_append(f"{DATA}/definitions.log").write(definitions_file(declare(1, "old", 1)))
    disk.open_append(f"{DATA}/definitions.next").write(definitions_file(
        declare(2, "old", 1), encode_record(SNAPSHOT_END, 3, b"\x90"), declare(4, "new", 4)))
    store = open_store(disk)
    assert {q.name for q in store.recovered.definitions.queues} == {"old", "new"}
    assert not disk.exists(f"{DATA}/definitions.next")


def test_an_incomplete_definitions_snapshot_is_dropped() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    disk.open_append(f"{DATA}/definitions.log").write(definitions_file(declare(1, "old", 1)))
    disk.open_append(f"{DATA}/definitions.next").write(definitions_file(declare(2, "old", 1))
                                                       [:-3])
    store = open_store(disk)
    assert [q.name for q in store.recovered.definitions.queues] == ["old"]
    assert not disk.exists(f"{DATA}/definitions.next")


def test_a_clean_marker_that_does_not_match_the_files_counts_as_unclean() -> None:
    disk = SimDisk()
    store = open_store(disk)
    queue = store.declare_queue(QueueDefinition("q"))
    queue.publish(1, message("m"))
    store.close()
    disk.names[f"{DATA}/messages/00000000000000000001.seg"].data += b"\x00"
    store = open_store(disk)
    assert not store.recovered.report.clean
    assert "does not match the files" in "\n".join(store.recovered.report.notes)
    assert store.recovered.queues[("/", "q")].messages[0].redelivered


def test_leftover_temporary_files_are_removed() -> None:
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    disk.open_append(f"{DATA}/messages/00000000000000000001.seg.tmp").write(b"half")
    disk.open_append(f"{DATA}/clean-shutdown.tmp").write(b"half")
    open_store(disk)
    assert not disk.exists(f"{DATA}/messages/00000000000000000001.seg.tmp")
    assert not disk.exists(f"{DATA}/clean-shutdown.tmp")


def test_a_segment_of_zeros_is_removed_and_set_aside_files_are_never_overwritten() -> None:
    disk = SimDisk()
    store_with_batches(disk, batches=1)
    disk.open_append(f"{DATA}/messages/00000000000000000007.seg").write(bytes(4096))
    for _ in range(2):  # the same damaged segment twice: two files set aside
        disk.open_append(f"{DATA}/messages/00000000000000000008.seg").write(b"JUNK" * 10)
        disk.process_crash()
        store = open_store(disk)
    assert not disk.exists(f"{DATA}/messages/00000000000000000007.seg")
    assert disk.exists(f"{DATA}/messages/00000000000000000008.seg.damaged")
    assert disk.exists(f"{DATA}/messages/00000000000000000008.seg.damaged.1")
    assert bodies(store) == [b"0a", b"0b"]
