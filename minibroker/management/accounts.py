"""``/api/users``, ``/api/permissions`` and the writes of ``/api/vhosts``: the broker's accounts.

Rules:

1. Only a user tagged ``administrator`` may read or change accounts; anyone else gets
   RabbitMQ's 401 ``{"error": "not_authorised", "reason": "Not administrator user"}``.
2. The objects have RabbitMQ's field names: a user is ``name``, ``password_hash``,
   ``hashing_algorithm``, ``tags`` (a list), ``limits``; a permission is ``user``, ``vhost``,
   ``configure``, ``write``, ``read``.
3. ``PUT`` answers 201 when it created the object and 204 when it replaced one; ``DELETE``
   answers 204, or 404 when there was nothing to delete. A user's body gives ``password`` (hashed
   here, RabbitMQ's format) or ``password_hash`` (verbatim, with its ``hashing_algorithm``); a
   new user needs one of them (``""`` is a user no password logs in). ``tags`` is a list or
   RabbitMQ's comma-separated string.
4. Deleting a user or a vhost closes its connections (320), as ``rabbitmqctl`` does; the
   default vhost ``/`` holds the broker's own core and cannot be deleted here (400).
5. A backend without accounts (the in-process test backend) answers 404 on these paths.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from minibroker.core.access import AccessControl, Permissions, User, VHost
from minibroker.management.api import Api, Call, json_response, no_content
from minibroker.management.errors import NOT_FOUND, ApiError, bad_request
from minibroker.passwords import hash_password
from minibroker.protocols.http import Response

__all__ = ["ROUTES"]

DEFAULT_VHOST = "/"


def _admin(api: Api, call: Call) -> AccessControl:
    """Rule 1 and rule 5."""
    access = api.backend.access()
    if access is None:
        raise NOT_FOUND
    user = access.users.get(call.user)
    if user is None or "administrator" not in user.tags:
        raise ApiError(401, "not_authorised", "Not administrator user")
    return access


def _user_json(user: User) -> dict[str, Any]:
    return {"name": user.name, "password_hash": user.password_hash,
            "hashing_algorithm": user.hashing_algorithm, "tags": sorted(user.tags),
            "limits": user.limits.to_definition()}


def _permission_json(user: str, vhost: str, permissions: Permissions) -> dict[str, Any]:
    return {"user": user, "vhost": vhost, "configure": permissions.configure,
            "write": permissions.write, "read": permissions.read}


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{key} must be a string, not {type(value).__name__}")
    return value


def _tags(body: dict[str, Any], current: frozenset[str]) -> frozenset[str]:
    tags = body.get("tags")
    if tags is None:
        return current
    if isinstance(tags, str):
        return frozenset(tag.strip() for tag in tags.split(",") if tag.strip())
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        return frozenset(tags)
    raise bad_request("tags must be a comma-separated string or a list of strings")


# -- users -----------------------------------------------------------------------------------

def list_users(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    return json_response([_user_json(user) for _, user in sorted(access.users.items())])


def show_user(api: Api, call: Call) -> Response:
    user = _admin(api, call).users.get(call.params["user"])
    if user is None:
        raise NOT_FOUND
    return json_response(_user_json(user))


def put_user(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    name = call.params["user"]
    body = call.json()
    existing = access.users.get(name)
    password = _text(body, "password")
    password_hash = _text(body, "password_hash")
    algorithm = _text(body, "hashing_algorithm")
    if password is not None:
        stored, algorithm = (hash_password(password) if password else ""), None
    elif password_hash is not None:
        stored = password_hash
    elif existing is not None:
        stored, algorithm = existing.password_hash, existing.hashing_algorithm
    else:
        raise bad_request("password or password_hash must be set for a new user")
    tags = _tags(body, existing.tags if existing else frozenset())
    fields: dict[str, Any] = {"password_hash": stored, "tags": tags}
    if algorithm is not None:
        fields["hashing_algorithm"] = algorithm
    try:
        user = replace(existing, **fields) if existing else User(name, **fields)
    except ValueError as err:
        raise bad_request(str(err)) from None
    access.put_user(user)
    return no_content() if existing is not None else Response(201)


def delete_user(api: Api, call: Call) -> Response:
    _admin(api, call)
    try:
        api.backend.delete_user(call.params["user"])
    except LookupError:
        raise NOT_FOUND from None
    return no_content()


# -- vhosts (their reads are in overview.py) ---------------------------------------------------

def put_vhost(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    name = call.params["vhost"]
    body = call.json() if call.request.body else {}
    existing = access.vhosts.get(name)
    description = _text(body, "description", existing.description if existing else "") or ""
    tags = _tags(body, existing.tags if existing else frozenset())
    access.put_vhost(replace(existing, description=description, tags=tags) if existing
                     else VHost(name, description, tags))
    return no_content() if existing is not None else Response(201)


def delete_vhost(api: Api, call: Call) -> Response:
    _admin(api, call)
    name = call.params["vhost"]
    if name == DEFAULT_VHOST:
        raise bad_request("the default vhost '/' holds the broker's own core and cannot be "
                          "deleted in minibroker")
    try:
        api.backend.delete_vhost(name)
    except LookupError:
        raise NOT_FOUND from None
    return no_content()


# -- permissions ---------------------------------------------------------------------------

def list_permissions(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    return json_response([_permission_json(user, vhost, permissions)
                          for user, vhost, permissions in access.permission_entries()])


def show_permissions(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    user, vhost = call.params["user"], call.params["vhost"]
    permissions = access.permissions(user, vhost)
    if permissions is None:
        raise NOT_FOUND
    return json_response(_permission_json(user, vhost, permissions))


def put_permissions(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    user, vhost = call.params["user"], call.params["vhost"]
    body = call.json()
    if user not in access.users:
        raise bad_request(f"no user '{user}'")
    if vhost not in access.vhosts:
        raise bad_request(f"no vhost '{vhost}'")
    existed = access.permissions(user, vhost) is not None
    expressions = {key: _text(body, key, "") for key in ("configure", "write", "read")}
    try:
        permissions = Permissions(**expressions)  # type: ignore[arg-type]
    except ValueError as err:
        raise bad_request(str(err)) from None
    access.set_permissions(user, vhost, permissions)
    return no_content() if existed else Response(201)


def delete_permissions(api: Api, call: Call) -> Response:
    access = _admin(api, call)
    user, vhost = call.params["user"], call.params["vhost"]
    if access.permissions(user, vhost) is None:
        raise NOT_FOUND
    access.clear_permissions(user, vhost)
    return no_content()


ROUTES = [
    ("/api/users", {"GET": list_users}),
    ("/api/users/{user}", {"GET": show_user, "PUT": put_user, "DELETE": delete_user}),
    ("/api/permissions", {"GET": list_permissions}),
    ("/api/permissions/{vhost}/{user}",
     {"GET": show_permissions, "PUT": put_permissions, "DELETE": delete_permissions}),
]

#: Merged into ``/api/vhosts/{vhost}``'s methods by ``overview.py`` (its GET lives there).
VHOST_WRITES = {"PUT": put_vhost, "DELETE": delete_vhost}
