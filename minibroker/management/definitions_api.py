"""``/api/definitions``: export the topology as RabbitMQ's definitions JSON, import it back.

Rules:

1. ``GET`` answers the document of every vhost (``/api/definitions/{vhost}``: that vhost's);
   ``?download=<file name>`` adds ``Content-Disposition: attachment`` as RabbitMQ's page uses.
2. ``POST`` imports a document (``definitions.import_commands``) as the authenticated user and
   answers 204; a document the core refuses part-way is 400 with the core's text, and what was
   declared before the refusal stays (RabbitMQ's import is not atomic either).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from minibroker.errors import AMQPError
from minibroker.management.api import (
    PRODUCT_NAME,
    PRODUCT_VERSION,
    RABBITMQ_VERSION,
    Api,
    Call,
    json_response,
    no_content,
)
from minibroker.management.definitions import export_definitions, import_commands
from minibroker.management.errors import from_amqp
from minibroker.protocols.http import Response

__all__ = ["ROUTES"]

VERSIONS = {"rabbitmq_version": RABBITMQ_VERSION, "product_name": PRODUCT_NAME,
            "product_version": PRODUCT_VERSION}


def export(api: Api, call: Call) -> Response:
    vhosts = api.vhosts(call)
    snapshots = {vhost: api.core(vhost).snapshot() for vhost in vhosts}
    document = export_definitions(snapshots, users=api.backend.users(), versions=VERSIONS,
                                  single_vhost="vhost" in call.params,
                                  access=api.backend.access())
    download = call.query.get("download")
    headers = ((("Content-Disposition", f'attachment; filename="{_safe(download)}"'),)
               if download else ())
    return json_response(document, headers=headers)


def _safe(name: str) -> str:
    return "".join(char for char in name if char.isalnum() or char in "-_.") or "definitions"


def load(api: Api, call: Call) -> Response:
    vhost = call.params.get("vhost")
    if vhost is not None:
        api.core(vhost)
    commands = import_commands(call.request.body, vhosts=list(api.backend.vhosts()),
                               vhost=vhost)
    for target, group in groupby(commands, key=lambda pair: pair[0]):
        with api.channel(target, call.user) as channel:
            for _, command in group:
                try:
                    channel.run(replace(command, connection=channel.connection,
                                        channel=channel.channel))
                except AMQPError as err:
                    raise from_amqp(err) from None
    return no_content()


ROUTES = [
    ("/api/definitions", {"GET": export, "POST": load}),
    ("/api/definitions/{vhost}", {"GET": export, "POST": load}),
]
