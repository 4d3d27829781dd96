"""Who may see what through the management API: RabbitMQ's user tags and vhost permissions.

Checked by the application once the user logged in, before the handler runs, in RabbitMQ
3.10's order and with its answers (all 401, ``"error": "not_authorised"``):

1. Every ``/api`` path needs a user tagged ``management``, ``policymaker``, ``monitoring`` or
   ``administrator``; anyone else gets ``"Not management user"`` (``whoami`` included).
2. The accounts, the definitions and one vhost's own object (``/api/vhosts/{vhost}``) are for
   administrators: ``"Not administrator user"``, before anything about the vhost is asked.
3. A path naming a vhost that exists: a user who may not see it gets ``"User not authorised
   to access virtual host"``, reads and writes alike. A vhost that does not exist is left to
   the handler (its 404).
4. Seeing: ``monitoring`` and ``administrator`` users see every vhost and every connection;
   the others only the vhosts they hold a permission entry in, and only their own
   connections and channels (``"User not authorised to access object"`` for another's). Lists
   and the overview's totals are filtered so; the overview of such a user has no
   ``consumers`` total, as RabbitMQ's has not.
5. A backend without accounts (``Backend.access()`` is ``None``: the in-process test backend)
   treats every user as an administrator.
"""

from __future__ import annotations

from minibroker.management.backend import Backend
from minibroker.management.errors import ApiError
from minibroker.valueclass import valueclass

__all__ = ["ADMIN_ONLY", "EVERYONE", "Viewer", "authorise", "viewer_of"]

MANAGEMENT_TAGS = frozenset({"management", "policymaker", "monitoring", "administrator"})
MONITOR_TAGS = frozenset({"monitoring", "administrator"})

#: Rule 2: the route patterns only administrators may use.
ADMIN_ONLY = frozenset({
    "/api/users", "/api/users/{user}", "/api/permissions", "/api/permissions/{vhost}/{user}",
    "/api/vhosts/{vhost}", "/api/definitions", "/api/definitions/{vhost}",
})


def _refused(reason: str) -> ApiError:
    return ApiError(401, "not_authorised", reason)


@valueclass(frozen=True)
class Viewer:
    """One user as the management API sees it (rule 4)."""

    user: str
    management: bool = True
    admin: bool = True
    monitor: bool = True
    #: The vhosts the user may see; ``None``: every vhost.
    vhosts: frozenset[str] | None = None

    def sees(self, vhost: str) -> bool:
        return self.vhosts is None or vhost in self.vhosts

    def owns(self, user: str) -> bool:
        """May this viewer see a connection (or channel) of ``user``?"""
        return self.monitor or user == self.user


#: Rule 5: what a backend without accounts makes of anyone.
EVERYONE = Viewer("")


def viewer_of(backend: Backend, user: str) -> Viewer:
    access = backend.access()
    if access is None:
        return Viewer(user)
    found = access.users.get(user)
    tags = found.tags if found is not None else frozenset()
    monitor = bool(tags & MONITOR_TAGS)
    vhosts = None if monitor else frozenset(
        vhost for name, vhost, _ in access.permission_entries() if name == user)
    return Viewer(user, management=bool(tags & MANAGEMENT_TAGS),
                  admin="administrator" in tags, monitor=monitor, vhosts=vhosts)


def authorise(viewer: Viewer, pattern: str, params: dict[str, str], backend: Backend) -> None:
    """Rules 1-3 for a request to ``pattern`` with these path parameters."""
    if not viewer.management:
        raise _refused("Not management user")
    if pattern in ADMIN_ONLY:
        if not viewer.admin:
            raise _refused("Not administrator user")
        return
    vhost = params.get("vhost")
    if vhost is not None and not viewer.sees(vhost) and vhost in backend.vhosts():
        raise _refused("User not authorised to access virtual host")


def not_owner() -> ApiError:
    """Rule 4: another user's connection or channel."""
    return _refused("User not authorised to access object")
