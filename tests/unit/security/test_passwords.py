"""Password hashes in RabbitMQ's stored format. The vectors were made by RabbitMQ 3.10:
``rabbitmqctl add_user`` + ``export_definitions`` (SHA-256, including a non-ASCII password) and
``rabbit_password:hash/2`` (SHA-512, MD5)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.passwords import (
    DEFAULT_HASHING_ALGORITHM,
    HASHING_ALGORITHMS,
    SALT_SIZE,
    hash_password,
    parse_password_hash,
    verify_password,
)

SHA256 = "rabbit_password_hashing_sha256"
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"

#: (stored hash, algorithm, password) produced by RabbitMQ 3.10.
RABBITMQ_VECTORS = [
    ("VQkMkT5yU9GK3C5GjOmp5auSY6jj2NMee2F+Y0uh5dZlqWwt", SHA256, "guest"),
    ("gtnaa5POvciODErxjT/Yo8oo3a2EzP1sWS5cbG4xxj1arxvE", SHA256, "guest"),
    ("N12Ye6BFB4f8Wtm06IXygzY8wUHgQeLb9mkGOwqS7F+crv3e", SHA256, "pässwörd-✓"),
    ("7stUw9/GyPug/auqxjweowIkMKlrVARPTRzBqggM2POYqWhVAsXRIcKfE7TfGhA/OfdhxPuK4K9+F8OK3dEPECem7T8=",
     SHA512, "hunter2"),
    ("QJVWr4BV1H9X8mElJIk3gCYloa7sFXERj7tQv7n8XmhKgzPMzmW1ryAMQRkEniSOznOEeXZjLQTE5tM+0CsEksEIgIA=",
     SHA512, "hunter2"),
    ("msnqw5I3I2zNOrv2ZWuWsfvjZwg=", MD5, "hunter2"),
    ("gjAkkSr1qV1IxKVptjUTc/NThM8=", MD5, "hunter2"),
]


@pytest.mark.parametrize(("stored", "algorithm", "password"), RABBITMQ_VECTORS)
def test_rabbitmq_hashes_verify(stored: str, algorithm: str, password: str) -> None:
    assert verify_password(stored, password, algorithm)
    assert not verify_password(stored, password + "x", algorithm)
    assert not verify_password(stored, password.upper(), algorithm)


@pytest.mark.parametrize(("stored", "algorithm", "password"), RABBITMQ_VECTORS)
def test_rehashing_with_rabbitmqs_salt_gives_rabbitmqs_hash(
    stored: str, algorithm: str, password: str,
) -> None:
    salt = base64.b64decode(stored)[:SALT_SIZE]
    assert hash_password(password, algorithm, salt=salt) == stored


def test_the_format_is_base64_of_salt_and_salted_digest() -> None:
    salt = b"\x01\x02\x03\x04"
    stored = hash_password("secret", salt=salt)
    raw = base64.b64decode(stored)
    assert raw == salt + hashlib.sha256(salt + b"secret").digest()
    assert DEFAULT_HASHING_ALGORITHM == SHA256


def test_new_hashes_get_fresh_salts() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert verify_password(first, "same") and verify_password(second, "same")


@given(st.text(min_size=1), st.sampled_from(sorted(HASHING_ALGORITHMS)))
def test_any_password_round_trips(password: str, algorithm: str) -> None:
    stored = hash_password(password, algorithm)
    assert verify_password(stored, password, algorithm)
    assert not verify_password(stored, password + "\x00", algorithm)


def test_a_user_without_a_password_matches_nothing() -> None:
    assert parse_password_hash("") is None
    assert not verify_password("", "")
    assert not verify_password("", "anything")


def test_an_empty_password_never_matches() -> None:
    # RabbitMQ refuses a blank password before looking at the hash, even one made from "".
    assert not verify_password(hash_password(""), "")


def test_unknown_algorithms_are_refused_by_name() -> None:
    with pytest.raises(ValueError,
                       match="unknown hashing_algorithm 'rabbit_password_hashing_sha1'"):
        hash_password("x", "rabbit_password_hashing_sha1")
    with pytest.raises(ValueError, match="unknown hashing_algorithm 'bcrypt'"):
        verify_password(hash_password("x"), "x", "bcrypt")


@pytest.mark.parametrize(("stored", "problem"), [
    ("not base64!", "not valid base64"),
    (base64.b64encode(b"\x00" * 10).decode(), "decodes to 10 bytes; .* needs 36"),
])
def test_malformed_hashes_are_described_and_match_nothing(stored: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_password_hash(stored)
    assert not verify_password(stored, "guest")


def test_a_hash_of_another_algorithm_does_not_verify() -> None:
    stored = hash_password("pw", SHA512)
    assert not verify_password(stored, "pw", SHA256)  # wrong length for SHA-256
    assert verify_password(stored, "pw", SHA512)


def test_salt_must_be_four_bytes() -> None:
    with pytest.raises(ValueError, match="salt must be 4 bytes"):
        hash_password("x", salt=b"123")
