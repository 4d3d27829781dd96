"""The rate sampler: samples only when ticked, rates between the last two samples, bounded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from minibroker.core import commands as c
from minibroker.management.rates import RateSampler
from minibroker.message import Message
from tests.management.harness import World


def publish(world: World, count: int) -> None:
    for _ in range(count):
        world.run(c.Publish(1, 1, Message("", "q", b"x")))


def ready_world() -> World:
    world = World()
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "q"))
    return world


def test_a_tick_samples_at_most_once_per_interval() -> None:
    world = ready_world()
    sampler = RateSampler(world.backend, interval=5.0)
    assert sampler.tick(100.0)
    publish(world, 3)
    assert not sampler.tick(104.9)  # too soon: nothing read
    assert sampler.rate("publish") == 0.0
    assert sampler.tick(106.0)
    assert sampler.rate("publish") == pytest.approx(3 / 6.0)


def test_rates_are_zero_until_two_samples_and_follow_the_last_interval() -> None:
    world = ready_world()
    sampler = RateSampler(world.backend, interval=1.0)
    sampler.sample(0.0)
    assert sampler.queue_rates("/", "q")["publish"] == 0.0
    publish(world, 4)
    sampler.sample(2.0)
    assert sampler.queue_rates("/", "q") == {
        "publish": 2.0, "deliver_get": 0.0, "ack": 0.0, "redeliver": 0.0, "messages": 2.0,
        "messages_ready": 2.0, "messages_unacknowledged": 0.0}
    world.run(c.PurgeQueue(1, 1, "q"))
    sampler.sample(4.0)
    assert sampler.queue_rates("/", "q")["messages"] == -2.0  # a gauge can fall
    assert sampler.rate("publish") == 0.0


def test_deleted_objects_are_forgotten_and_history_is_bounded() -> None:
    world = ready_world()
    sampler = RateSampler(world.backend, interval=1.0, retention=10.0)
    for second in range(100):
        sampler.sample(float(second))
    assert len(sampler.details("publish", age=1000, incr=1)["samples"]) == 11  # type: ignore[arg-type]
    world.run(c.DeleteQueue(1, 1, "q"))
    sampler.sample(100.0)
    assert sampler.queue_rates("/", "q")["publish"] == 0.0
    assert ("/", "q") not in sampler._queues


def test_the_sampler_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="interval"):
        RateSampler(World().backend, interval=0)
    with pytest.raises(ValueError, match="retention"):
        RateSampler(World().backend, interval=5, retention=1)


def test_connection_byte_rates_come_from_the_shell() -> None:
    world = ready_world()
    sampler = RateSampler(world.backend, interval=1.0)
    sampler.sample(0.0)
    details = world.details[1]
    world.details[1] = replace(details, recv_oct=details.recv_oct + 1000, send_oct=details.send_oct)
    sampler.sample(2.0)
    assert sampler.connection_rates(1) == {"recv_oct": 500.0, "send_oct": 0.0}
    assert sampler.vhost_rates("/")["recv_oct"] == 500.0
