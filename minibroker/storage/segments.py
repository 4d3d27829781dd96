"""The segment table: what each message segment holds that still matters, and when it can go.
Bookkeeping only, no I/O (the store asks it what to reclaim and hands the work to the worker).

Rules:

1. A segment is *sealed* once the writer moved on to the next one; only sealed segments are
   reclaimed. Each counts its *live* entries (PUBLISHes not yet settled) and their bytes.
2. A tombstone (SETTLE or REQUEUE, ``intents.py``) names the segment T of its PUBLISH and
   T's ``generation`` when it was written. It is *needed* while T still holds that PUBLISH as
   written then: while its generation is at least T's ``floor``, the generation of T's file
   (or of the compaction decided last). ``T.holders[H]`` counts the needed tombstone groups in
   segment H, and ``H.needed`` is the sum over all T. A tombstone naming its own segment is not
   counted: the two go together.
3. A sealed segment with no live entry and no needed tombstone is deleted. Deleting T makes
   every tombstone naming T unneeded: the holders are released.
4. Each segment counts its *garbage*: the bytes of its settled entries, and (estimated at
   :data:`TOMBSTONE_BYTES` each) of its tombstones that are no longer needed. A sealed segment
   whose garbage reaches the ``garbage`` fraction of its size is compacted: rewritten with only
   its live entries (their requeue counts folded in) and needed tombstones. Counting garbage
   rather than live bytes means a segment that is already compact (its size is framing and
   needed tombstones) is never rewritten again for nothing. The compaction takes a new
   generation, higher than any a tombstone ever named, and raises the floor to it when it is
   decided: tombstones written from then on stay needed, the older ones are released (their
   PUBLISHes are not copied, or their counts are folded into the copies).
5. Reclaim work is carried out in the order it was decided, each step durable before the next,
   so every decision may assume the earlier ones are done (``writer.py`` runs it that way).
"""

from __future__ import annotations

from array import array
from dataclasses import field

from minibroker.valueclass import valueclass

__all__ = ["TOMBSTONE_BYTES", "Compaction", "Segment", "SegmentTable"]

#: Estimated bytes of one tombstone group (incarnation, segment, generation, a run or two).
TOMBSTONE_BYTES = 24


class Segment:
    __slots__ = ("floor", "garbage", "generation", "holders", "live", "live_bytes", "needed",
                 "number", "publishes", "size")

    def __init__(self, number: int, generation: int = 0) -> None:
        self.number = number
        #: The generation new tombstones name; never below any generation named before, even
        #: by tombstones of a compaction that a crash lost (recovery raises it).
        self.generation = generation
        #: The lowest generation a needed tombstone names (rule 2).
        self.floor = generation
        #: Bytes of the file, as last written or compacted.
        self.size = 0
        self.live = 0
        self.live_bytes = 0
        #: Bytes of the file known to be garbage (rule 4).
        self.garbage = 0
        self.needed = 0
        #: holder segment -> tombstone groups there that name this segment's generation.
        self.holders: dict[int, int] = {}
        #: incarnation -> the msg_ids published here (compaction's keep-list source); 8 bytes
        #: per message.
        self.publishes: dict[int, array[int]] = {}

    def __repr__(self) -> str:
        return (f"Segment({self.number}, gen={self.generation}/{self.floor}, size={self.size}, "
                f"live={self.live}/{self.live_bytes}B, garbage={self.garbage}B, "
                f"needed={self.needed})")


@valueclass()
class Compaction:
    """What the worker needs to rewrite one segment (decided on the loop thread)."""

    number: int
    generation: int  #: the new generation
    keep: dict[int, set[int]]  #: incarnation -> msg_ids whose PUBLISH is copied
    requeued: dict[int, dict[int, int]]  #: incarnation -> msg_id -> delivery_count to fold in
    floors: dict[int, int] = field(default_factory=dict)  #: the other segments' floors


class SegmentTable:
    """All message segments of a store, oldest first; the last one is being written."""

    __slots__ = ("garbage", "segments")

    def __init__(self, *, garbage: float = 0.5) -> None:
        self.segments: dict[int, Segment] = {}
        #: Compact a segment when at least this fraction of it is garbage (rule 4).
        self.garbage = garbage

    def add(self, number: int, generation: int = 0) -> Segment:
        segment = self.segments[number] = Segment(number, generation)
        return segment

    @property
    def current(self) -> Segment:
        return self.segments[next(reversed(self.segments))]

    def tombstone(self, holder: int, target: int) -> None:
        """A tombstone group written in ``holder`` names a PUBLISH in ``target`` (rule 2)."""
        if holder == target:  # dropped by the segment's next compaction: garbage already
            self.segments[holder].garbage += TOMBSTONE_BYTES
            return
        target_segment = self.segments[target]
        target_segment.holders[holder] = target_segment.holders.get(holder, 0) + 1
        self.segments[holder].needed += 1

    def settle(self, number: int, size: int) -> None:
        segment = self.segments[number]
        segment.live -= 1
        segment.live_bytes -= size
        segment.garbage += size

    def _release(self, segment: Segment) -> None:
        for holder, count in segment.holders.items():
            held = self.segments.get(holder)
            if held is not None:
                held.needed -= count
                held.garbage += count * TOMBSTONE_BYTES
        segment.holders = {}

    def decide(self) -> list[Segment | Compaction]:
        """The reclaim work due now, in order (rules 3-5): a :class:`Segment` to delete (it is
        already gone from the table) or a :class:`Compaction` to run."""
        work: list[Segment | Compaction] = []
        if len(self.segments) < 2:
            return work
        current = self.current.number
        self._deletions(current, work)
        for segment in list(self.segments.values()):
            if segment.number == current or segment.garbage < segment.size * self.garbage:
                continue
            work.append(self.begin_compaction(segment))
        # A compaction releases the tombstones naming the old generation: their holders may
        # have nothing else left.
        self._deletions(current, work)
        return work

    def _deletions(self, current: int, work: list[Segment | Compaction]) -> None:
        # Deleting one segment can release the last holder pinning an older one: repeat.
        changed = True
        while changed:
            changed = False
            for segment in list(self.segments.values()):
                if segment.number != current and segment.live == 0 and segment.needed == 0:
                    del self.segments[segment.number]
                    self._release(segment)
                    work.append(segment)
                    changed = True

    def begin_compaction(self, segment: Segment) -> Compaction:
        segment.generation += 1
        segment.floor = segment.generation
        self._release(segment)
        # Until the worker reports the real size, expect the garbage gone.
        segment.size = max(segment.size - segment.garbage, 0)
        segment.garbage = 0
        floors = {n: s.floor for n, s in self.segments.items() if n != segment.number}
        return Compaction(segment.number, segment.generation, {}, {}, floors)

    def usage(self) -> int:
        return sum(segment.size for segment in self.segments.values())
