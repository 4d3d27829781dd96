"""Record payloads: msg_id runs and properties."""

from __future__ import annotations

import datetime
import decimal

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.errors import ProtocolError
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.storage.intents import (
    EMPTY_BLOB,
    PropertiesCache,
    decode_runs,
    encode_runs,
    properties_blob,
)


@given(st.sets(st.integers(1, 200)))
def test_runs_round_trip(ids: set[int]) -> None:
    assert sorted(decode_runs(encode_runs(ids))) == sorted(ids)


def test_contiguous_ids_are_one_run() -> None:
    assert encode_runs(range(10, 1010)) == [10, 1000]
    assert encode_runs([5, 1, 2, 3, 9]) == [1, 3, 5, 1, 9, 1]


def test_properties_survive_with_every_field_type() -> None:
    properties = Properties(
        content_type="application/json", delivery_mode=2, priority=7, expiration="60000",
        headers={
            "x-death": [{"count": 2, "reason": "expired", "queue": "q", "exchange": "",
                         "routing-keys": ["q"],
                         "time": datetime.datetime(2024, 1, 2, 3, 4, 5,
                                                   tzinfo=datetime.UTC)}],
            "price": decimal.Decimal("12.50"), "raw": b"\x00\xff", "flag": True, "none": None,
            "naive": datetime.datetime(2020, 5, 6, 7, 8, 9), "nested": {"a": [1, 2.5, "s"]},
        },
        timestamp=1_700_000_000, message_id="m-1", user_id="guest")
    cache = PropertiesCache()
    assert cache.get(properties_blob(properties)) == properties


def test_equal_properties_are_decoded_once_and_shared() -> None:
    cache = PropertiesCache()
    one = cache.get(properties_blob(Properties(delivery_mode=2)))
    two = cache.get(properties_blob(Properties(delivery_mode=2)))
    assert one is two
    assert cache.get(EMPTY_BLOB) is EMPTY_PROPERTIES
    assert properties_blob(EMPTY_PROPERTIES) == EMPTY_BLOB


def test_the_cache_is_bounded() -> None:
    cache = PropertiesCache(limit=4)
    for n in range(20):
        cache.get(properties_blob(Properties(priority=n)))
    assert len(cache._cache) <= 4


@pytest.mark.parametrize("blob", [b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([1]),
                                  msgpack.ExtType(9, b"x").data])
def test_unreadable_properties_raise_protocol_error_only(blob: bytes) -> None:
    with pytest.raises(ProtocolError):
        PropertiesCache().get(blob)


optional_text = st.none() | st.text(max_size=8)
properties = st.builds(
    Properties, content_type=optional_text, content_encoding=optional_text,
    headers=st.none() | st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=2),
    delivery_mode=st.none() | st.sampled_from([1, 2]), priority=st.none() | st.integers(0, 9),
    correlation_id=optional_text, reply_to=optional_text, expiration=optional_text,
    message_id=optional_text, timestamp=st.none() | st.integers(0, 2**40), type=optional_text,
    user_id=optional_text, app_id=optional_text, cluster_id=optional_text)


@given(properties)
def test_the_blob_is_the_native_protocols_property_array(value: Properties) -> None:
    from minibroker.protocols.native.values import encode_properties
    from minibroker.storage.intents import pack_fields
    blob = properties_blob(value)
    assert blob == pack_fields(list(encode_properties(value)))
    assert properties_blob(value) == blob  # the cached answer too
    assert PropertiesCache().get(blob) == value
