"""`flowdesk secrets ...`: setting, listing and deleting secrets. No command
ever prints a secret's value."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

secrets_app = typer.Typer(
    help="Manage secrets, which flows read as {{ secrets.NAME }}.",
    no_args_is_help=True,
)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def reported(command: F) -> F:
    """`reports_errors` of the main module, looked up when the command runs,
    since the main module imports this one to register it."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from flowdesk.cli.main import reports_errors

        return reports_errors(command)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@secrets_app.command("set")
@reported
def secrets_set(
    name: str,
    value: str | None = typer.Option(
        None,
        help="The value. Omitted: read from standard input (or asked for, hidden,"
        " in a terminal), which keeps it out of the shell's history.",
    ),
) -> None:
    """Create a secret or change its value."""
    from flowdesk.cli.main import out
    from flowdesk.secrets.store import check_secret_name, secret_box, set_secret
    from flowdesk.system import open_system

    check_secret_name(name)
    if value is None:
        value = _read_value()
    system = open_system()
    with system.db.transaction() as session:
        created = set_secret(session, secret_box(system.settings), name, value)
    out.print(f"Secret {name} {'created' if created else 'changed'}.", markup=False)


def _read_value() -> str:
    if sys.stdin.isatty():
        entered: str = typer.prompt("Value", hide_input=True, confirmation_prompt=True)
        return entered
    text = sys.stdin.read()
    # One line end is the shell's, not the secret's.
    return text.removesuffix("\n").removesuffix("\r")


@secrets_app.command("list")
@reported
def secrets_list() -> None:
    """List the secrets' names and when they were set; never their values."""
    from flowdesk.cli.main import out
    from flowdesk.secrets.store import list_secrets
    from flowdesk.system import open_system

    system = open_system()
    with system.db.reading() as session:
        secrets = list_secrets(session)
    if not secrets:
        out.print("No secrets yet; add one with 'flowdesk secrets set NAME'.")
        return
    table = Table("name", "created", "updated")
    for secret in secrets:
        table.add_row(
            secret.name,
            secret.created_at.strftime(TIME_FORMAT),
            secret.updated_at.strftime(TIME_FORMAT),
        )
    out.print(table)


@secrets_app.command("delete")
@reported
def secrets_delete(name: str) -> None:
    """Delete a secret. Flows and connections using it fail until it is set."""
    from flowdesk.cli.main import err, out
    from flowdesk.secrets.connections import list_connections
    from flowdesk.secrets.store import delete_secret
    from flowdesk.system import open_system

    system = open_system()
    with system.db.transaction() as session:
        delete_secret(session, name)
        users = [
            row.name
            for row in list_connections(session)
            if row.auth and row.auth.get("secret") == name
        ]
    out.print(f"Secret {name} deleted.", markup=False)
    if users:
        err.print(
            f"note: the connection(s) {', '.join(users)} still use it.", markup=False
        )
