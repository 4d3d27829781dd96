"""Password hashes in RabbitMQ's stored format, so a RabbitMQ definitions file's users log in.

RabbitMQ stores ``base64(salt ‖ H(salt ‖ utf8(password)))`` with a 4-byte random salt, and names
``H`` in the user's ``hashing_algorithm`` field (``rabbit_password_hashing_sha256`` by default;
``_sha512``; ``_md5`` for users created before 3.6). This module makes and checks such hashes.

Rules:

1. Only the three algorithms above exist; any other name is refused with a ``ValueError``
   naming it (a definitions file with a typo must not create a user nobody can log in as
   without saying why).
2. Checking recomputes the digest with the stored salt and compares in constant time
   (``hmac.compare_digest``), so a wrong password takes as long as a nearly right one.
3. An empty stored hash is a user without a password: no password matches it (RabbitMQ's
   ``clear_password`` users log in only through other mechanisms). An empty password never
   matches either (RabbitMQ refuses it before looking at the hash).
4. A stored hash that is not valid base64, or too short to hold a salt and a digest, matches
   nothing; :func:`parse_password_hash` says what is wrong with it for a definitions loader.
5. This module lives outside ``minibroker/core`` because making a hash needs randomness
   (``secrets``); the core receives the check as an injected function.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from minibroker.valueclass import valueclass

__all__ = [
    "DEFAULT_HASHING_ALGORITHM",
    "HASHING_ALGORITHMS",
    "SALT_SIZE",
    "PasswordHash",
    "hash_password",
    "parse_password_hash",
    "verify_password",
]

#: RabbitMQ's default ``password_hashing_module`` since 3.6.
DEFAULT_HASHING_ALGORITHM = "rabbit_password_hashing_sha256"

#: ``hashing_algorithm`` name -> hashlib constructor name.
HASHING_ALGORITHMS: dict[str, str] = {
    "rabbit_password_hashing_sha256": "sha256",
    "rabbit_password_hashing_sha512": "sha512",
    "rabbit_password_hashing_md5": "md5",
}

#: RabbitMQ's salt: 4 random bytes (``rabbit_password:generate_salt/0``).
SALT_SIZE = 4


def _digest_name(algorithm: str) -> str:
    try:
        return HASHING_ALGORITHMS[algorithm]
    except KeyError:
        known = ", ".join(sorted(HASHING_ALGORITHMS))
        raise ValueError(f"unknown hashing_algorithm {algorithm!r} (known: {known})") from None


def _salted_digest(digest_name: str, salt: bytes, password: str) -> bytes:
    # rabbit_password:salted_hash/3: H(<<Salt/binary, Cleartext/binary>>), the password as UTF-8.
    return hashlib.new(digest_name, salt + password.encode("utf-8")).digest()


@valueclass(frozen=True)
class PasswordHash:
    """A decoded stored hash: the salt and the digest, and the algorithm that made it."""

    algorithm: str
    salt: bytes
    digest: bytes

    def encode(self) -> str:
        """The ``password_hash`` string of a definitions file."""
        return base64.b64encode(self.salt + self.digest).decode("ascii")

    def matches(self, password: str) -> bool:
        """Rule 2: recompute with this salt, compare in constant time."""
        if not password:
            return False  # rule 3
        expected = _salted_digest(_digest_name(self.algorithm), self.salt, password)
        return hmac.compare_digest(expected, self.digest)


def hash_password(
    password: str, algorithm: str = DEFAULT_HASHING_ALGORITHM, *, salt: bytes | None = None,
) -> str:
    """A new stored hash for ``password`` (a fresh random salt unless one is given, for tests)."""
    digest_name = _digest_name(algorithm)
    if salt is None:
        salt = secrets.token_bytes(SALT_SIZE)
    elif len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, not {len(salt)}")
    return PasswordHash(algorithm, salt, _salted_digest(digest_name, salt, password)).encode()


def parse_password_hash(
    encoded: str, algorithm: str = DEFAULT_HASHING_ALGORITHM,
) -> PasswordHash | None:
    """Decode a stored hash; ``None`` for the empty hash of a user without a password.

    Raises ``ValueError`` naming the problem for an unknown algorithm, bad base64, or a length
    that is not ``SALT_SIZE`` + the algorithm's digest size."""
    digest_name = _digest_name(algorithm)
    if encoded == "":
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"password_hash {encoded!r} is not valid base64") from None
    size = hashlib.new(digest_name).digest_size
    if len(raw) != SALT_SIZE + size:
        raise ValueError(
            f"password_hash decodes to {len(raw)} bytes; {algorithm} needs "
            f"{SALT_SIZE + size} ({SALT_SIZE}-byte salt + {size}-byte digest)"
        )
    return PasswordHash(algorithm, raw[:SALT_SIZE], raw[SALT_SIZE:])


def verify_password(
    encoded: str, password: str, algorithm: str = DEFAULT_HASHING_ALGORITHM,
) -> bool:
    """Does ``password`` match the stored hash? Rules 3 and 4: anything unusable is ``False``
    (an unknown algorithm still raises: that is a configuration error, not a wrong password)."""
    try:
        parsed = parse_password_hash(encoded, algorithm)
    except ValueError:
        if algorithm not in HASHING_ALGORITHMS:
            raise
        return False
    return parsed is not None and parsed.matches(password)
