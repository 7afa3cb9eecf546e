"""Password hashing: argon2id, nothing stored in the clear."""

from __future__ import annotations

from flowdesk.auth.passwords import hash_password, needs_rehash, verify_password


def test_passwords_hash_verifies_only_the_same_password() -> None:
    stored = hash_password("correct horse")

    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert not needs_rehash(stored)


def test_passwords_same_password_hashes_differently_each_time() -> None:
    assert hash_password("same") != hash_password("same")


def test_passwords_unknown_user_or_broken_hash_never_verifies() -> None:
    assert not verify_password(None, "flowdesk-no-such-user")
    assert not verify_password("not-a-hash", "anything")
