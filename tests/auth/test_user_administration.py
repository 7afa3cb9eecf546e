"""What administrators change about users and groups: scopes, groups,
disabling, new passwords, and the guards against locking oneself out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowdesk.auth.sessions import open_session, resolve_session
from flowdesk.auth.users import (
    add_to_group,
    authenticate,
    create_group,
    create_user,
    disable_user,
    enable_user,
    get_user,
    list_groups,
    reset_password,
    set_groups,
    set_scopes,
)
from flowdesk.errors import Conflict, FlowdeskError
from flowdesk.system import System

HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def people(system: System) -> None:
    with system.db.transaction() as session:
        create_user(session, "root", "root-password", ["admin"])
        create_user(session, "alice", "alice-password", ["flow:run"], ["sales"])


def test_user_administration_scopes_are_replaced_in_their_order(
    system: System,
) -> None:
    with system.db.transaction() as session:
        set_scopes(session, get_user(session, "alice"), ["admin", "flow:run"])

    with system.db.reading() as session:
        assert get_user(session, "alice").scopes == ["flow:run", "admin"]


def test_user_administration_admin_cannot_drop_their_own_admin_scope(
    system: System,
) -> None:
    with system.db.transaction() as session:
        root = get_user(session, "root")
        with pytest.raises(Conflict, match="admin scope from your own account"):
            set_scopes(session, root, ["flow:run"], actor=root)
        # Nor can the last administrator lose it from the command line...
        with pytest.raises(Conflict, match="last enabled administrator"):
            set_scopes(session, root, ["flow:run"])
        # ...which may take it away once another administrator exists.
        create_user(session, "second", "second-password", ["admin"])
        set_scopes(session, root, ["flow:run"])


def test_user_administration_admin_cannot_disable_themselves(
    system: System,
) -> None:
    with system.db.transaction() as session:
        root = get_user(session, "root")
        with pytest.raises(Conflict, match="cannot disable your own account"):
            disable_user(session, root, actor=root)


def test_user_administration_disable_ends_sessions_and_enable_allows_sign_in(
    system: System,
) -> None:
    with system.db.transaction() as session:
        token = open_session(session, get_user(session, "alice"), HOUR).token
        disable_user(session, get_user(session, "alice"))

    with system.db.transaction() as session:
        assert resolve_session(session, token) is None
        assert authenticate(session, "alice", "alice-password") is None
        enable_user(session, get_user(session, "alice"))
    with system.db.transaction() as session:
        assert authenticate(session, "alice", "alice-password") is not None


def test_user_administration_new_password_ends_sessions(system: System) -> None:
    with system.db.transaction() as session:
        token = open_session(session, get_user(session, "alice"), HOUR).token
        reset_password(session, get_user(session, "alice"), "brand-new-password")

    with system.db.transaction() as session:
        assert resolve_session(session, token) is None
        assert authenticate(session, "alice", "brand-new-password") is not None


def test_user_administration_groups_are_set_exactly(system: System) -> None:
    with system.db.transaction() as session:
        set_groups(session, get_user(session, "alice"), [" finance", "audit", ""])

    with system.db.reading() as session:
        assert get_user(session, "alice").group_names == {"finance", "audit"}


def test_user_administration_adding_a_group_twice_keeps_one(system: System) -> None:
    with system.db.transaction() as session:
        alice = get_user(session, "alice")
        add_to_group(session, alice, "finance")
        add_to_group(session, alice, "finance")

    with system.db.reading() as session:
        assert get_user(session, "alice").group_names == {"sales", "finance"}


@pytest.mark.parametrize("name", ["", "   ", "a,b", "tab\there", "x" * 101])
def test_user_administration_bad_group_names_are_refused(
    system: System, name: str
) -> None:
    with system.db.transaction() as session, pytest.raises(FlowdeskError):
        create_group(session, name)


def test_user_administration_groups_are_listed_with_member_counts(
    system: System,
) -> None:
    with system.db.transaction() as session:
        create_group(session, "empty")
        with pytest.raises(Conflict, match="'empty' exists already"):
            create_group(session, "empty")

    with system.db.reading() as session:
        counts = {group.name: members for group, members in list_groups(session)}
    assert counts == {"empty": 0, "sales": 1}
