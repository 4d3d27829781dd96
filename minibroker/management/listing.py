"""The query parameters every list endpoint takes: ``columns``, ``sort``, pagination.

Rules:

1. ``columns=name,message_stats.publish`` keeps only those (dotted) fields of each item, as
   RabbitMQ does; unknown columns are left out silently.
2. ``sort=<dotted field>`` orders by that field (items without it first), ``sort_reverse=true``
   reverses; without ``sort`` the order is the API's (by name, as RabbitMQ lists).
3. ``page=N`` (with ``page_size``, default 100, at most 500, and an optional ``name`` filter,
   a substring or with ``use_regex=true`` a regular expression) answers RabbitMQ's paging
   object instead of a list; a page past the end is ``400 page_out_of_range``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from minibroker.management.errors import ApiError, bad_request

__all__ = ["MAX_PAGE_SIZE", "listing"]

MAX_PAGE_SIZE = 500
JSON = dict[str, Any]


def _lookup(item: JSON, path: list[str]) -> tuple[bool, Any]:
    value: Any = item
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _project(item: JSON, columns: list[list[str]]) -> JSON:
    out: JSON = {}
    for path in columns:
        found, value = _lookup(item, path)
        if not found:
            continue
        target = out
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return out


def _sort_key(path: list[str]) -> Any:
    def key(item: JSON) -> tuple[int, str, Any]:
        found, value = _lookup(item, path)
        if not found or value is None:
            return (0, "", 0)
        if isinstance(value, bool | int | float):
            return (1, "", value)
        return (2, str(value).lower(), 0)
    return key


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {text!r}") from None


def listing(items: Sequence[JSON], query: Mapping[str, str]) -> Any:
    """Apply ``sort``, paging and ``columns`` to a list answer (rules 1-3)."""
    result = list(items)
    sort = query.get("sort")
    if sort:
        result.sort(key=_sort_key(sort.split(".")),
                    reverse=query.get("sort_reverse") == "true")
    elif query.get("sort_reverse") == "true":
        result.reverse()
    columns = [column.split(".") for column in query.get("columns", "").split(",") if column]
    if "page" not in query:
        return [_project(item, columns) for item in result] if columns else result
    page = _integer(query, "page", 1)
    page_size = _integer(query, "page_size", 100)
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise bad_request(f"page must be 1 or more and page_size 1 to {MAX_PAGE_SIZE}")
    total = len(result)
    name = query.get("name", "")
    if name:
        if query.get("use_regex") == "true":
            try:
                pattern = re.compile(name)
            except re.error as err:
                raise bad_request(f"invalid regular expression {name!r}: {err}") from None
            result = [item for item in result if pattern.search(str(item.get("name", "")))]
        else:
            result = [item for item in result if name in str(item.get("name", ""))]
    filtered = len(result)
    page_count = max(1, math.ceil(filtered / page_size))
    if page > page_count:
        raise ApiError(400, "page_out_of_range", f"Page out of range, page: {page} page size: "
                                                 f"{page_size}, len: {filtered}")
    chunk = result[(page - 1) * page_size: page * page_size]
    if columns:
        chunk = [_project(item, columns) for item in chunk]
    return {
        "filtered_count": filtered, "item_count": len(chunk), "items": chunk, "page": page,
        "page_count": page_count, "page_size": page_size, "total_count": total,
    }
