"""Changes to accounts beyond creation: a user's change of their own password,
deleting users (their runs remain) and deleting groups (flows limited to them
stay closed to flow users)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flowdesk.auth.sessions import open_session, resolve_session
from flowdesk.auth.tokens import create_token, resolve_token
from flowdesk.auth.users import (
    authenticate,
    change_own_password,
    create_user,
    delete_group,
    delete_user,
    disable_user,
    flows_limited_to,
    get_group,
    get_user,
    list_groups,
    set_scopes,
)
from flowdesk.db.models import ApiToken, Run, UserGroup, WebSession
from flowdesk.errors import Conflict, FlowdeskError, NotFound
from flowdesk.flows.service import flow_visible_to, get_flow
from flowdesk.system import System
from tests.support.stored_flows import apply_flow

HOUR = timedelta(hours=1)
CLOSED = """
    id: closed
    name: Closed
    interactive:
      enabled: true
      groups: [auditors]
    steps:
      - log: hi
"""


@pytest.fixture
def users(system: System) -> System:
    with system.db.transaction() as session:
        create_user(session, "root", "root-password", ["admin"])
        create_user(session, "alice", "alice-password", ["flow:run"], ["auditors"])
    return system


# Own password


def test_change_own_password_needs_the_current_one(users: System) -> None:
    with users.db.transaction() as session:
        alice = get_user(session, "alice")
        with pytest.raises(FlowdeskError, match="current password is not right"):
            change_own_password(session, alice, "wrong", "new-pass-1", "new-pass-1")


def test_change_own_password_needs_the_new_one_twice(users: System) -> None:
    with users.db.transaction() as session:
        alice = get_user(session, "alice")
        with pytest.raises(FlowdeskError, match="repetition differ"):
            change_own_password(
                session, alice, "alice-password", "new-pass-1", "new-pass-2"
            )


def test_change_own_password_keeps_the_strength_rules(users: System) -> None:
    with users.db.transaction() as session:
        alice = get_user(session, "alice")
        with pytest.raises(FlowdeskError, match="at least 8 characters"):
            change_own_password(session, alice, "alice-password", "short", "short")


def test_change_own_password_ends_sessions_and_is_logged(
    users: System, caplog: pytest.LogCaptureFixture
) -> None:
    with users.db.transaction() as session:
        old = open_session(session, get_user(session, "alice"), HOUR)

    with caplog.at_level(logging.INFO), users.db.transaction() as session:
        alice = get_user(session, "alice")
        change_own_password(
            session, alice, "alice-password", "new-pass-1", "new-pass-1"
        )

    with users.db.transaction() as session:
        assert resolve_session(session, old.token) is None
        assert authenticate(session, "alice", "new-pass-1") is not None
    assert "user alice changed their own password" in caplog.messages
    assert not any("new-pass-1" in message for message in caplog.messages)


# Deleting users


def test_delete_user_keeps_their_runs_and_removes_the_rest(users: System) -> None:
    apply_flow(users, CLOSED)
    with users.db.transaction() as session:
        alice = get_user(session, "alice")
        open_session(session, alice, HOUR)
        secret = create_token(session, "robot", alice, ["flow:run"]).secret
        flow = get_flow(session, "closed")
        run = Run(
            id="r1",
            flow_id="closed",
            version_id=flow.current_version_id,
            state="succeeded",
            trigger="form",
            user_id=alice.id,
            inputs={},
        )
        session.add(run)

    with users.db.transaction() as session:
        delete_user(session, get_user(session, "alice"), actor=None)

    with users.db.reading() as session:
        with pytest.raises(NotFound):
            get_user(session, "alice")
        kept = session.get_one(Run, run.id)
        assert kept.user_id is None
        assert resolve_token(session, secret) is None
        for table in (WebSession, ApiToken, UserGroup):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_delete_user_refuses_oneself(users: System) -> None:
    with users.db.transaction() as session:
        root = get_user(session, "root")
        with pytest.raises(Conflict, match="your own account"):
            delete_user(session, root, actor=root)


def test_delete_user_refuses_the_last_enabled_admin(users: System) -> None:
    with users.db.transaction() as session:
        create_user(session, "old-admin", "old-admin-pass", ["admin"])
        disable_user(session, get_user(session, "old-admin"))

    last = "'root' is the last enabled admin"
    with users.db.transaction() as session, pytest.raises(Conflict, match=last):
        delete_user(session, get_user(session, "root"))


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(
    users: System,
) -> None:
    last = "'root' is the last enabled administrator and cannot be"
    with users.db.transaction() as session, pytest.raises(Conflict, match=last):
        disable_user(session, get_user(session, "root"))
    with users.db.transaction() as session, pytest.raises(Conflict, match=last):
        set_scopes(session, get_user(session, "root"), ["flow:run"])

    with users.db.transaction() as session:
        create_user(session, "second", "second-pass", ["admin"])
    with users.db.transaction() as session:
        set_scopes(session, get_user(session, "root"), ["flow:run"])
        disable_user(session, get_user(session, "root"))


def test_delete_user_allows_an_admin_when_another_remains(users: System) -> None:
    with users.db.transaction() as session:
        create_user(session, "second", "second-pass", ["admin"])
    with users.db.transaction() as session:
        delete_user(
            session, get_user(session, "root"), actor=get_user(session, "second")
        )

    with users.db.reading() as session, pytest.raises(NotFound):
        get_user(session, "root")


# Deleting groups


def test_delete_group_takes_members_out(users: System) -> None:
    with users.db.transaction() as session:
        delete_group(session, get_group(session, "auditors"))

    with users.db.reading() as session:
        assert get_user(session, "alice").group_names == set()
        assert list_groups(session) == []


def test_delete_group_leaves_its_flows_closed_to_flow_users(users: System) -> None:
    apply_flow(users, CLOSED)
    with users.db.transaction() as session:
        assert [flow.id for flow in flows_limited_to(session, "auditors")] == ["closed"]
        delete_group(session, get_group(session, "auditors"))

    with users.db.reading() as session:
        flow = get_flow(session, "closed")
        alice = get_user(session, "alice")
        # Not open to everyone: no flow user sees it; developers still do.
        assert not flow_visible_to(flow, alice.group_names)
        assert not flow_visible_to(flow, set())
        assert flow_visible_to(flow, None)


def test_delete_group_names_an_unknown_group(users: System) -> None:
    unknown = "no group named 'nobody'"
    with users.db.reading() as session, pytest.raises(NotFound, match=unknown):
        get_group(session, "nobody")
