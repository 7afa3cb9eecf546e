"""The sign-in service: the wait it names while throttled, which failures it
counts, and the old session it closes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flowdesk.auth.sessions import open_session, resolve_session
from flowdesk.auth.signin import Throttle, sign_in
from flowdesk.auth.users import create_user, get_user
from flowdesk.db.models import SignInFailure
from flowdesk.system import System

THROTTLE = Throttle(
    account_failures=3, address_failures=5, window=timedelta(minutes=10)
)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def alice(system: System) -> None:
    with system.db.transaction() as session:
        create_user(session, "alice", "alice-password", ["flow:run"])


def attempt(
    system: System,
    password: str,
    username: str = "alice",
    address: str = "10.0.0.1",
    old_token: str | None = None,
) -> tuple[bool, int | None]:
    with system.db.transaction() as session:
        outcome = sign_in(
            session,
            username,
            password,
            address,
            throttle=THROTTLE,
            lifetime=HOUR,
            old_token=old_token,
        )
    return outcome.session is not None, outcome.retry_after


def age_failures(system: System, minutes: float) -> None:
    with system.db.transaction() as session:
        for failure in session.scalars(select(SignInFailure)):
            failure.failed_at -= timedelta(minutes=minutes)


def test_signin_wait_is_the_time_until_the_holding_failure_leaves(
    system: System,
) -> None:
    for _ in range(3):
        attempt(system, "wrong")
    age_failures(system, 4)

    signed, wait = attempt(system, "alice-password")

    assert not signed
    assert wait is not None and 5 * 60 < wait <= 6 * 60


def test_signin_failures_outside_the_window_do_not_count(system: System) -> None:
    for _ in range(3):
        attempt(system, "wrong")
    age_failures(system, 11)

    assert attempt(system, "alice-password") == (True, None)


def test_signin_address_limit_counts_every_name_from_it(system: System) -> None:
    for number in range(5):
        attempt(system, "wrong", username=f"user{number}")

    assert attempt(system, "alice-password")[1] is not None
    assert attempt(system, "alice-password", address="10.0.0.2") == (True, None)


def test_signin_old_failures_are_pruned(system: System) -> None:
    attempt(system, "wrong", username="bob")
    age_failures(system, 30)

    attempt(system, "wrong", username="carol")

    with system.db.reading() as session:
        names = session.scalars(select(SignInFailure.username)).all()
    assert names == ["carol"]


def test_signin_very_long_names_are_stored_cut(system: System) -> None:
    attempt(system, "wrong", username="x" * 10_000, address="y" * 500)

    with system.db.reading() as session:
        stored = session.execute(
            select(
                func.length(SignInFailure.username), func.length(SignInFailure.address)
            )
        ).one()
    assert tuple(stored) == (100, 64)


def test_signin_closes_the_session_the_browser_had(system: System) -> None:
    with system.db.transaction() as session:
        planted = open_session(session, get_user(session, "alice"), HOUR).token

    signed, _wait = attempt(system, "alice-password", old_token=planted)

    assert signed
    with system.db.reading() as session:
        assert resolve_session(session, planted) is None


def test_signin_failure_keeps_the_session_the_browser_had(system: System) -> None:
    with system.db.transaction() as session:
        kept = open_session(session, get_user(session, "alice"), HOUR).token

    attempt(system, "wrong", old_token=kept)

    with system.db.reading() as session:
        assert resolve_session(session, kept) is not None


def test_signin_success_leaves_the_window_with_no_failures_of_the_account(
    system: System,
) -> None:
    attempt(system, "wrong")
    attempt(system, "alice-password")

    with system.db.reading() as session:
        count = session.scalar(
            select(func.count()).where(SignInFailure.username == "alice")
        )
    assert count == 0
