"""The list answers' query options (``management/listing.py``), as RabbitMQ's management API
reads them: ``sort`` on any (nested) field, strings case-insensitively and missing values
first; ``sort_reverse`` alone reverses the listing order; ``columns`` keeps only the fields
named, nested ones nested, and skips a field an item lacks; paging refuses a bad page or an
unreadable regular expression with 400 and says why."""

from __future__ import annotations

from typing import Any

import pytest

from minibroker.management.errors import ApiError
from minibroker.management.listing import listing

ITEMS: list[dict[str, Any]] = [
    {"name": "beta", "messages": 3, "arguments": {"x-queue-type": "classic"}},
    {"name": "Alpha", "messages": 10},
    {"name": "gamma", "messages": None, "arguments": {"x-queue-type": "quorum"}},
]


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def test_sort_by_a_string_ignores_case_and_by_a_number_puts_missing_values_first() -> None:
    assert names(listing(ITEMS, {"sort": "name"})) == ["Alpha", "beta", "gamma"]
    assert names(listing(ITEMS, {"sort": "messages"})) == ["gamma", "beta", "Alpha"]
    assert names(listing(ITEMS, {"sort": "arguments.x-queue-type", "sort_reverse": "true"})) == [
        "gamma", "beta", "Alpha"]


def test_sort_reverse_alone_reverses_the_listing_order() -> None:
    assert names(listing(ITEMS, {"sort_reverse": "true"})) == ["gamma", "Alpha", "beta"]


def test_columns_keep_nested_fields_nested_and_skip_what_an_item_lacks() -> None:
    assert listing(ITEMS, {"columns": "name,arguments.x-queue-type"}) == [
        {"name": "beta", "arguments": {"x-queue-type": "classic"}},
        {"name": "Alpha"},
        {"name": "gamma", "arguments": {"x-queue-type": "quorum"}},
    ]
    assert listing(ITEMS, {"columns": "messages.deep"}) == [{}, {}, {}]


@pytest.mark.parametrize(("query", "reason"), [
    ({"page": "0"}, "page must be 1 or more and page_size 1 to 500"),
    ({"page": "1", "page_size": "501"}, "page must be 1 or more and page_size 1 to 500"),
    ({"page": "one"}, "page must be an integer, not 'one'"),
    ({"page": "1", "name": "(", "use_regex": "true"},
     "invalid regular expression '(': missing ), unterminated subpattern at position 0"),
])
def test_a_bad_page_or_pattern_is_400_with_the_reason(query: dict[str, str],
                                                      reason: str) -> None:
    with pytest.raises(ApiError) as info:
        listing(ITEMS, query)
    assert (info.value.status, info.value.error, info.value.reason) == (400, "bad_request",
                                                                       reason)


def test_a_page_of_names_matching_a_pattern_with_columns() -> None:
    assert listing(ITEMS, {"page": "1", "page_size": "1", "name": "^[Ab]", "use_regex": "true",
                           "sort": "name", "columns": "name"}) == {
        "filtered_count": 2, "item_count": 1, "items": [{"name": "Alpha"}], "page": 1,
        "page_count": 2, "page_size": 1, "total_count": 3}
