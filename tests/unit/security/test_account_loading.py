"""Loading users, vhosts and permissions from a definitions document (``accounts.py``): every
entry the access model refuses is skipped with one line saying which and why, the others
load, and nothing is half-applied. ``add_user`` creates the vhosts it names."""

from __future__ import annotations

import json

from minibroker.accounts import add_user, load_accounts
from minibroker.core.access import AccessControl, Permissions
from minibroker.storage import definitions_json

SHA256 = "rabbit_password_hashing_sha256"


def test_each_refused_entry_is_one_problem_line_and_the_rest_loads() -> None:
    document = {
        "vhosts": [{"name": "ok"}, {"name": "bad", "limits": {"max-connections": "many"}}],
        "users": [
            {"name": "u", "password_hash": "", "hashing_algorithm": SHA256, "tags": [],
             "limits": {"max-channels": "x"}},
            {"name": "v", "password_hash": "", "hashing_algorithm": SHA256, "tags": []},
        ],
        "permissions": [
            {"user": "nobody", "vhost": "ok", "configure": ".*", "write": ".*", "read": ".*"},
            {"user": "v", "vhost": "ok", "configure": "(", "write": ".*", "read": ".*"},
        ],
        "topic_permissions": [{"user": "v", "vhost": "missing", "exchange": "amq.topic",
                               "write": ".*", "read": ".*"}],
        "parameters": [
            {"component": "federation", "vhost": "ok", "name": "x", "value": {}},  # not ours
            {"component": "vhost-limits", "vhost": "missing", "name": "limits",
             "value": {"max-queues": 1}},
        ],
    }
    access = AccessControl()
    problems = load_accounts(access, definitions_json.parse(json.dumps(document)))
    assert problems == [
        "vhost 'bad' refused: vhost limit 'max-connections' must be an integer, not 'many'",
        "user 'u' refused: user limit 'max-channels' must be an integer, not 'x'",
        "permissions of 'nobody' in vhost 'ok' refused: no user 'nobody'",
        "permissions of 'v' in vhost 'ok' refused: invalid configure regular expression '(': "
        "missing ), unterminated subpattern at position 0",
        "topic permissions {'user': 'v', 'vhost': 'missing', 'exchange': 'amq.topic', "
        "'write': '.*', 'read': '.*'} refused: no vhost 'missing'",
        "vhost-limits {'component': 'vhost-limits', 'vhost': 'missing', 'name': 'limits', "
        "'value': {'max-queues': 1}} refused: no vhost 'missing'",
    ]
    assert (sorted(access.vhosts), sorted(access.users)) == (["ok"], ["v"])
    assert access.permissions("v", "ok") is None  # the refused entry left nothing behind


def test_add_user_creates_the_vhosts_it_names() -> None:
    access = AccessControl()
    add_user(access, "ops", "secret", vhosts=("/", "staging"),
             permissions=Permissions("^$", ".*", ".*"))
    assert sorted(access.vhosts) == ["/", "staging"]
    assert access.permissions("ops", "staging") == Permissions("^$", ".*", ".*")
