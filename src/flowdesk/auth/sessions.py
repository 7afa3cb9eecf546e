"""Browser sessions kept in the database: the cookie carries a random token,
the table only its hash."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from flowdesk.db.models import User, WebSession
from flowdesk.db.types import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: User, lifetime: timedelta) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            token_hash=_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return NewSession(token, csrf)


def resolve_session(session: Session, token: str) -> WebSession | None:
    """The live session for a cookie token, or None when it is unknown, has
    expired, or its user was disabled or changed password since."""
    if not token or len(token) > 200:
        return None
    web_session = session.get(WebSession, _hash(token))
    if web_session is None:
        return None
    user = web_session.user
    if (
        web_session.expires_at <= utcnow()
        or user.disabled
        or user.password_changed_at > web_session.created_at
    ):
        return None
    return web_session


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def close_user_sessions(session: Session, user: User) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
