"""Signing in: the password check, the throttling of repeated failures and the
new session, in one transaction of the caller.

Failures are counted in the database, so the limits hold across every server
process, per account (guessing one user's password) and per client address
(trying many accounts from one place). A throttled attempt is answered before
any password is checked and is not counted itself, so that an attacker who
keeps trying cannot keep the real user locked out for longer than the window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from flowdesk.auth.sessions import NewSession, close_session, open_session
from flowdesk.auth.users import WrongPassword, authenticate, change_own_password
from flowdesk.db.models import SignInFailure, User
from flowdesk.db.types import utcnow

logger = logging.getLogger(__name__)

# Longer names cannot exist (see users.USERNAME); the rest is not stored.
STORED_NAME_CHARS = 100
STORED_ADDRESS_CHARS = 64


@dataclass(frozen=True)
class Throttle:
    account_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInOutcome:
    """A new session, or why there is none: wrong credentials, or throttled
    with the seconds to wait before the next attempt."""

    session: NewSession | None = None
    retry_after: int | None = None


def sign_in(
    session: Session,
    username: str,
    password: str,
    address: str,
    *,
    throttle: Throttle,
    lifetime: timedelta,
    old_token: str | None = None,
) -> SignInOutcome:
    """Check the credentials and open a new session; the old cookie's session,
    if any, is closed, so a session id planted before sign-in is worthless."""
    name = username[:STORED_NAME_CHARS]
    address = address[:STORED_ADDRESS_CHARS]
    now = utcnow()

    wait = _seconds_to_wait(session, name, address, throttle, now)
    if wait is not None:
        logger.info(
            "sign-in for %r from %s refused: too many failures, retry in %s s",
            name,
            address,
            wait,
        )
        return SignInOutcome(retry_after=wait)

    user = authenticate(session, username, password)
    if user is None:
        session.add(SignInFailure(username=name, address=address, failed_at=now))
        _forget_old_failures(session, now - throttle.window)
        logger.info("failed sign-in for %r from %s", name, address)
        return SignInOutcome()

    session.execute(delete(SignInFailure).where(SignInFailure.username == name))
    if old_token:
        close_session(session, old_token)
    new_session = open_session(session, user, lifetime)
    logger.info("user %s signed in from %s", user.username, address)
    return SignInOutcome(session=new_session)


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    repeated: str,
    address: str,
    *,
    throttle: Throttle,
    lifetime: timedelta,
) -> SignInOutcome:
    """A signed-in user's change of their own password, with the session to go
    on in. A wrong current password counts as a failed sign-in and the same
    throttle applies, so that a session left open cannot be used to guess the
    password at leisure. Other problems raise FlowdeskError."""
    name = user.username[:STORED_NAME_CHARS]
    address = address[:STORED_ADDRESS_CHARS]
    now = utcnow()

    wait = _seconds_to_wait(session, name, address, throttle, now)
    if wait is not None:
        logger.info(
            "password change of %s from %s refused: too many failures", name, address
        )
        return SignInOutcome(retry_after=wait)
    try:
        change_own_password(session, user, current, new, repeated)
    except WrongPassword:
        session.add(SignInFailure(username=name, address=address, failed_at=now))
        logger.info("wrong current password for %s from %s", name, address)
        return SignInOutcome()
    # Every session of the user ended with the change; this one goes on.
    return SignInOutcome(session=open_session(session, user, lifetime))


def _seconds_to_wait(
    session: Session, name: str, address: str, throttle: Throttle, now: datetime
) -> int | None:
    """None when an attempt may go ahead, else the seconds until the oldest
    failure that holds it back leaves the window."""
    since = now - throttle.window
    waits = [
        _wait_for(session, column, value, limit, since, throttle.window, now)
        for column, value, limit in (
            (SignInFailure.username, name, throttle.account_failures),
            (SignInFailure.address, address, throttle.address_failures),
        )
    ]
    found = [wait for wait in waits if wait is not None]
    return max(found) if found else None


def _wait_for(
    session: Session,
    column: InstrumentedAttribute[str],
    value: str,
    limit: int,
    since: datetime,
    window: timedelta,
    now: datetime,
) -> int | None:
    # The limit-th newest failure in the window: while it is in there, the
    # count is at the limit; once it leaves, one more attempt is allowed.
    query = (
        select(SignInFailure.failed_at)
        .where(column == value, SignInFailure.failed_at > since)
        .order_by(SignInFailure.failed_at.desc())
        .offset(limit - 1)
        .limit(1)
    )
    holding = session.scalar(query)
    if holding is None:
        return None
    return max(1, math.ceil((holding + window - now).total_seconds()))


def _forget_old_failures(session: Session, before: datetime) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.failed_at <= before))
