"""Start-up: take the clean-shutdown marker, then recover the definitions and the messages.

Rules:

1. The clean-shutdown marker is read and removed (durably) before anything else is written, so
   a crash after this start is never mistaken for a clean stop.
2. The marker counts only if it matches the files exactly (the same segments, each of the size
   it lists, and the definitions log's size); otherwise the shutdown is treated as unclean and
   the report says why.
3. Leftovers of interrupted file replacements (``*.tmp``) are removed; files set aside earlier
   (``*.damaged``) are left for the operator and mentioned in the report.
4. After an unclean stop the recovered segments are synced before anything new is written: a
   ``kill -9`` leaves records in the page cache that were never synced, and once recovered they
   are part of the broker's state, which a later power cut must not take back.
"""

from __future__ import annotations

import posixpath
from typing import Any

import msgpack

from minibroker.storage import intents
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.deflog import DefinitionsState
from minibroker.storage.files import FileSystem
from minibroker.storage.records import KIND_MESSAGES
from minibroker.storage.recovered import RecoveredState, RecoveryReport
from minibroker.storage.recovery import (
    MessageReplay,
    finish_scan,
    replay_definitions,
    scan_file,
)
from minibroker.storage.segments import SegmentTable

__all__ = ["MARKER", "recover"]

MARKER = "clean-shutdown"


def recover(fs: FileSystem, directory: str, segments: SegmentTable
            ) -> tuple[RecoveredState, DefinitionsState, MessageReplay]:
    marker = _take_marker(fs, directory)
    report = RecoveryReport(clean=marker is not None)
    _remove_leftovers(fs, directory, report)
    definitions, last_seq = replay_definitions(fs, directory, report)
    sizes: dict[int, int] = {}
    replay = MessageReplay(segments, report)
    messages = posixpath.join(directory, "messages")
    for number in _segment_numbers(fs, messages, report):
        path = posixpath.join(messages, f"{number:020d}.seg")
        scanned = scan_file(fs, path, KIND_MESSAGES, intents.TYPES, report)
        if scanned is None:
            continue
        generation, scanner = scanned
        sizes[number] = scanner.size
        segments.add(number, generation)
        replay.replay_segment(number, scanner, posixpath.basename(path))
        finish_scan(fs, path, scanner, report)
        segments.segments[number].size = scanner.valid_end
    if marker is not None:
        _check_marker(fs, directory, marker, sizes, report)
    if not report.clean:  # rule 4
        for number in sizes:
            file = fs.open_append(posixpath.join(messages, f"{number:020d}.seg"))
            file.sync()
            file.close()
        fs.sync_dir(messages)
    queues: dict[int, QueueDefinition] = {}
    for (vhost, name), incarnation in definitions.incarnations.items():
        definition = definitions.objects[("queue", vhost, name)]
        assert isinstance(definition, QueueDefinition)
        queues[incarnation] = definition
    recovered = replay.finish(queues, clean=report.clean)
    last_seq = max(last_seq, replay.last_seq, marker.get("last_seq", 0) if marker else 0)
    state = RecoveredState(definitions.definitions(), recovered, report, last_seq)
    return state, definitions, replay


def _take_marker(fs: FileSystem, directory: str) -> dict[str, Any] | None:
    path = posixpath.join(directory, MARKER)
    if not fs.exists(path):
        return None
    try:
        marker = msgpack.unpackb(fs.read(path), strict_map_key=False)
    except Exception:  # msgpack raises several unrelated types on bad input
        marker = None
    fs.remove(path)
    fs.sync_dir(directory)
    return marker if isinstance(marker, dict) else None


def _check_marker(fs: FileSystem, directory: str, marker: dict[str, Any],
                  sizes: dict[int, int], report: RecoveryReport) -> None:
    log = posixpath.join(directory, "definitions.log")
    definitions = len(fs.read(log)) if fs.exists(log) else 0
    if marker.get("segments") != sizes or marker.get("definitions") != definitions:
        report.clean = False
        report.notes.append("the clean-shutdown marker does not match the files: treated as an "
                            "unclean shutdown")


def _remove_leftovers(fs: FileSystem, directory: str, report: RecoveryReport) -> None:
    for folder in (directory, posixpath.join(directory, "messages")):
        for name in fs.listdir(folder):
            if name.endswith(".tmp"):
                fs.remove(posixpath.join(folder, name))
            elif ".damaged" in name:
                report.notes.append(f"{name} was set aside by an earlier start: check it and "
                                    "remove it")


def _segment_numbers(fs: FileSystem, messages: str, report: RecoveryReport) -> list[int]:
    numbers = []
    for name in fs.listdir(messages):
        stem, _dot, extension = name.partition(".")
        if extension == "seg" and stem.isdigit():
            numbers.append(int(stem))
        elif not name.endswith(".tmp") and ".damaged" not in name:
            report.notes.append(f"ignored {name}: not a segment file")
    return sorted(numbers)
