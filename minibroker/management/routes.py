"""Paths to handlers: RabbitMQ's URL scheme, one segment per name.

Rules:

1. A pattern is a path whose segments are literals or ``{name}`` parameters (``{name:a|b}``
   accepts only the listed values). A request path is split at ``/`` *before* its segments are
   percent-decoded, so ``/api/queues/%2F/a%2Fb`` names the queue ``a/b`` in the vhost ``/``.
   A trailing ``/`` is ignored, as RabbitMQ ignores it.
2. Among the patterns that match, the one with the fewest parameters wins, so a literal such as
   ``contents`` is never taken for a queue name.
3. A path no pattern matches is 404; a method the matched pattern does not take is 405 with an
   ``Allow`` header (``HEAD`` is served wherever ``GET`` is, ``OPTIONS`` everywhere).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote

from minibroker.management.errors import NOT_FOUND, ApiError, bad_request
from minibroker.valueclass import valueclass

__all__ = ["Route", "Router", "split_path"]

Handler = Callable[..., object]


@valueclass(frozen=True)
class _Part:
    literal: str | None
    name: str = ""
    choices: frozenset[str] | None = None

    def matches(self, segment: str) -> bool:
        if self.literal is not None:
            return segment == self.literal
        return self.choices is None or segment in self.choices


@valueclass(frozen=True)
class Route:
    pattern: str
    parts: tuple[_Part, ...]
    methods: Mapping[str, Handler]

    @property
    def allow(self) -> str:
        methods = set(self.methods) | {"OPTIONS"} | ({"HEAD"} if "GET" in self.methods else set())
        return ", ".join(sorted(methods))


def _compile(pattern: str) -> tuple[_Part, ...]:
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name, _, choices = segment[1:-1].partition(":")
            parts.append(_Part(None, name, frozenset(choices.split("|")) if choices else None))
        else:
            parts.append(_Part(segment))
    return tuple(parts)


def split_path(path: str) -> list[str]:
    """The percent-decoded segments of a request path (rule 1)."""
    segments = path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()
    try:
        return [unquote(segment, errors="strict") for segment in segments]
    except UnicodeDecodeError:
        raise bad_request("the path is not valid UTF-8 once percent-decoded") from None


class Router:
    def __init__(self, routes: Iterable[tuple[str, Mapping[str, Handler]]]) -> None:
        compiled = [Route(pattern, _compile(pattern), methods) for pattern, methods in routes]
        compiled.sort(key=lambda route: sum(part.literal is None for part in route.parts))
        self._by_length: dict[int, list[Route]] = {}
        for route in compiled:
            self._by_length.setdefault(len(route.parts), []).append(route)

    def match(self, segments: list[str]) -> tuple[Route, dict[str, str]]:
        for route in self._by_length.get(len(segments), ()):
            if all(part.matches(segment) for part, segment in zip(route.parts, segments,
                                                                   strict=True)):
                params = {part.name: segment for part, segment in zip(route.parts, segments,
                                                                     strict=True)
                          if part.literal is None}
                return route, params
        raise NOT_FOUND

    def handler(self, route: Route, method: str) -> Handler:
        handler = route.methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise ApiError(405, "Method Not Allowed",
                           f"{method} is not allowed on {route.pattern}",
                           (("Allow", route.allow),))
        return handler
