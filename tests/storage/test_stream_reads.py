"""Reading a stream from disk at its edges (``storage/streamreader.py``): a chunk larger than
one read block, a byte budget that ends a read inside a chunk (the next read goes on from
there), a filtered read across segments, and a record whose bytes changed on disk, which is
an error naming the file and the byte instead of a wrong message."""

from __future__ import annotations

import pytest

from minibroker.storage.streamsegments import READ_BLOCK
from tests.storage.test_streams import Rig, read_all


def test_a_chunk_larger_than_a_read_block_reads_back_whole() -> None:
    rig = Rig()
    big = bytes(range(256)) * (READ_BLOCK // 256 + 10)
    rig.append(b"small")
    rig.append(big, b"after")
    rig.commit()
    assert read_all(rig.stream) == [(0, b"small"), (1, big), (2, b"after")]


def test_a_byte_budget_ends_a_read_inside_a_chunk() -> None:
    rig = Rig()
    rig.append(b"a" * 10, b"b" * 10, b"c" * 10)  # one chunk
    rig.commit()
    reader = rig.stream.reader(0)
    assert [offset for offset, _ in reader.read(max_bytes=15)] == [0, 1]
    assert [offset for offset, _ in reader.read(max_bytes=15)] == [2]
    assert reader.read() == []
    reader.close()


def test_a_filtered_read_goes_on_across_segments() -> None:
    rig = Rig(max_segment_size=100)
    for number in range(30):
        rig.append(b"%02d" % number, value="even" if number % 2 == 0 else "odd")
    rig.commit()
    assert len(rig.stream.segments) > 3
    assert [body for _, body in read_all(rig.stream, values=("odd",))] == [
        b"%02d" % number for number in range(1, 30, 2)]


def test_a_record_changed_on_disk_is_an_error_naming_the_file() -> None:
    rig = Rig()
    rig.append(b"payload-0123456789")
    rig.commit()
    (segment,) = rig.stream.segments
    image = bytearray(rig.disk.read(segment.path))
    spot = image.rindex(b"payload")
    image[spot] ^= 0xFF  # one flipped byte in the body
    rig.disk._get(segment.path).data[:] = image  # (the simulated disk's bytes)
    reader = rig.stream.reader(0)
    with pytest.raises(OSError, match=rf"^{segment.path}: record CRC mismatch at byte \d+$"):
        reader.read()
    reader.close()
