"""The rabbitmqctl provisioning used by the differential security tests removes what it made,
also when the block inside fails."""

from __future__ import annotations

import uuid

import pytest

from tests.compat.access_runner import Names, definitions
from tests.compat.rabbitmqctl import (  # noqa: F401 - the fixture
    RabbitAdmin,
    provisioned,
    rabbitmq_admin,
    rabbitmqctl,
    reference_broker,
)

SCENARIO = {"name": "probe", "permissions": [".*", ".*", ".*"], "user_limits": {"max-channels": 3},
            "vhost_limits": {"max-queues": 5}, "topic_permissions": [["amq.topic", "^a", "^b"]]}


def _present(names: Names) -> tuple[bool, bool]:
    vhosts = rabbitmqctl("list_vhosts").split()
    users = [line.split("\t")[0] for line in rabbitmqctl("list_users").splitlines()]
    return names.vhost(0) in vhosts, names.user(0) in users


@pytest.mark.rabbitmq
def test_provisioned_definitions_exist_inside_and_go_away_after_a_failure() -> None:
    host, port = reference_broker()
    names = Names(uuid.uuid4().hex[:6])
    document = definitions([SCENARIO], names)
    with pytest.raises(RuntimeError, match="boom"), provisioned(host, port, document):
        assert _present(names) == (True, True)
        assert "max-channels" in rabbitmqctl("list_user_limits", "--user", names.user(0))
        raise RuntimeError("boom")
    assert _present(names) == (False, False)


@pytest.mark.rabbitmq
def test_the_fixture_loads_definitions(rabbitmq_admin: RabbitAdmin) -> None:  # noqa: F811
    names = Names(uuid.uuid4().hex[:6])
    rabbitmq_admin.load(definitions([SCENARIO], names))
    assert _present(names) == (True, True)
    permissions = rabbitmqctl("list_topic_permissions", "-p", names.vhost(0))
    assert names.user(0) in permissions and "amq.topic" in permissions
