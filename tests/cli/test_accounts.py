"""The administration commands: `flowdesk users disable/enable/set-password/
set-scopes/add-group/remove-group`, `flowdesk groups` and `flowdesk tokens`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from flowdesk.auth.tokens import resolve_token, token_hash
from flowdesk.auth.users import authenticate, get_user
from flowdesk.db.models import ApiToken
from flowdesk.db.types import utcnow
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.cli.conftest import Invoke


@pytest.fixture
def with_alice(flowdesk: Invoke) -> Invoke:
    created = flowdesk(
        "users",
        "create",
        "alice",
        "--password",
        "first-pass",
        "--scope",
        "flow:run",
    )
    assert created.exit_code == 0, created.output
    return flowdesk


@pytest.fixture
def stored(data_dir: Path) -> Iterator[System]:
    system = open_system(Settings(data_dir=data_dir))
    yield system
    system.db.dispose()


def test_users_disable_and_enable_switch_sign_in(
    with_alice: Invoke, stored: System
) -> None:
    disabled = with_alice("users", "disable", "alice")

    assert disabled.exit_code == 0
    assert "User alice disabled." in disabled.stdout
    assert "disabled" in with_alice("users", "list").stdout
    with stored.db.transaction() as session:
        assert authenticate(session, "alice", "first-pass") is None

    enabled = with_alice("users", "enable", "alice")

    assert enabled.exit_code == 0
    with stored.db.transaction() as session:
        assert authenticate(session, "alice", "first-pass") is not None


def test_users_set_password_from_stdin_replaces_the_old_one(
    with_alice: Invoke, stored: System
) -> None:
    result = with_alice(
        "users", "set-password", "alice", "--password-stdin", input="second-pass\n"
    )

    assert result.exit_code == 0
    assert "sessions have ended" in result.stdout
    with stored.db.transaction() as session:
        assert authenticate(session, "alice", "first-pass") is None
        assert authenticate(session, "alice", "second-pass") is not None


def test_users_set_password_too_short_is_refused(with_alice: Invoke) -> None:
    result = with_alice("users", "set-password", "alice", "--password", "short")

    assert result.exit_code == 1
    assert "at least 8 characters" in result.stderr


def test_users_set_scopes_replaces_them(with_alice: Invoke) -> None:
    result = with_alice(
        "users", "set-scopes", "alice", "--scope", "flow:edit", "--scope", "flow:run"
    )

    assert result.exit_code == 0
    assert "User alice now has flow:run, flow:edit." in result.stdout


def test_users_set_scopes_names_an_unknown_scope(with_alice: Invoke) -> None:
    result = with_alice("users", "set-scopes", "alice", "--scope", "root")

    assert result.exit_code == 1
    assert "Unknown scope 'root'" in result.stderr


def test_users_add_group_and_remove_group(with_alice: Invoke, stored: System) -> None:
    added = with_alice("users", "add-group", "alice", "finance", "sales")
    removed = with_alice("users", "remove-group", "alice", "sales")

    assert added.exit_code == removed.exit_code == 0
    assert "User alice is in finance, sales." in added.stdout
    assert "User alice is in finance." in removed.stdout
    with stored.db.reading() as session:
        assert get_user(session, "alice").group_names == {"finance"}


def test_users_commands_name_an_unknown_user(flowdesk: Invoke) -> None:
    result = flowdesk("users", "disable", "nobody")

    assert result.exit_code == 1
    assert "There is no user named 'nobody'." in result.stderr


def test_groups_create_and_list_with_member_counts(with_alice: Invoke) -> None:
    with_alice("users", "add-group", "alice", "finance")

    created = with_alice("groups", "create", "Auditors")
    listed = with_alice("groups", "list")

    assert created.exit_code == 0
    assert "Created group Auditors." in created.stdout
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if "│" in line}
    assert "0" in rows["Auditors"]
    assert "1" in rows["finance"]


def test_groups_create_twice_is_a_conflict(flowdesk: Invoke) -> None:
    flowdesk("groups", "create", "finance")

    result = flowdesk("groups", "create", "finance")

    assert result.exit_code == 1
    assert "A group named 'finance' exists already." in result.stderr


def test_groups_create_refuses_a_comma(flowdesk: Invoke) -> None:
    result = flowdesk("groups", "create", "a,b")

    assert result.exit_code == 1
    assert "'a,b' is not allowed" in result.stderr


def test_tokens_create_prints_the_token_once_and_stores_its_hash(
    with_alice: Invoke, stored: System
) -> None:
    result = with_alice(
        "tokens", "create", "billing", "--user", "alice", "--scope", "flow:run"
    )

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("fdk_")
    assert "shown only this once" in result.stderr
    with stored.db.reading() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == token_hash(secret)
        assert secret not in (row.token_hash, row.prefix)
        use = resolve_token(session, secret)
    assert use is not None and use.scopes == {"flow:run"}
    assert secret not in with_alice("tokens", "list").stdout


def test_tokens_create_refuses_a_scope_the_user_lacks(with_alice: Invoke) -> None:
    result = with_alice(
        "tokens", "create", "robot", "--user", "alice", "--scope", "admin"
    )

    assert result.exit_code == 1
    assert "does not have the scope 'admin'" in result.stderr


def test_tokens_list_and_revoke(with_alice: Invoke, stored: System) -> None:
    secret = with_alice(
        "tokens", "create", "billing", "--user", "alice", "--scope", "flow:run"
    ).stdout.strip()

    listed = with_alice("tokens", "list")
    revoked = with_alice("tokens", "revoke", "1")
    after = with_alice("tokens", "list")

    row = next(line for line in listed.stdout.splitlines() if "billing" in line)
    assert "alice" in row and "flow:run" in row and "never" in row
    assert "active" in row
    assert revoked.exit_code == 0
    assert "Token 1 (billing) revoked." in revoked.stdout
    assert "revoked" in next(
        line for line in after.stdout.splitlines() if "billing" in line
    )
    with stored.db.reading() as session:
        assert resolve_token(session, secret) is None


def test_tokens_revoke_names_an_unknown_id(flowdesk: Invoke) -> None:
    result = flowdesk("tokens", "revoke", "42")

    assert result.exit_code == 1
    assert "There is no API token with the id 42." in result.stderr


# Deleting, and tokens that expire


def test_users_delete_with_yes_removes_the_user(
    with_alice: Invoke, stored: System
) -> None:
    result = with_alice("users", "delete", "alice", "--yes")

    assert result.exit_code == 0, result.output
    assert "User alice deleted." in result.stdout
    assert "alice" not in with_alice("users", "list").stdout


def test_users_delete_asks_and_keeps_the_user_unless_confirmed(
    with_alice: Invoke,
) -> None:
    result = with_alice("users", "delete", "alice")

    assert result.exit_code == 1
    assert "Nothing was deleted" in result.stderr
    assert "alice" in with_alice("users", "list").stdout


def test_users_delete_refuses_the_last_enabled_admin(flowdesk: Invoke) -> None:
    flowdesk("users", "create", "root", "--password", "root-pass", "--scope", "admin")

    result = flowdesk("users", "delete", "root", "--yes")

    assert result.exit_code == 1
    assert "'root' is the last enabled administrator" in result.stderr


def test_groups_delete_takes_members_out(with_alice: Invoke, stored: System) -> None:
    with_alice("users", "add-group", "alice", "finance")

    result = with_alice("groups", "delete", "finance", "--yes")

    assert result.exit_code == 0, result.output
    assert "Group finance deleted." in result.stdout
    with stored.db.reading() as session:
        assert get_user(session, "alice").group_names == set()
    assert with_alice("groups", "delete", "finance", "--yes").exit_code == 1


def test_tokens_create_with_an_expiry_lists_it(with_alice: Invoke) -> None:
    made = with_alice(
        "tokens",
        "create",
        "ci",
        "--user",
        "alice",
        "--scope",
        "flow:run",
        "--expires-in",
        "7",
    )

    assert made.exit_code == 0, made.output
    assert "expiring 20" in made.stderr
    row = next(
        line
        for line in with_alice("tokens", "list").stdout.splitlines()
        if "ci" in line
    )
    assert "active" in row and row.count("never") == 1


def test_tokens_list_marks_expired_tokens(with_alice: Invoke, stored: System) -> None:
    with_alice("tokens", "create", "ci", "--user", "alice", "--scope", "flow:run")
    with stored.db.transaction() as session:
        session.execute(
            update(ApiToken).values(expires_at=utcnow() - timedelta(days=1))
        )

    row = next(
        line
        for line in with_alice("tokens", "list").stdout.splitlines()
        if "ci" in line
    )
    assert "expired" in row


def test_tokens_create_refuses_a_bad_expiry(with_alice: Invoke) -> None:
    result = with_alice(
        "tokens",
        "create",
        "ci",
        "--user",
        "alice",
        "--scope",
        "flow:run",
        "--expires-in",
        "0",
    )

    assert result.exit_code == 1
    assert "A token expires after 1 to 3,650 days; got 0." in result.stderr
