"""Users, groups and scopes on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flowdesk.auth.users import (
    authenticate,
    create_user,
    get_user,
    list_users,
    set_password,
)
from flowdesk.db.models import Group, User
from flowdesk.errors import Conflict, FlowdeskError, NotFound
from flowdesk.system import System

pytestmark = pytest.mark.postgres


def test_users_create_stores_scopes_and_groups(any_system: System) -> None:
    with any_system.db.transaction() as session:
        create_user(
            session,
            "alice",
            "alice-password",
            ["admin", "flow:run", "flow:run"],
            ["sales", "finance"],
        )
        create_user(session, "bob", "bob-password", ["flow:run"], ["sales"])

    with any_system.db.reading() as session:
        alice = get_user(session, "alice")
        # Ordered as the product lists them, each once.
        assert alice.scopes == ["flow:run", "admin"]
        assert alice.group_names == {"sales", "finance"}
        assert [user.username for user in list_users(session)] == ["alice", "bob"]
        # The group the two share is stored once.
        assert session.scalar(select(func.count()).select_from(Group)) == 2


@pytest.mark.parametrize(
    ("username", "password", "scopes", "error", "named"),
    [
        pytest.param("bad name", "long-enough", [], FlowdeskError, "'bad name'"),
        pytest.param("carol", "short", [], FlowdeskError, "8 characters"),
        pytest.param("carol", "long-enough", ["root"], FlowdeskError, "'root'"),
    ],
)
def test_users_create_refuses_bad_values_naming_them(
    any_system: System,
    username: str,
    password: str,
    scopes: list[str],
    error: type[Exception],
    named: str,
) -> None:
    with pytest.raises(error, match=named), any_system.db.transaction() as session:
        create_user(session, username, password, scopes, ["new-group"])

    with any_system.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
        assert session.scalar(select(func.count()).select_from(Group)) == 0


def test_users_create_refuses_a_taken_name(any_system: System) -> None:
    with any_system.db.transaction() as session:
        create_user(session, "dave", "dave-password", [])

    with pytest.raises(Conflict, match="'dave'"), any_system.db.transaction() as s:
        create_user(s, "dave", "other-password", [])


def test_users_authenticate_checks_name_password_and_state(any_system: System) -> None:
    with any_system.db.transaction() as session:
        create_user(session, "erin", "erin-password", ["flow:run"])

    with any_system.db.transaction() as session:
        user = authenticate(session, "erin", "erin-password")
        assert user is not None and user.username == "erin"
        assert authenticate(session, "erin", "wrong-password") is None
        assert authenticate(session, "nobody", "erin-password") is None
        get_user(session, "erin").disabled = True

    with any_system.db.transaction() as session:
        assert authenticate(session, "erin", "erin-password") is None


def test_users_set_password_replaces_the_old_one(any_system: System) -> None:
    with any_system.db.transaction() as session:
        user = create_user(session, "frank", "first-password", [])
        set_password(session, user, "second-password")

    with any_system.db.transaction() as session:
        assert authenticate(session, "frank", "first-password") is None
        assert authenticate(session, "frank", "second-password") is not None


def test_users_get_unknown_is_not_found(any_system: System) -> None:
    with pytest.raises(NotFound, match="'ghost'"), any_system.db.reading() as session:
        get_user(session, "ghost")
