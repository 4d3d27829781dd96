"""A data directory whose disk stops taking writes (``server/durability.py`` rule 4): the store
stops, the broker says so once, in a critical line naming the directory and the error, and
raises the resource alarm "storage failed": persistent messages can no longer be confirmed, so
publishers are blocked, and nothing more is written, at the periodic sweep or at the stop."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

import pika
import pytest

from minibroker.storage import files
from minibroker.testing import broker_in_thread

TIMEOUT = 10.0
NO_SPACE = "[Errno 28] No space left on device"


def _no_space(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_disk_that_fails_stops_the_store_and_blocks_publishers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    blocked: list[str] = []
    with broker_in_thread(data_dir=str(tmp_path), heartbeat=0) as broker:
        server = broker.server
        connection = pika.BlockingConnection(pika.URLParameters(
            broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
        connection.add_on_connection_blocked_callback(
            lambda _connection, frame: blocked.append(frame.method.reason))
        channel = connection.channel()
        channel.queue_declare("jobs", durable=True)  # stored while the disk still works
        monkeypatch.setattr(files, "_datasync", _no_space)  # the disk is full from now on
        channel.basic_publish("", "jobs", b"lost", pika.BasicProperties(delivery_mode=2))
        broker.wait_for((lambda: (server.flow.alarm is not None, f"alarm: {server.flow.alarm}"),
                         "the storage alarm"))
        assert server.flow.alarm == f"storage failed: {NO_SPACE}"
        # the next publish is the publisher's last one read: it is told it is blocked
        channel.basic_publish("", "jobs", b"held", pika.BasicProperties(delivery_mode=2))
        deadline = time.monotonic() + TIMEOUT
        while not blocked and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        assert blocked == [f"storage failed: {NO_SPACE}"]
        durability = server.durability
        assert durability is not None
        durability.maintain()  # the periodic sweep leaves a failed store alone
        assert server.flow.alarm == f"storage failed: {NO_SPACE}"
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR
                and record.name.startswith("minibroker")]
    assert [record.getMessage() for record in failures] == [
        f"storage in {tmp_path} failed: {NO_SPACE}; persistent messages can no longer be "
        "confirmed, publishers are blocked"]
    assert failures[0].levelno == logging.CRITICAL
