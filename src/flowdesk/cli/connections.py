"""`flowdesk connections ...`: the named APIs `http` steps reach with
`connection: NAME`. Credentials are given as the names of secrets."""

from __future__ import annotations

import typer

from flowdesk.cli.secrets import reported

connections_app = typer.Typer(
    help="Manage connections: base URL, headers and authentication for http steps.",
    no_args_is_help=True,
)


@connections_app.command("set")
@reported
def connections_set(
    name: str,
    base_url: str = typer.Option(
        ..., "--base-url", help="Where relative step URLs start, e.g. https://api/v1."
    ),
    header: list[str] = typer.Option(
        [], "--header", help="A default header as Name=value; repeatable."
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
    from flowdesk.errors import FlowdeskError
    from flowdesk.secrets.connections import build_auth, set_connection
    from flowdesk.secrets.store import list_secrets
    from flowdesk.system import open_system

    headers = {}
    for pair in header:
        key, sign, value = pair.partition("=")
        if not sign or not key.strip():
            raise FlowdeskError(f"--header must look like Name=value, got {pair!r}.")
        headers[key.strip()] = value.strip()
    stored_auth = build_auth(
        auth, secret, username=username, location=location, param_name=param_name
    )

    system = open_system()
    with system.db.transaction() as session:
        created = set_connection(session, name, base_url, headers, stored_auth)
        known = {row.name for row in list_secrets(session)}
    out.print(f"Connection {name} {'created' if created else 'changed'}.", markup=False)
    if secret and secret not in known:
        err.print(
            f"note: the secret {secret} is not set yet; set it with"
            f" 'flowdesk secrets set {secret}'.",
            markup=False,
        )


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
