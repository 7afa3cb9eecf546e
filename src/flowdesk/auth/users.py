"""Users, their scopes and groups. Functions take the caller's session."""

from __future__ import annotations

import logging
import re
import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from flowdesk.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from flowdesk.auth.scopes import ADMIN, ALL_SCOPES
from flowdesk.auth.sessions import close_user_sessions
from flowdesk.db.models import ApiToken, Flow, Group, Run, User, UserGroup
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
    if len(password) > MAX_PASSWORD_LENGTH:
        raise FlowdeskError(
            f"The password must have at most {MAX_PASSWORD_LENGTH:,} characters; "
            f"this one has {len(password):,}."
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
    name = check_group_name(name)
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


def set_scopes(
    session: Session, user: User, scopes: list[str], actor: User | None = None
) -> None:
    """Replace the user's scopes. An administrator cannot drop their own admin
    scope, so that the last one cannot lock everybody out by a slip."""
    checked = check_scopes(scopes)
    if actor is not None and actor.id == user.id and ADMIN not in checked:
        raise Conflict(
            "You cannot take the admin scope from your own account; ask another "
            "administrator, or use `flowdesk users set-scopes`."
        )
    if ADMIN not in checked:
        _keep_an_administrator(session, user, "without the admin scope")
    user.scopes = checked
    logger.info("user %s now has scopes %s", user.username, ",".join(checked) or "-")


def _keep_an_administrator(session: Session, user: User, change: str) -> None:
    # Someone must still be able to administer: the last enabled holder of
    # the admin scope cannot be deleted, disabled or lose the scope.
    if ADMIN not in user.scopes or user.disabled:
        return
    admins = [
        other
        for other in list_users(session)
        if ADMIN in other.scopes and not other.disabled
    ]
    if admins == [user]:
        raise Conflict(
            f"The user {user.username!r} is the last enabled administrator and "
            f"cannot be {change}; give another user the admin scope first."
        )


def set_groups(session: Session, user: User, names: list[str]) -> None:
    """Make the user a member of exactly these groups, creating missing ones."""
    unique = sorted({name.strip() for name in names if name.strip()})
    user.groups = [ensure_group(session, name) for name in unique]
    logger.info("user %s is now in groups %s", user.username, ",".join(unique) or "-")


def add_to_group(session: Session, user: User, name: str) -> Group:
    group = ensure_group(session, name)
    if group not in user.groups:
        user.groups.append(group)
        logger.info("user %s joined group %s", user.username, group.name)
    return group


def disable_user(session: Session, user: User, actor: User | None = None) -> None:
    """Disable the account: its sessions end and its API tokens stop working."""
    if actor is not None and actor.id == user.id:
        raise Conflict("You cannot disable your own account.")
    _keep_an_administrator(session, user, "disabled")
    user.disabled = True
    close_user_sessions(session, user)
    logger.info("user %s disabled", user.username)


def enable_user(session: Session, user: User) -> None:
    user.disabled = False
    logger.info("user %s enabled", user.username)


def reset_password(session: Session, user: User, password: str) -> None:
    """Set a new password for the user and end every session they had."""
    set_password(session, user, password)
    close_user_sessions(session, user)
    logger.info("password of user %s changed", user.username)


class WrongPassword(FlowdeskError):
    """The current password given for a change of it is not the user's."""


def change_own_password(
    session: Session, user: User, current: str, new: str, repeated: str
) -> None:
    """A user's change of their own password: the current one must be right
    and the new one typed twice. Every session of the user ends; the caller
    opens the one to continue in."""
    if not verify_password(user.password_hash, current):
        raise WrongPassword("The current password is not right.")
    if new != repeated:
        raise FlowdeskError(
            "The new password and its repetition differ; type the same password "
            "in both fields."
        )
    if new == current:
        raise FlowdeskError("The new password is the same as the current one.")
    set_password(session, user, new)
    close_user_sessions(session, user)
    logger.info("user %s changed their own password", user.username)


def delete_user(session: Session, user: User, actor: User | None = None) -> None:
    """Delete the account with its sessions, API tokens and group memberships.
    Its runs stay, without a user. Nobody deletes themselves, and the last
    enabled administrator stays, so that someone can still administer."""
    if actor is not None and actor.id == user.id:
        raise Conflict("You cannot delete your own account.")
    _keep_an_administrator(session, user, "deleted")

    kept = session.scalar(
        select(func.count()).select_from(Run).where(Run.user_id == user.id)
    )
    session.execute(update(Run).where(Run.user_id == user.id).values(user_id=None))
    close_user_sessions(session, user)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    # The ORM removes the user's group memberships with the user.
    session.delete(user)
    session.flush()
    logger.info("user %s deleted; %s of their runs kept", user.username, kept)


# Commas separate groups where they are typed as one line of text.
GROUP_NAME = re.compile(r"^[^\x00-\x1f\x7f,]{1,100}$")


def check_group_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise FlowdeskError("A group name cannot be empty.")
    if not GROUP_NAME.match(name):
        raise FlowdeskError(
            f"The group name {name[:120]!r} is not allowed: use at most 100 "
            "characters, without commas or control characters."
        )
    return name


def create_group(session: Session, name: str) -> Group:
    name = check_group_name(name)
    if session.scalar(select(Group).where(Group.name == name)) is not None:
        raise Conflict(f"A group named {name!r} exists already.")
    group = Group(name=name)
    session.add(group)
    session.flush()
    logger.info("group %s created", name)
    return group


def get_group(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise NotFound(f"There is no group named {name!r}.")
    return group


def flows_limited_to(session: Session, name: str) -> list[Flow]:
    """The flows whose interactive mode is limited to the group `name`."""
    query = select(Flow).where(Flow.deleted_at.is_(None)).order_by(Flow.id)
    return [flow for flow in session.scalars(query) if name in flow.groups]


def delete_group(session: Session, group: Group) -> None:
    """Delete the group and take every user out of it.

    Flows that name it keep the name in their definitions: those are
    versioned, and often applied from files. No user is in a deleted group, so
    a flow limited to it alone is shown to developers and administrators only,
    never to everyone."""
    members = session.scalar(
        select(func.count())
        .select_from(UserGroup)
        .where(UserGroup.group_id == group.id)
    )
    session.execute(delete(UserGroup).where(UserGroup.group_id == group.id))
    session.delete(group)
    session.flush()
    logger.info("group %s deleted; %s members taken out", group.name, members)


def list_groups(session: Session) -> list[tuple[Group, int]]:
    """Every group with its number of members, by name."""
    members = func.count(UserGroup.user_id)
    query = (
        select(Group, members)
        .outerjoin(UserGroup, UserGroup.group_id == Group.id)
        .group_by(Group.id)
        .order_by(Group.name)
    )
    return [(group, count) for group, count in session.execute(query)]
