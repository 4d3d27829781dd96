"""A hypothesis state machine over a stream on the simulated disk: appends in chunks, flushes,
group-commit rounds, retention, clean reopens, ``kill -9`` and power cuts (with torn writes).

Invariants after every recovery:

1. Every append reported durable (``StreamStore.durable``) is back, unless retention removed
   it; nothing that was never written appears.
2. What comes back is the model's messages at their offsets, in order, every durable one
   from the first retained offset on (unsynced appends lost by a power cut may leave a gap
   above the durable end), and appends go on at the end.
3. Reads never raise, and the index finds every offset recovered.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from minibroker.message import Message
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streams import StreamSettings
from minibroker.storage.streamstore import StreamStore
from minibroker.storage.writer import GroupCommit

ROOT = "/data"
SETTINGS = StreamSettings(max_segment_size=120, max_length_bytes=400, max_age=50.0)


class StreamDiskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.disk = SimDisk()
        self.disk.makedirs(ROOT)
        self.model: dict[int, bytes] = {}
        self.durable_end = 0
        self.clock = 0.0
        self.open()

    def open(self) -> None:
        self.reported: list[int] = []
        self.writer = GroupCommit(self.disk, on_durable=self.reported.append)
        self.store = StreamStore(self.disk, ROOT, self.writer, Sequencer(0))
        self.stream = self.store.open("/", "s", SETTINGS)
        stream = self.stream
        # Rules 1-2: what came back.
        got = dict(self._read_all(stream.first_offset))
        assert list(got) == sorted(got)
        assert stream.next_offset >= self.durable_end
        durable = range(stream.first_offset, self.durable_end)
        assert all(offset in got for offset in durable), (durable, list(got))
        assert all(self.model[offset] == body for offset, body in got.items())
        assert max(self.model, default=-1) >= stream.next_offset - 1
        for offset in list(self.model):
            if offset >= stream.next_offset:
                del self.model[offset]  # lost in the crash: never durable

    def _read_all(self, start: int) -> list[tuple[int, bytes]]:
        reader = self.stream.reader(start)
        got = []
        while batch := reader.read(max_messages=5):
            got.extend((offset, message.body) for offset, message in batch)
        reader.close()
        return got

    @rule(count=st.integers(1, 4), size=st.integers(1, 30), step=st.floats(0, 10))
    def append(self, count: int, size: int, step: float) -> None:
        self.clock += step
        key = object()
        for _ in range(count):
            offset = self.stream.next_offset
            body = bytes([offset % 251]) * size
            assert self.stream.append(Message("", "s", body), self.clock, key) == offset
            self.model[offset] = body

    @rule()
    def flush(self) -> None:
        self.store.flush()

    @rule()
    def worker_round(self) -> None:
        self.writer.run_round()
        if self.reported:
            moved = self.store.durable(self.reported[-1])
            if self.stream in moved:
                self.durable_end = moved[self.stream]

    @rule()
    def retain(self) -> None:
        self.stream.retain(self.clock)

    @rule()
    def clean_restart(self) -> None:
        self.store.flush()
        while self.writer.run_round():
            pass
        self.durable_end = self.stream.written
        self.store.close()
        self.writer.stop()
        self.disk.process_crash()
        self.open()

    @rule()
    def kill(self) -> None:
        self.store.flush()
        self.disk.process_crash()
        self.durable_end = max(self.durable_end, self.stream.written)  # the page cache keeps it
        self.open()

    @rule(kept=st.integers(0, 200), flip=st.booleans())
    def power_cut(self, kept: int, flip: bool) -> None:
        self.disk.power_cut(keep=lambda path, unsynced: kept, flip=flip)
        self.open()

    @invariant()
    def reads_find_every_offset(self) -> None:
        stream = self.stream
        for offset in (stream.first_offset, (stream.first_offset + stream.written) // 2):
            if offset < stream.written:
                reader = stream.reader(offset)
                first = reader.read(max_messages=1)
                reader.close()
                assert first and first[0][0] == offset


StreamDiskMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40,
                                               deadline=None)
TestStreamDiskMachine = StreamDiskMachine.TestCase
