"""Users, their scopes and groups. Functions take the caller's session."""

from __future__ import annotations

import logging
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.auth.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from flowdesk.auth.scopes import ALL_SCOPES
from flowdesk.db.models import Group, User
from flowdesk.db.types import utcnow
from flowdesk.errors import Conflict, FlowdeskError, NotFound

logger = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        raise FlowdeskError(
            f"Unknown scope {unknown[0]!r}; expected one of: {', '.join(ALL_SCOPES)}."
        )
    return sorted(set(scopes), key=ALL_SCOPES.index)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise FlowdeskError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters."
        )


def create_user(
    session: Session,
    username: str,
    password: str,
    scopes: list[str],
    groups: list[str] | None = None,
) -> User:
    if not USERNAME.match(username):
        raise FlowdeskError(
            f"The user name {username!r} is not allowed: use letters, digits and "
            "'.', '_', '@', '-' (starting with a letter or digit)."
        )
    check_password(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"A user named {username!r} exists already.")
    user = User(
        username=username,
        password_hash=hash_password(password),
        scopes=check_scopes(scopes),
        groups=[ensure_group(session, name) for name in groups or []],
    )
    session.add(user)
    session.flush()
    logger.info("user %s created with scopes %s", username, ",".join(user.scopes))
    return user


def ensure_group(session: Session, name: str) -> Group:
    name = name.strip()
    if not name:
        raise FlowdeskError("A group name cannot be empty.")
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name)
        session.add(group)
        session.flush()
    return group


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"There is no user named {username!r}.")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user when the name and password match and the account is enabled.

    Takes the same time whether or not the user exists."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = hash_password(password)
    # Sessions older than this stop working: a changed password signs out
    # every browser that knew the old one.
    user.password_changed_at = utcnow()


def generate_password() -> str:
    return secrets.token_urlsafe(12)
