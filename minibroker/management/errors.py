"""Errors of the management API, as RabbitMQ's answers them: a status and ``{error, reason}``.

Rules:

1. A handler refuses a request by raising :class:`ApiError`; the application turns it into the
   response (``application/json`` body ``{"error": ..., "reason": ...}``). ``reason`` is a
   string, or a list where RabbitMQ sends one (``["not_boolean", "yes"]``).
2. An error the core raises becomes what RabbitMQ's management plugin answers for it
   (:func:`from_amqp`): 404 ``not_found`` for NOT_FOUND, 401 ``not_authorised`` "Access
   refused." for ACCESS_REFUSED, 400 ``bad_request`` for the rest, with the core's text (which
   is RabbitMQ's) as the reason.
"""

from __future__ import annotations

from minibroker.errors import AccessRefused, AMQPError, NotFound

__all__ = ["NOT_FOUND", "ApiError", "Reason", "bad_request", "from_amqp", "not_found"]

Reason = str | list[str | int]


class ApiError(Exception):
    """Answer the request with ``status`` and ``{"error": error, "reason": reason}``."""

    def __init__(
        self, status: int, error: str, reason: Reason,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers


def bad_request(reason: Reason) -> ApiError:
    return ApiError(400, "bad_request", reason)


def not_found(reason: Reason = "Not Found") -> ApiError:
    """RabbitMQ's answer for a path naming nothing: ``Object Not Found``."""
    return ApiError(404, "Object Not Found", reason)


NOT_FOUND = not_found()


def from_amqp(err: AMQPError, *, prefixed: bool = False) -> ApiError:
    """The API's answer to an error the core raised. ``prefixed``: the reason carries the AMQP
    reply text (``"NOT_FOUND - no queue 'q' in vhost '/'"``), as RabbitMQ's answers do where
    it ran the operation over an AMQP channel (queue get)."""
    reason = err.reply_text if prefixed else err.text
    if isinstance(err, NotFound):
        return ApiError(404, "not_found", reason)
    if isinstance(err, AccessRefused):
        return ApiError(401, "not_authorised", "Access refused.")
    return bad_request(reason)
