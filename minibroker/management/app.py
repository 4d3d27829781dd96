"""The management application: one HTTP request in, one response out, no sockets.

The HTTP adapter feeds each request the codec hands out to :meth:`ManagementApp.handle` and
writes the response back with the codec; :meth:`ManagementApp.error_response` answers a
request the codec refused.

Rules:

1. ``/api/...`` needs HTTP basic auth with a user of the broker (``Backend.login``): none is
   401 with ``WWW-Authenticate: Basic realm="RabbitMQ Management"`` and no body, wrong is 401
   ``"Login failed"`` (RabbitMQ's answers). The challenge is left out for requests marked
   ``X-Requested-With: XMLHttpRequest``, so the web page's own login form is not doubled by
   the browser's.
   ``/metrics`` (as ``rabbitmq_prometheus``) and the web page's files need no login.
2. Routing happens before authentication (404 and 405 first, as RabbitMQ's web server does).
3. Every answer is a :class:`Response`; refusals are :class:`ApiError` turned into RabbitMQ's
   ``{"error", "reason"}`` bodies. Any other exception is a bug: it is logged and answered 500,
   and the broker carries on.
4. After the login, who may do what: user tags and vhost permissions (``authz.py``),
   checked before the handler runs.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

from minibroker.management import (
    accounts,
    authz,
    bindings,
    connections,
    definitions_api,
    exchanges,
    overview,
    queues,
)
from minibroker.management.api import (
    PRODUCT_NAME,
    PRODUCT_VERSION,
    RABBITMQ_VERSION,
    Api,
    Call,
    json_response,
)
from minibroker.management.backend import Backend
from minibroker.management.errors import NOT_FOUND, ApiError
from minibroker.management.metrics import CONTENT_TYPE, render_metrics
from minibroker.management.rates import RateSampler
from minibroker.management.routes import Router, split_path
from minibroker.protocols.http import HTTPError, Request, Response

__all__ = ["REALM", "ManagementApp"]

log = logging.getLogger("minibroker.management")

REALM = 'Basic realm="RabbitMQ Management"'
NO_CREDENTIALS = "no credentials"
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
}
Handler = Callable[[Api, Call], Response]


class ManagementApp:
    """RabbitMQ's management HTTP API, Prometheus metrics and the web page, over a backend."""

    def __init__(self, backend: Backend, *, sampler: RateSampler | None = None) -> None:
        self.backend = backend
        self.sampler = sampler or RateSampler(backend)
        self.api = Api(backend, self.sampler)
        self.router = Router([
            *overview.ROUTES, *accounts.ROUTES, *queues.ROUTES, *exchanges.ROUTES, *bindings.ROUTES,
            *connections.ROUTES, *definitions_api.ROUTES,
        ])
        self._static: dict[str, tuple[str, bytes]] = {}

    # -- entry points -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except ApiError as err:
            return _error(err)
        except Exception:  # a bug: the broker keeps serving (rule 3)
            log.exception("management API: %s %s failed", request.method, request.target)
            return json_response({"error": "internal_error",
                                  "reason": "the request failed inside minibroker"}, 500)

    def error_response(self, err: HTTPError) -> Response:
        """The answer to a request the codec refused (the codec closes after it)."""
        return json_response({"error": err.reason.lower().replace(" ", "_"),
                              "reason": err.text}, err.status)

    # -- dispatch -----------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        segments = split_path(request.path)
        if segments and segments[0] == "metrics":
            return self._metrics(request, segments)
        if not segments or segments[0] != "api":
            return self._file(request, segments)
        route, params = self.router.match(segments)
        if request.method == "OPTIONS":
            return Response(200, (("Allow", route.allow),))
        handler = self.router.handler(route, request.method)
        user = self._login(request)
        viewer = authz.viewer_of(self.backend, user)
        authz.authorise(viewer, route.pattern, params, self.backend)
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        response = handler(self.api, Call(request, user, params, query, viewer))
        assert isinstance(response, Response)
        return response

    def _login(self, request: Request) -> str:
        challenge = (() if request.header("x-requested-with") == "XMLHttpRequest"
                     else (("WWW-Authenticate", REALM),))
        header = request.header("authorization")
        if header is None:
            raise ApiError(401, "not_authorized", NO_CREDENTIALS, challenge)
        scheme, _, credentials = header.partition(" ")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        user, colon, password = decoded.partition(":")
        if scheme.lower() != "basic" or not colon or not self.backend.login(
                user, password):
            raise ApiError(401, "not_authorized", "Login failed", challenge)
        return user

    def versions(self) -> dict[str, str]:
        return {"rabbitmq_version": RABBITMQ_VERSION, "product_name": PRODUCT_NAME,
                "product_version": PRODUCT_VERSION}

    def _metrics(self, request: Request, segments: list[str]) -> Response:
        if segments not in (["metrics"], ["metrics", "per-object"]):
            raise NOT_FOUND
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "Method Not Allowed", f"{request.method} is not allowed",
                           (("Allow", "GET, HEAD"),))
        text = render_metrics(self.backend, per_object=len(segments) == 2,
                              versions={"rabbitmq_version": RABBITMQ_VERSION})
        return Response(200, (("Content-Type", CONTENT_TYPE),), text.encode("utf-8"))

    def _file(self, request: Request, segments: list[str]) -> Response:
        """The web page's files (``static/`` in the package): ``/`` is ``index.html``."""
        name = "/".join(segments) or "index.html"
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "Method Not Allowed", f"{request.method} is not allowed",
                           (("Allow", "GET, HEAD"),))
        found = self._static.get(name)
        if found is None:
            found = _load_static(name)
            self._static[name] = found
        content_type, body = found
        return Response(200, (("Content-Type", content_type), ("Cache-Control", "no-cache")),
                        body)


def _load_static(name: str) -> tuple[str, bytes]:
    if name.startswith(".") or "/." in name or "\\" in name:
        raise NOT_FOUND
    suffix = name[name.rfind("."):] if "." in name else ""
    content_type = _STATIC_TYPES.get(suffix)
    if content_type is None:
        raise NOT_FOUND
    # Imported on the first page request, not at start: importlib.resources brings tempfile
    # and shutil (about 4 ms, docs/benchmarks.md "Start-up").
    from importlib import resources

    resource = resources.files("minibroker.management").joinpath("static")
    for part in name.split("/"):
        resource = resource.joinpath(part)
    if not resource.is_file():
        raise NOT_FOUND
    return content_type, resource.read_bytes()


def _error(err: ApiError) -> Response:
    if err.status == 401 and err.reason == NO_CREDENTIALS:
        return Response(401, err.headers)  # RabbitMQ's challenge has no body
    return json_response({"error": err.error, "reason": err.reason}, err.status, err.headers)
