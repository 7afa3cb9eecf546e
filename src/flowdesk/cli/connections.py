"""`flowdesk connections ...`: the named APIs `http` steps reach with
`connection: NAME`. Credentials are given as the names of secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from flowdesk.cli.secrets import reported
from flowdesk.errors import FieldError, InputError

connections_app = typer.Typer(
    help="Manage connections: base URL, headers and authentication for http steps.",
    no_args_is_help=True,
)

# The option of each field that flowdesk.secrets.connections names.
OPTIONS = {
    "name": "NAME",
    "base_url": "--base-url",
    "headers": "--header",
    "auth": "--auth",
    "secret": "--secret",
    "username": "--username",
    "location": "--in",
    "param_name": "--param-name",
}


@connections_app.command("set")
@reported
def connections_set(
    name: str,
    base_url: str = typer.Option(
        ..., "--base-url", help="Where relative step URLs start, e.g. https://api/v1."
    ),
    header: list[str] = typer.Option(
        [],
        "--header",
        help="A default header as Name=value or 'Name: value'; repeatable.",
    ),
    auth: str = typer.Option(
        "none", "--auth", help="Authentication: none, bearer, basic or api_key."
    ),
    secret: str | None = typer.Option(
        None, "--secret", help="The secret holding the token, password or key."
    ),
    username: str | None = typer.Option(
        None, "--username", help="The user name, for --auth basic."
    ),
    location: str | None = typer.Option(
        None, "--in", help="Where an api_key goes: header (default) or query."
    ),
    param_name: str | None = typer.Option(
        None,
        "--param-name",
        help="The api_key's header or query parameter (X-API-Key, api_key).",
    ),
) -> None:
    """Create a connection or replace its settings."""
    from flowdesk.cli.main import err, out
    from flowdesk.secrets.connections import ConnectionForm, put_connection
    from flowdesk.secrets.store import list_secrets
    from flowdesk.system import open_system

    form = ConnectionForm(
        name=name,
        base_url=base_url,
        headers=header,
        auth=auth,
        secret=secret or "",
        username=username or "",
        location=location or "",
        param_name=param_name or "",
    )
    system = open_system()
    with as_options(), system.db.transaction() as session:
        created = put_connection(session, form, strict=True)
        known = {row.name for row in list_secrets(session)}
    out.print(f"Connection {name} {'created' if created else 'changed'}.", markup=False)
    if secret and secret not in known:
        err.print(
            f"note: the secret {secret} is not set yet; set it with"
            f" 'flowdesk secrets set {secret}'.",
            markup=False,
        )


@contextmanager
def as_options() -> Iterator[None]:
    """Name the options, rather than the form's fields, in refusals."""
    try:
        yield
    except InputError as error:
        errors = [
            FieldError(OPTIONS.get(e.field, e.field), e.message) for e in error.errors
        ]
        raise InputError(errors) from None


@connections_app.command("list")
@reported
def connections_list() -> None:
    """List connections with their base URL, headers and authentication."""
    from flowdesk.cli.main import out
    from flowdesk.secrets.connections import describe_auth, list_connections
    from flowdesk.system import open_system

    system = open_system()
    with system.db.reading() as session:
        rows = list_connections(session)
    if not rows:
        out.print("No connections yet; add one with 'flowdesk connections set'.")
        return
    # Lines rather than a table: URLs stay whole, for reading and for grep.
    for row in rows:
        out.print(f"{row.name}: {row.base_url}", markup=False, soft_wrap=True)
        for key, value in row.headers.items():
            out.print(f"  header {key}: {value}", markup=False, soft_wrap=True)
        out.print(f"  authentication: {describe_auth(row.auth)}", markup=False)


@connections_app.command("delete")
@reported
def connections_delete(name: str) -> None:
    """Delete a connection; steps naming it fail from then on."""
    from flowdesk.cli.main import out
    from flowdesk.secrets.connections import delete_connection
    from flowdesk.system import open_system

    system = open_system()
    with system.db.transaction() as session:
        delete_connection(session, name)
    out.print(f"Connection {name} deleted.", markup=False)
