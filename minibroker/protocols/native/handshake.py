"""The native handshake's decisions: who may log in, and the limits both sides then use.

Pure functions over frames (``docs/protocol.md`` section 3); ``connection.py`` calls them at
the matching step of its state machine.

Rules:

1. A ``Hello`` logs in with its own credentials only: the server never picks a user for the
   client (the client library sends guest/guest when its URL names none, as AMQP clients
   do). A ``Hello`` without a user name, an unknown user, a wrong password are refused alike
   with AMQP's login refusal: 403 ACCESS_REFUSED "Login was refused using authentication
   mechanism PLAIN. For details see the broker logfile." (``core/access.py`` rule 2).
2. ``Tune`` may only lower the server's limits, never raise them; 0 for the frame size or the
   channel max means "the server's". A frame size under 4096 (AMQP's frame-min-size) is 530.
   The effective heartbeat is the smaller of the two; 0 disables heartbeats.
3. A client asks for its wish where it has one, never more than the server offered; no wish
   takes the offer (a channel max of 0 in the offer means "no limit": 65535).
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.errors import NotAllowed
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import MIN_FRAME_SIZE

__all__ = ["LoginCheck", "client_tune", "login", "server_limits"]


#: ``login(user, password, mechanism)`` -> the user name, or ``LoginRefused`` (403).
LoginCheck = Callable[[str | None, str | None, str], str]


def login(check: LoginCheck, hello: f.Hello) -> str:
    """The user ``hello`` logs in as (rule 1): its credentials, checked as a PLAIN login."""
    return check(hello.username, hello.password, "PLAIN")


def server_limits(offer: f.HelloOk, tune: f.Tune) -> f.Tune:
    """The limits of the connection after the client's ``tune`` (rule 2)."""
    frame_max = min(tune.max_frame_size or offer.max_frame_size, offer.max_frame_size)
    if frame_max < MIN_FRAME_SIZE:
        raise NotAllowed(f"max_frame_size {frame_max} is below the minimum {MIN_FRAME_SIZE}")
    return f.Tune(frame_max, min(tune.channel_max or offer.channel_max, offer.channel_max),
                  min(tune.heartbeat, offer.heartbeat))


def client_tune(offer: f.HelloOk, max_frame_size: int | None, channel_max: int | None,
                heartbeat: int | None) -> f.Tune:
    """The ``Tune`` a client with these wishes answers ``offer`` with (rule 3)."""

    def choose(ours: int | None, theirs: int) -> int:
        return theirs if ours is None else min(ours, theirs)

    return f.Tune(choose(max_frame_size, offer.max_frame_size),
                  choose(channel_max, offer.channel_max or 0xFFFF),
                  choose(heartbeat, offer.heartbeat))
