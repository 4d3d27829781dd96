"""The server's side of a stream deleted and declared again (``streamstore.py`` rule 4): the
core opens the new stream's log before the journal's DECLARE reaches the store, and the
DECLARE records the incarnation the log was opened under — so after a crash or a restart the
stream is the new one, with its arguments and only its messages, in a directory of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from minibroker.testing import broker_in_thread
from tests.integration.test_durable_streams import STREAM, _publish


@pytest.mark.parametrize("stop", ["crash", "restart"])
def test_a_stream_deleted_and_declared_again_comes_back_as_the_new_one(
        tmp_path: Path, stop: str) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", [b"old0", b"old1"], {**STREAM, "x-max-age": "1D"})
        broker.delete_queue("events")
        _publish(broker.amqp_url, "events", [b"new0"], {**STREAM, "x-max-age": "2D"})
        getattr(broker, stop)()
        assert [m.body for m in broker.messages("events")] == [b"new0"]
        (queue,) = [q for q in broker.export_definitions()["queues"] if q["name"] == "events"]
        assert queue["arguments"]["x-max-age"] == "2D"
        assert len(list((tmp_path / "streams").iterdir())) == 1
        broker.delete_queue("events")
        broker.restart()
        assert not list((tmp_path / "streams").iterdir())
