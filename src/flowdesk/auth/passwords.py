"""Password hashing with argon2id."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


MIN_PASSWORD_LENGTH = 8
# Ample for a passphrase; a longer one only costs hashing time.
MAX_PASSWORD_LENGTH = 1024


@cache
def _unknown_user_hash() -> str:
    # Verified against when the user does not exist, so that an unknown name
    # costs the same time as a wrong password. Made on first use: hashing is
    # deliberately slow, and most commands never sign anyone in.
    return _hasher.hash("flowdesk-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _unknown_user_hash(), password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
