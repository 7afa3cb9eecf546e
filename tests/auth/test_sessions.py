"""Browser sessions: a random token in the cookie, only its hash stored, and
sessions that end on expiry, sign-out, a disabled account or a new password."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from flowdesk.auth.sessions import (
    close_session,
    close_user_sessions,
    open_session,
    resolve_session,
)
from flowdesk.auth.users import create_user, get_user, set_password
from flowdesk.db.models import WebSession
from flowdesk.db.types import utcnow
from flowdesk.system import System

HOUR = timedelta(hours=1)


@pytest.fixture
def token(system: System) -> str:
    with system.db.transaction() as session:
        user = create_user(session, "alice", "alice-password", ["flow:run"])
        return open_session(session, user, HOUR).token


def resolves(system: System, token: str) -> bool:
    with system.db.reading() as session:
        return resolve_session(session, token) is not None


def test_sessions_token_resolves_to_its_user(system: System, token: str) -> None:
    with system.db.reading() as session:
        web_session = resolve_session(session, token)
        assert web_session is not None
        assert web_session.user.username == "alice"
        stored = session.scalars(select(WebSession.token_hash)).one()
    assert token not in stored


def test_sessions_unknown_or_oversized_token_resolves_to_nothing(
    system: System, token: str
) -> None:
    assert not resolves(system, token + "x")
    assert not resolves(system, "")
    assert not resolves(system, "a" * 500)


def test_sessions_expire(system: System, token: str) -> None:
    with system.db.transaction() as session:
        session.execute(update(WebSession).values(expires_at=utcnow()))

    assert not resolves(system, token)


def test_sessions_end_on_sign_out(system: System, token: str) -> None:
    with system.db.transaction() as session:
        close_session(session, token)

    assert not resolves(system, token)


def test_sessions_end_for_a_disabled_user(system: System, token: str) -> None:
    with system.db.transaction() as session:
        get_user(session, "alice").disabled = True

    assert not resolves(system, token)


def test_sessions_end_when_the_password_changes(system: System, token: str) -> None:
    with system.db.transaction() as session:
        set_password(session, get_user(session, "alice"), "a-new-password")

    assert not resolves(system, token)


def test_sessions_close_all_of_a_user(system: System, token: str) -> None:
    with system.db.transaction() as session:
        user = get_user(session, "alice")
        other = open_session(session, user, HOUR).token
        close_user_sessions(session, user)

    assert not resolves(system, token)
    assert not resolves(system, other)
