"""`flowdesk tokens ...`: API tokens for external systems. A new token is
printed once; flowdesk keeps only its hash."""

from __future__ import annotations

import typer
from rich.table import Table

from flowdesk.cli.users import reported

tokens_app = typer.Typer(
    help="Manage API tokens, sent as 'Authorization: Bearer ...' to /api/v1/.",
    no_args_is_help=True,
)

TIME_FORMAT = "%Y-%m-%d %H:%M"


@tokens_app.command("create")
@reported
def tokens_create(
    name: str,
    user: str = typer.Option(..., "--user", help="The user the token acts as."),
    scope: list[str] = typer.Option(
        [], help="A scope of the token (the user must hold it); repeatable."
    ),
    expires_in: int | None = typer.Option(
        None, "--expires-in", metavar="DAYS", help="Expire after DAYS days."
    ),
) -> None:
    """Create a token and print it, this once."""
    from flowdesk.auth.tokens import EXPIRY_FORMAT, create_token, expiry_in
    from flowdesk.auth.users import get_user
    from flowdesk.cli.main import err, out
    from flowdesk.system import open_system

    expires_at = expiry_in(expires_in)
    with open_system().db.transaction() as session:
        owner = get_user(session, user)
        made = create_token(session, name, owner, scope, expires_at)
        token_id, scopes = made.record.id, ", ".join(made.record.scopes)
    expiry = expires_at.strftime(EXPIRY_FORMAT) if expires_at else "never"
    # The token alone on standard output, so that a script can capture it.
    out.print(made.secret, markup=False)
    err.print(
        f"Token {token_id} ({name}) for {user} with {scopes}, expiring {expiry}. "
        "It is shown only this once; store it now.",
        markup=False,
    )


@tokens_app.command("list")
@reported
def tokens_list() -> None:
    """List tokens: id, name, user, scopes, when made, last used and expiring,
    and their state (active, expired, revoked)."""
    from flowdesk.auth.tokens import list_tokens, token_state
    from flowdesk.cli.main import out, print_table
    from flowdesk.system import open_system

    with open_system().db.reading() as session:
        tokens = list_tokens(session)
    if not tokens:
        out.print("No API tokens yet; make one with 'flowdesk tokens create NAME'.")
        return
    table = Table("id", "name", "starts with", "user", "scopes", "created", "last used")
    table.add_column("expires")
    table.add_column("state")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.name,
            token.prefix,
            token.user.username,
            ", ".join(token.scopes),
            token.created_at.strftime(TIME_FORMAT),
            token.last_used_at.strftime(TIME_FORMAT) if token.last_used_at else "never",
            token.expires_at.strftime(TIME_FORMAT) if token.expires_at else "never",
            token_state(token),
        )
    print_table(table)


@tokens_app.command("revoke")
@reported
def tokens_revoke(token_id: int) -> None:
    """Revoke a token; it is refused from its next request on."""
    from flowdesk.auth.tokens import revoke_token
    from flowdesk.cli.main import out
    from flowdesk.system import open_system

    with open_system().db.transaction() as session:
        name = revoke_token(session, token_id).name
    out.print(f"Token {token_id} ({name}) revoked.", markup=False)
