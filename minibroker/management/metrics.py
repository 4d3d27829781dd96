"""``GET /metrics``: Prometheus text format with ``rabbitmq_prometheus``'s metric names.

Rules:

1. Only what minibroker knows is exported, under RabbitMQ's names, types and help texts, so
   dashboards and alerts written for RabbitMQ read it unchanged. Counters the core does not
   keep are absent, not zero (``docs/management.md`` lists them).
2. ``/metrics`` aggregates queue metrics over every queue (no labels), as RabbitMQ does by
   default; ``/metrics/per-object`` labels them with ``vhost`` and ``queue``.
3. The text is built from one ``statistics()`` and one ``snapshot()`` per vhost at scrape time:
   scraping costs the hot path nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from minibroker.management.backend import Backend
from minibroker.valueclass import valueclass

__all__ = ["CONTENT_TYPE", "render_metrics", "resident_memory_bytes"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


@valueclass(frozen=True)
class _Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[Labels, float]]


def resident_memory_bytes() -> int | None:
    """This process's resident set size (Linux ``/proc/self/statm``), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text(families: Iterable[_Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# TYPE {family.name} {family.kind}")
        lines.append(f"# HELP {family.name} {family.help}")
        for labels, value in family.samples:
            rendered = ",".join(f'{key}="{_escape(item)}"' for key, item in labels)
            lines.append(f"{family.name}{{{rendered}}} {_number(value)}" if labels
                         else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


_QUEUE_GAUGES = (
    ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers"),
    ("rabbitmq_queue_messages_unacked",
     "Messages delivered to consumers but not yet acknowledged"),
    ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth"),
    ("rabbitmq_queue_consumers", "Consumers on a queue"),
)


def render_metrics(
    backend: Backend, *, per_object: bool = False, versions: dict[str, str] | None = None
) -> str:
    """The Prometheus exposition text for ``backend`` (rules 1-3)."""
    families: list[_Family] = []
    memory = backend.resident_memory()
    if memory is not None:
        families.append(_Family("rabbitmq_process_resident_memory_bytes", "gauge",
                                "Memory used in bytes", [((), memory)]))
    queue_samples: list[list[tuple[Labels, float]]] = [[] for _ in _QUEUE_GAUGES]
    published: list[tuple[Labels, float]] = []
    totals = dict.fromkeys(("connections", "channels", "consumers", "queues", "published",
                            "delivered", "acked", "returned"), 0)
    sums = [0] * (len(_QUEUE_GAUGES) + 1)
    for vhost in backend.vhosts():
        core = backend.core(vhost)
        if core is None:
            continue
        stats = core.statistics()
        for key in totals:
            totals[key] += getattr(stats, key)
        for queue in core.snapshot().queues:
            values = (queue.ready, queue.unacked, queue.ready + queue.unacked, queue.consumers,
                      queue.published)
            sums = [a + b for a, b in zip(sums, values, strict=True)]
            if per_object:
                labels = (("vhost", vhost), ("queue", queue.name))
                for samples, value in zip(queue_samples, values, strict=False):
                    samples.append((labels, value))
                # RabbitMQ counts this per channel, exchange and queue, labelled queue_vhost
                published.append(((("queue_vhost", vhost), ("queue", queue.name)),
                                  queue.published))
    if not per_object:
        for samples, value in zip(queue_samples, sums, strict=False):
            samples.append(((), value))
        published.append(((), sums[-1]))
    for (name, help_text), samples in zip(_QUEUE_GAUGES, queue_samples, strict=True):
        families.append(_Family(name, "gauge", help_text, samples))
    families.append(_Family("rabbitmq_queue_messages_published_total", "counter",
                            "Total number of messages published to queues", published))
    for key, help_text in (("connections", "Connections currently open"),
                           ("channels", "Channels currently open"),
                           ("consumers", "Consumers currently connected"),
                           ("queues", "Queues available")):
        families.append(_Family(f"rabbitmq_{key}", "gauge", help_text, [((), totals[key])]))
    info = versions or {}
    families.append(_Family(
        "rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info",
        [(tuple(sorted(info.items())), 1)]))
    families.append(_Family(
        "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info",
        [((("rabbitmq_node", backend.node), ("rabbitmq_cluster", backend.node)), 1)]))
    for key, name, help_text in (
        ("published", "received", "Total number of messages received from publishers"),
        ("delivered", "delivered", "Total number of messages delivered to consumers"),
        ("acked", "acknowledged", "Total number of messages acknowledged by consumers"),
        ("returned", "unroutable_returned",
         "Total number of messages published as mandatory into an exchange and returned to "
         "the publisher as unroutable"),
    ):
        families.append(_Family(f"rabbitmq_global_messages_{name}_total", "counter", help_text,
                                [((), totals[key])]))
    return _text(families)
