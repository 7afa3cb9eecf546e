"""`flowdesk users create` and `flowdesk users list`."""

from __future__ import annotations

from pathlib import Path

from flowdesk.auth.users import authenticate
from flowdesk.settings import Settings
from flowdesk.system import open_system
from tests.cli.conftest import Invoke


def test_users_create_then_list_shows_scopes_and_groups(flowdesk: Invoke) -> None:
    created = flowdesk(
        "users",
        "create",
        "alice",
        "--password",
        "alice-secret-1",
        "--scope",
        "flow:run",
        "--scope",
        "flow:edit",
        "--group",
        "sales",
    )
    listed = flowdesk("users", "list")

    assert created.exit_code == 0
    assert "Created user alice (flow:run, flow:edit)." in created.stdout
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "alice" in line)
    assert "flow:run, flow:edit" in row
    assert "sales" in row
    assert "active" in row
    assert "alice-secret-1" not in created.output + listed.output


def test_users_create_reads_the_password_from_stdin(
    flowdesk: Invoke, data_dir: Path
) -> None:
    result = flowdesk(
        "users",
        "create",
        "bob",
        "--password-stdin",
        "--scope",
        "flow:run",
        input="from-standard-input\n",
    )

    assert result.exit_code == 0
    system = open_system(Settings(data_dir=data_dir))
    with system.db.transaction() as session:
        assert authenticate(session, "bob", "from-standard-input") is not None
        assert authenticate(session, "bob", "from-standard-input\n") is None
    system.db.dispose()


def test_users_create_with_unknown_scope_says_so_in_one_line(flowdesk: Invoke) -> None:
    result = flowdesk(
        "users", "create", "carol", "--password", "carol-secret", "--scope", "flow:fly"
    )

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "'flow:fly'" in lines[0]
    assert "flow:run" in lines[0]
    assert "carol" not in flowdesk("users", "list").stdout


def test_users_create_twice_is_refused(flowdesk: Invoke) -> None:
    flowdesk("users", "create", "dave", "--password", "dave-secret", "--scope", "admin")

    again = flowdesk(
        "users", "create", "dave", "--password", "other-secret", "--scope", "admin"
    )

    assert again.exit_code == 1
    assert "'dave' exists already" in again.stderr


def test_users_create_refuses_a_short_password(flowdesk: Invoke) -> None:
    result = flowdesk("users", "create", "erin", "--password", "short")

    assert result.exit_code == 1
    assert "at least 8 characters" in result.stderr


def test_users_create_without_any_password_explains_the_options(
    flowdesk: Invoke,
) -> None:
    result = flowdesk("users", "create", "frank", "--scope", "flow:run")

    assert result.exit_code == 1
    assert "--password" in result.stderr and "--password-stdin" in result.stderr


def test_users_create_refuses_a_bad_name(flowdesk: Invoke) -> None:
    result = flowdesk("users", "create", "no spaces", "--password", "long-enough")

    assert result.exit_code == 1
    assert "'no spaces'" in result.stderr


def test_users_list_on_a_fresh_data_dir_works(flowdesk: Invoke) -> None:
    result = flowdesk("users", "list")

    assert result.exit_code == 0
    assert "user" in result.stdout
