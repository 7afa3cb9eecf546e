"""API tokens: made once with scopes the owner holds, stored as a hash, cut to
the owner's scopes when used, and refused once revoked or the owner disabled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from flowdesk.auth.tokens import (
    create_token,
    expiry_in,
    list_tokens,
    mark_used,
    resolve_token,
    revoke_token,
    token_hash,
    token_state,
)
from flowdesk.auth.users import create_user, disable_user, get_user, set_scopes
from flowdesk.db.models import ApiToken
from flowdesk.db.types import utcnow
from flowdesk.errors import Conflict, FlowdeskError, NotFound, NotSignedIn
from flowdesk.system import System


@pytest.fixture
def owner(system: System) -> str:
    with system.db.transaction() as session:
        create_user(session, "alice", "alice-password", ["flow:run", "admin"])
    return "alice"


def make(system: System, *scopes: str, name: str = "robot") -> str:
    with system.db.transaction() as session:
        made = create_token(session, name, get_user(session, "alice"), list(scopes))
        return made.secret


def use(system: System, secret: str) -> frozenset[str] | None:
    with system.db.reading() as session:
        found = resolve_token(session, secret)
    return None if found is None else found.scopes


def test_tokens_only_the_hash_and_a_prefix_are_stored(
    system: System, owner: str
) -> None:
    secret = make(system, "flow:run")

    with system.db.reading() as session:
        row = session.scalars(select(ApiToken)).one()
    assert secret.startswith("fdk_") and len(secret) > 40
    assert row.token_hash == token_hash(secret)
    assert secret.startswith(row.prefix) and len(row.prefix) < 12


def test_tokens_two_tokens_differ(system: System, owner: str) -> None:
    assert make(system, "flow:run") != make(system, "flow:run")


def test_tokens_use_gives_the_token_scopes(system: System, owner: str) -> None:
    assert use(system, make(system, "flow:run")) == {"flow:run"}


def test_tokens_use_is_cut_to_the_owners_current_scopes(
    system: System, owner: str
) -> None:
    secret = make(system, "flow:run", "admin")
    with system.db.transaction() as session:
        set_scopes(session, get_user(session, "alice"), ["admin"])

    assert use(system, secret) == {"admin"}


@pytest.mark.parametrize(
    "secret", ["", "fdk_", "fdk_unknown", "not-even-the-prefix", "fdk_" + "a" * 500]
)
def test_tokens_unknown_secret_is_refused(
    system: System, owner: str, secret: str
) -> None:
    make(system, "flow:run")

    assert use(system, secret) is None


def test_tokens_revoked_token_is_refused(system: System, owner: str) -> None:
    secret = make(system, "flow:run")
    with system.db.transaction() as session:
        token_id = session.scalars(select(ApiToken.id)).one()
        revoke_token(session, token_id)

    assert use(system, secret) is None


def test_tokens_of_a_disabled_owner_are_refused(system: System, owner: str) -> None:
    secret = make(system, "flow:run")
    with system.db.transaction() as session:
        # Another administrator, since the last one cannot be disabled.
        create_user(session, "bob", "bob-password", ["admin"])
        disable_user(session, get_user(session, "alice"))

    assert use(system, secret) is None


def test_tokens_last_use_is_written_at_most_once_a_minute(
    system: System, owner: str
) -> None:
    secret = make(system, "flow:run")
    with system.db.reading() as session:
        first = resolve_token(session, secret)
    assert first is not None and first.stale

    with system.db.transaction() as session:
        mark_used(session, first.token_id)
    with system.db.reading() as session:
        again = resolve_token(session, secret)
    assert again is not None and not again.stale

    with system.db.transaction() as session:
        earlier = utcnow() - timedelta(minutes=2)
        session.execute(update(ApiToken).values(last_used_at=earlier))
    with system.db.reading() as session:
        later = resolve_token(session, secret)
    assert later is not None and later.stale


def test_tokens_need_a_name_and_a_scope_the_owner_holds(
    system: System, owner: str
) -> None:
    with pytest.raises(FlowdeskError, match="needs a name"):
        make(system, "flow:run", name="  ")
    with pytest.raises(FlowdeskError, match="at least one scope"):
        make(system)
    with pytest.raises(Conflict, match="does not have the scope 'flow:edit'"):
        make(system, "flow:edit")
    with pytest.raises(FlowdeskError, match="Unknown scope 'root'"):
        make(system, "root")


def test_tokens_list_puts_live_tokens_first(system: System, owner: str) -> None:
    make(system, "flow:run", name="old")
    make(system, "flow:run", name="revoked")
    make(system, "flow:run", name="new")
    with system.db.transaction() as session:
        revoked = session.scalars(
            select(ApiToken.id).where(ApiToken.name == "revoked")
        ).one()
        revoke_token(session, revoked)

    with system.db.reading() as session:
        names = [token.name for token in list_tokens(session)]

    assert names[-1] == "revoked"
    assert set(names[:2]) == {"old", "new"}


@pytest.mark.parametrize("token_id", [0, -1, 42, 10**30])
def test_tokens_revoking_an_unknown_id_says_so(
    system: System, owner: str, token_id: int
) -> None:
    expected = f"no API token with the id {token_id}"
    with system.db.transaction() as session, pytest.raises(NotFound, match=expected):
        revoke_token(session, token_id)


# Expiry


def test_tokens_expiry_in_days_and_never(system: System) -> None:
    now = utcnow()

    assert expiry_in(None, now) is None
    assert expiry_in(30, now) == now + timedelta(days=30)


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_tokens_expiry_out_of_range_is_refused(days: int) -> None:
    with pytest.raises(FlowdeskError, match=f"got {days}"):
        expiry_in(days)


def test_tokens_expiry_in_the_past_is_refused(system: System, owner: str) -> None:
    yesterday = utcnow() - timedelta(days=1)
    future = "must expire in the future"
    with system.db.transaction() as session, pytest.raises(FlowdeskError, match=future):
        alice = get_user(session, "alice")
        create_token(session, "late", alice, ["flow:run"], yesterday)


def test_tokens_expired_token_is_refused_saying_so(system: System, owner: str) -> None:
    with system.db.transaction() as session:
        alice = get_user(session, "alice")
        made = create_token(session, "ci", alice, ["flow:run"], expiry_in(7))
        secret, token_id = made.secret, made.record.id
    assert use(system, secret) == {"flow:run"}

    with system.db.transaction() as session:
        session.execute(
            update(ApiToken).values(expires_at=utcnow() - timedelta(minutes=1))
        )

    with system.db.reading() as session:
        with pytest.raises(NotSignedIn, match="expired on"):
            resolve_token(session, secret)
        assert token_state(session.get_one(ApiToken, token_id)) == "expired"
