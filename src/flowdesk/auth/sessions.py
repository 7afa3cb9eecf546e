"""Browser sessions kept in the database: the cookie carries a random token,
the table only its hash."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.orm import Session

from flowdesk.db.models import Group, User, UserGroup, WebSession
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


# The session, its user and the user's groups in one Core statement, built
# once: this runs for every page and every event stream, and the ORM's get with
# its two eager loads costs about twice as much CPU (docs/benchmarks.md).
_LOOKUP = (
    select(
        WebSession.csrf_token,
        WebSession.created_at.label("session_created_at"),
        WebSession.expires_at,
        User.id,
        User.username,
        User.password_hash,
        User.scopes,
        User.disabled,
        User.created_at,
        User.password_changed_at,
        Group.id.label("group_id"),
        Group.name.label("group_name"),
        Group.created_at.label("group_created_at"),
    )
    .select_from(WebSession)
    .join(User, User.id == WebSession.user_id)
    .outerjoin(UserGroup, UserGroup.user_id == User.id)
    .outerjoin(Group, Group.id == UserGroup.group_id)
    .where(WebSession.token_hash == bindparam("token_hash"))
)


def resolve_session(session: Session | Connection, token: str) -> WebSession | None:
    """The live session for a cookie token, or None when it is unknown, has
    expired, or its user was disabled or changed password since. The session
    and its user (groups loaded) are plain copies outside the ORM session."""
    if not token or len(token) > 200:
        return None
    token_hash = _hash(token)
    connection = session.connection() if isinstance(session, Session) else session
    rows = connection.execute(_LOOKUP, {"token_hash": token_hash}).all()
    if not rows:
        return None
    first = rows[0]
    groups = [
        Group(id=row.group_id, name=row.group_name, created_at=row.group_created_at)
        for row in rows
        if row.group_id is not None
    ]
    user = User(
        id=first.id,
        username=first.username,
        password_hash=first.password_hash,
        scopes=list(first.scopes or []),
        disabled=first.disabled,
        created_at=first.created_at,
        password_changed_at=first.password_changed_at,
        groups=groups,
    )
    web_session = WebSession(
        token_hash=token_hash,
        user_id=user.id,
        csrf_token=first.csrf_token,
        created_at=first.session_created_at,
        expires_at=first.expires_at,
        user=user,
    )
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
