"""Message rates: counters the core keeps, sampled when the shell ticks, never per message.

Rules:

1. :meth:`RateSampler.tick` is the only place samples are taken. The shell calls it
   periodically with the wall-clock time (seconds since the epoch; samples are stamped in
   milliseconds, as RabbitMQ's are); a tick sooner than ``interval`` after the last sample does
   nothing. A sample reads the core's counters (``statistics()``, ``snapshot()``) and the
   shell's byte counts: the hot path never does anything for the management API.
2. A rate is the change between the last two samples over the time between them (RabbitMQ's
   "basic" rates mode, 5 s apart by default); before two samples exist every rate is 0.0.
   Gauges (queue depths) get rates the same way, so they can be negative.
3. Only the broker-wide series keep a history (``retention`` seconds, for the overview's
   ``samples``: RabbitMQ's ``msg_rates_age`` / ``lengths_age`` queries); each vhost, queue and
   connection keeps just its last sample, so memory is bounded by the objects that exist.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from minibroker.management.backend import Backend
from minibroker.valueclass import valueclass

__all__ = [
    "CONNECTION_SERIES", "GLOBAL_SERIES", "QUEUE_SERIES", "VHOST_SERIES", "Details",
    "RateSampler",
]

#: Broker-wide series, in RabbitMQ's names (``message_stats`` and ``queue_totals`` keys).
GLOBAL_SERIES = (
    "publish", "deliver_get", "ack", "return_unroutable",
    "messages", "messages_ready", "messages_unacknowledged",
)
QUEUE_SERIES = (
    "publish", "deliver_get", "ack", "redeliver",
    "messages", "messages_ready", "messages_unacknowledged",
)
CONNECTION_SERIES = ("recv_oct", "send_oct")
#: Per vhost: the broker-wide series of that vhost and its connections' bytes.
VHOST_SERIES = GLOBAL_SERIES + CONNECTION_SERIES

Details = dict[str, object]
_Values = tuple[int, ...]


@valueclass(frozen=True)
class _Sample:
    at: float  #: seconds since the epoch
    values: _Values


def _rates(old: _Sample | None, new: _Sample | None) -> tuple[float, ...] | None:
    if old is None or new is None or new.at <= old.at:
        return None
    span = new.at - old.at
    return tuple((b - a) / span for a, b in zip(old.values, new.values, strict=True))


class RateSampler:
    """Samples the broker's counters; answers rates and the overview's sample history."""

    def __init__(self, backend: Backend, *, interval: float = 5.0, retention: float = 600.0):
        if interval <= 0 or retention < interval:
            raise ValueError("interval must be positive and retention at least one interval")
        self.backend = backend
        self.interval = interval
        self.retention = retention
        self._history: deque[_Sample] = deque(maxlen=int(retention / interval) + 1)
        self._global_rates: tuple[float, ...] | None = None
        self._queues: dict[tuple[str, str], _Sample] = {}
        self._queue_rates: dict[tuple[str, str], tuple[float, ...]] = {}
        self._connections: dict[int, _Sample] = {}
        self._connection_rates: dict[int, tuple[float, ...]] = {}
        self._vhosts: dict[str, _Sample] = {}
        self._vhost_rates: dict[str, tuple[float, ...]] = {}

    # -- sampling (the shell's tick) ------------------------------------------------------------

    def tick(self, now: float) -> bool:
        """Take a sample if ``interval`` has passed since the last one; True if it did."""
        if self._history and now - self._history[-1].at < self.interval:
            return False
        self.sample(now)
        return True

    def sample(self, now: float) -> None:
        """Take a sample now, whatever the interval (tests; a shell's final flush)."""
        totals = [0] * len(GLOBAL_SERIES)
        queues: dict[tuple[str, str], _Sample] = {}
        connections: dict[int, _Sample] = {}
        vhosts: dict[str, _Sample] = {}
        for vhost in self.backend.vhosts():
            core = self.backend.core(vhost)
            if core is None:
                continue
            stats = core.statistics()
            values = (stats.published, stats.delivered, stats.acked, stats.returned,
                      stats.messages_ready + stats.messages_unacked, stats.messages_ready,
                      stats.messages_unacked)
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            snapshot = core.snapshot()
            for queue in snapshot.queues:
                queues[(vhost, queue.name)] = _Sample(now, (
                    queue.published, queue.delivered, queue.acked, queue.redelivered,
                    queue.ready + queue.unacked, queue.ready, queue.unacked))
            octets = [0, 0]
            for connection in snapshot.connections:
                details = self.backend.connection_details(connection.connection)
                if details is not None:
                    connections[connection.connection] = _Sample(
                        now, (details.recv_oct, details.send_oct))
                    octets = [octets[0] + details.recv_oct, octets[1] + details.send_oct]
            vhosts[vhost] = _Sample(now, (*values, *octets))
        new = _Sample(now, tuple(totals))
        self._global_rates = _rates(self._history[-1] if self._history else None, new)
        self._history.append(new)
        self._queue_rates = {key: rates for key, sample in queues.items()
                             if (rates := _rates(self._queues.get(key), sample)) is not None}
        self._queues = queues
        self._connection_rates = {
            key: rates for key, sample in connections.items()
            if (rates := _rates(self._connections.get(key), sample)) is not None}
        self._connections = connections
        self._vhost_rates = {key: rates for key, sample in vhosts.items()
                             if (rates := _rates(self._vhosts.get(key), sample)) is not None}
        self._vhosts = vhosts

    # -- answers ----------------------------------------------------------------------------

    def rate(self, series: str) -> float:
        """The broker-wide rate of ``series`` (a name in :data:`GLOBAL_SERIES`)."""
        rates = self._global_rates
        return rates[GLOBAL_SERIES.index(series)] if rates is not None else 0.0

    def queue_rates(self, vhost: str, name: str) -> Mapping[str, float]:
        rates = self._queue_rates.get((vhost, name))
        return dict(zip(QUEUE_SERIES, rates or (0.0,) * len(QUEUE_SERIES), strict=True))

    def vhost_rates(self, vhost: str) -> Mapping[str, float]:
        rates = self._vhost_rates.get(vhost)
        return dict(zip(VHOST_SERIES, rates or (0.0,) * len(VHOST_SERIES), strict=True))

    def connection_rates(self, connection: int) -> Mapping[str, float]:
        rates = self._connection_rates.get(connection)
        return dict(zip(CONNECTION_SERIES, rates or (0.0, 0.0), strict=True))

    def details(self, series: str, *, age: float | None = None, incr: float | None = None
                ) -> Details:
        """RabbitMQ's ``<series>_details`` object for a broker-wide series: ``{"rate": r}``, and
        with ``age``/``incr`` (seconds) also ``samples`` (newest first, one every ``incr``
        seconds over ``age``), ``avg_rate`` and ``avg``."""
        details: Details = {"rate": self.rate(series)}
        if age is None or incr is None or not self._history:
            return details
        index = GLOBAL_SERIES.index(series)
        points = self._points(index, age, incr)
        details["samples"] = [{"sample": value, "timestamp": int(at * 1000)}
                              for at, value in points]
        if len(points) >= 2:
            (new_at, new), (old_at, old) = points[0], points[-1]
            details["avg_rate"] = (new - old) / (new_at - old_at)
        else:
            details["avg_rate"] = 0.0
        details["avg"] = (sum(value for _, value in points) / len(points)) if points else 0.0
        return details

    def _points(self, index: int, age: float, incr: float) -> list[tuple[float, int]]:
        """The value at each multiple of ``incr`` over the last ``age`` seconds: the latest
        sample at or before it (RabbitMQ aligns sample times the same way)."""
        history = self._history
        incr = max(incr, self.interval)
        age = min(age, self.retention)
        newest = history[-1].at
        at = newest - newest % incr
        points: list[tuple[float, int]] = []
        position = len(history) - 1
        while at > newest - age - 1e-9 and position >= 0:
            while position >= 0 and history[position].at > at:
                position -= 1
            if position < 0:
                break
            points.append((at, history[position].values[index]))
            at -= incr
        return points
