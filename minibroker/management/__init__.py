"""The management API: RabbitMQ's HTTP API, Prometheus metrics and a live web page.

The third protocol adapter, after the native protocol and AMQP 0-9-1: the HTTP codec
(``minibroker.protocols.http``) frames requests; :class:`ManagementApp` answers each one from
the core's snapshots and changes the core only with core commands, through a
:class:`~minibroker.management.backend.Backend` the shell provides. A :class:`RateSampler`,
ticked by the shell, turns the core's counters into message rates.

Reading order: ``backend.py`` (what the API needs from the broker), ``app.py`` (auth and
dispatch), ``api.py`` (the handlers' toolbox), then one module per resource: ``overview.py``,
``queues.py``, ``exchanges.py``, ``bindings.py``, ``connections.py``, ``definitions_api.py``;
``render.py`` holds RabbitMQ's JSON objects, ``rates.py`` the sampler, ``metrics.py`` the
Prometheus text, ``static/`` the web page.
"""

from minibroker.management.app import ManagementApp
from minibroker.management.backend import Backend, ConnectionDetails, Listener, LocalBackend
from minibroker.management.rates import RateSampler

__all__ = [
    "Backend", "ConnectionDetails", "Listener", "LocalBackend", "ManagementApp", "RateSampler",
]
