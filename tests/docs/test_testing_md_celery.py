"""docs/testing.md, "A Celery app": the complete test module, as written there."""

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

app = Celery("shop")  # stands for your project's app


@app.task(name="shop.add")
def add(x, y):
    return x + y


@pytest.fixture(scope="session")
def celery_app(minibroker_session):
    app.conf.update(
        broker_url=minibroker_session.amqp_url,
        result_backend="rpc://",  # results come back over the broker
        broker_heartbeat=2,  # see below: prompt acks, prompt worker shutdown
        worker_hijack_root_logger=False,
    )
    yield app
    app.close()


def test_add_runs_on_a_worker(celery_app, minibroker_shared):
    with start_worker(celery_app, pool="solo", perform_ping_check=False):
        result = add.delay(2, 3)
        assert result.get(timeout=10) == 5
        minibroker_shared.wait_for_ack(queue="celery")
    (sent,) = minibroker_shared.history(queue="celery")
    assert sent.properties.headers["task"] == "shop.add"


def test_nothing_left_from_the_previous_test(celery_app, minibroker_shared):
    assert len(minibroker_shared.history()) == 0
    with start_worker(celery_app, pool="solo", perform_ping_check=False):
        assert add.delay(40, 2).get(timeout=10) == 42
