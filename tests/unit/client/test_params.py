"""URL errors say what is wrong and how to fix it, and never show a password."""

from __future__ import annotations

import pytest

from minibroker.client.params import ConnectionParameters


@pytest.mark.parametrize(("url", "error"), [
    ("amqp://guest:secret@localhost:5672/",
     r"got 'amqp://guest:\*\*\*@localhost:5672/': amqp:// is for AMQP clients \(pika, aio-pika, "
     r"kombu\); this native client takes the same broker at minibroker://host:5680"),
    ("minibroker://ann:secret@h/?heartbeat=ten",
     r"connection option heartbeat must be an integer, not 'ten' "
     r"\(in 'minibroker://ann:\*\*\*@h/\?heartbeat=ten'\)"),
    ("minibroker://h/?connect_timeout=soon", "must be a number of seconds, not 'soon'"),
    ("minibroker://h/?bogus=1", "unknown connection option 'bogus'"),
])
def test_a_bad_url_is_explained_without_its_password(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        ConnectionParameters.from_url(url)
    assert "secret" not in str(caught.value)
