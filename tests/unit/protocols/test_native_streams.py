"""The native protocol's stream frames: mapped to core commands and back, and what the broker
answers for them (one confirm per publish batch)."""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core import effects as e
from minibroker.core.broker import Broker
from minibroker.message import Message, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import mapping
from minibroker.protocols.native import streamframes as sf


def test_a_publish_batch_is_one_core_input_and_one_confirm() -> None:
    broker = Broker()
    for command in (c.OpenConnection(1), c.OpenChannel(1, 1), c.ConfirmSelect(1, 1),
                    c.DeclareQueue(1, 1, "s", durable=True,
                                   arguments={"x-queue-type": "stream"})):
        broker.handle(command, now=0)
    frame = sf.PublishBatch(1, "", "s", False, [(Properties(), b"a")] * 3 + [
        (Properties(headers={"h": 1}), b"b")])
    command = mapping.command_for(frame, 1)
    assert isinstance(command, c.PublishMany) and len(command.messages) == 4
    assert command.messages[3] == (Message("", "s", b"b", Properties(headers={"h": 1})), False)
    outcome = broker.handle(command, now=0)
    assert outcome.effects == [e.Confirm(1, 1, 4, multiple=True)]
    assert mapping.frame_for_effect(outcome.effects[0]) == f.ConfirmAck(1, 4, True)


def test_stream_reads_and_offsets_map_both_ways() -> None:
    read = sf.StreamRead(2, "s", {"x-stream-offset": "first"}, 10, 4096)
    assert mapping.command_for(read, 7) == c.ReadStream(7, 2, "s", {"x-stream-offset": "first"},
                                                        10, 4096)
    assert mapping.command_for(sf.StreamRead(2, "s", {}, 1, 1), 7).arguments is None
    message = Message("x", "k", b"body", Properties(content_type="t"))
    assert mapping.reply_for(read, e.StreamReadOk(9, ((8, message),))) == sf.StreamReadOk(
        2, 9, [(8, "x", "k", Properties(content_type="t"), b"body")])
    commit = sf.OffsetCommit(2, "s", "n", 5)
    assert mapping.command_for(commit, 7) == c.CommitOffset(7, 2, "s", "n", 5)
    assert mapping.reply_for(commit, e.OffsetOk(5)) == sf.OffsetCommitOk(2)
    query = sf.OffsetQuery(2, "s", "n")
    assert mapping.command_for(query, 7) == c.QueryOffset(7, 2, "s", "n")
    assert mapping.reply_for(query, e.OffsetOk(None)) == sf.OffsetQueryOk(2, False, 0)
    assert mapping.reply_for(query, e.OffsetOk(3)) == sf.OffsetQueryOk(2, True, 3)


def test_the_stream_frames_are_known_whichever_module_is_imported_first() -> None:
    import subprocess
    import sys

    check = ("import minibroker.protocols.native.streamframes as sf; "
             "from minibroker.protocols.native import frames as f; "
             "assert sf.StreamRead in f.FRAME_TYPES and f.REPLIES[sf.StreamRead]")
    subprocess.run([sys.executable, "-c", check], check=True)
