"""`flowdesk users ...` beyond create and list, and `flowdesk groups ...`: the
command-line side of the administration pages."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
groups_app = typer.Typer(help="Manage groups.", no_args_is_help=True)


def reported(command: F) -> F:
    """Errors reported as `flowdesk.cli.main` reports them; looked up when the
    command runs, because the main module imports this one."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from flowdesk.cli.main import reports_errors

        return reports_errors(command)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def read_password(password: str | None, from_stdin: bool) -> str:
    """The password from the option, standard input, or a hidden prompt."""
    from flowdesk.errors import FlowdeskError

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if password:
        return password
    if sys.stdin.isatty():
        typed: str = typer.prompt(
            "New password", hide_input=True, confirmation_prompt=True
        )
        return typed
    raise FlowdeskError("Give the password with --password or --password-stdin.")


@users_app.command("disable")
@reported
def users_disable(name: str) -> None:
    """Disable a user: their sessions end and their API tokens stop working."""
    from flowdesk.auth.users import disable_user, get_user
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        disable_user(session, get_user(session, name))
    out.print(f"User {name} disabled.", markup=False)


@users_app.command("enable")
@reported
def users_enable(name: str) -> None:
    """Let a disabled user sign in again."""
    from flowdesk.auth.users import enable_user, get_user
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        enable_user(session, get_user(session, name))
    out.print(f"User {name} enabled.", markup=False)


@users_app.command("set-password")
@reported
def users_set_password(
    name: str,
    password: str | None = typer.Option(None, help="The new password."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Give a user a new password; every session they had ends."""
    from flowdesk.auth.users import get_user, reset_password
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    new_password = read_password(password, password_stdin)
    with open_system().db.transaction() as session:
        reset_password(session, get_user(session, name), new_password)
    out.print(f"Password of {name} changed; their sessions have ended.", markup=False)


@users_app.command("set-scopes")
@reported
def users_set_scopes(
    name: str,
    scope: list[str] = typer.Option(
        [], help="A scope the user keeps or gets; repeatable. None: no scopes."
    ),
) -> None:
    """Replace a user's scopes with the ones given."""
    from flowdesk.auth.users import get_user, set_scopes
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        user = get_user(session, name)
        set_scopes(session, user, scope)
        scopes = ", ".join(user.scopes) or "no scopes"
    out.print(f"User {name} now has {scopes}.", markup=False)


@users_app.command("add-group")
@reported
def users_add_group(name: str, group: list[str]) -> None:
    """Add a user to one or more groups, creating groups that do not exist."""
    from flowdesk.auth.users import add_to_group, get_user
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        user = get_user(session, name)
        for group_name in group:
            add_to_group(session, user, group_name)
        groups = ", ".join(sorted(user.group_names))
    out.print(f"User {name} is in {groups}.", markup=False)


@users_app.command("remove-group")
@reported
def users_remove_group(name: str, group: list[str]) -> None:
    """Take a user out of one or more groups."""
    from flowdesk.auth.users import get_user, set_groups
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        user = get_user(session, name)
        keep = [known for known in user.group_names if known not in set(group)]
        set_groups(session, user, keep)
        groups = ", ".join(sorted(keep)) or "no groups"
    out.print(f"User {name} is in {groups}.", markup=False)


@users_app.command("delete")
@reported
def users_delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="Delete without asking."),
) -> None:
    """Delete a user; the runs they started remain.

    Their sessions, API tokens and group memberships go with them."""
    from flowdesk.auth.users import delete_user, get_user
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    confirm(f"Delete the user {name}? Their runs remain, without a user.", yes)
    with open_system().db.transaction() as session:
        delete_user(session, get_user(session, name))
    out.print(f"User {name} deleted.", markup=False)


def confirm(question: str, yes: bool) -> None:
    """Go on when `yes` or when the person at the terminal agrees."""
    from flowdesk.errors import FlowdeskError

    if yes:
        return
    if not sys.stdin.isatty():
        raise FlowdeskError("Nothing was deleted: confirm with --yes.")
    if not typer.confirm(question, default=False):
        raise FlowdeskError("Nothing was deleted.")


@groups_app.command("list")
@reported
def groups_list() -> None:
    """List groups with their number of members."""
    from flowdesk.auth.users import list_groups
    from flowdesk.cli.main import out, print_table
    from flowdesk.system import open_system

    with open_system().db.reading() as session:
        groups = list_groups(session)
    if not groups:
        out.print("No groups yet; add one with 'flowdesk groups create NAME'.")
        return
    table = Table("group", "members")
    for group, members in groups:
        table.add_row(group.name, str(members))
    print_table(table)


@groups_app.command("create")
@reported
def groups_create(name: str) -> None:
    """Create a group."""
    from flowdesk.auth.users import create_group
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        group = create_group(session, name)
        created = group.name
    out.print(f"Created group {created}.", markup=False)


@groups_app.command("delete")
@reported
def groups_delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="Delete without asking."),
) -> None:
    """Delete a group and take its members out of it.

    Flows limited to it keep its name: flow users outside their other groups
    no longer see them."""
    from flowdesk.auth.users import delete_group, flows_limited_to, get_group
    from flowdesk.cli.main import err, out
    from flowdesk.system import open_system

    confirm(f"Delete the group {name}?", yes)
    with open_system().db.transaction() as session:
        group = get_group(session, name)
        flows = [flow.id for flow in flows_limited_to(session, group.name)]
        delete_group(session, group)
    out.print(f"Group {name} deleted.", markup=False)
    if flows:
        err.print(
            f"Flows still limited to {name}, now hidden from flow users outside "
            f"their other groups: {', '.join(flows)}.",
            markup=False,
        )
