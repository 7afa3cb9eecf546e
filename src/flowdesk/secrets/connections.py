"""Connections: a named base URL with default headers and authentication that
`http` steps use with `connection: NAME`.

A connection's credentials are secrets, referenced by name: the table holds the
secret's name, never its value, so listing or exporting connections shows no
credential.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.db.models import Connection as ConnectionRow
from flowdesk.db.types import utcnow
from flowdesk.engine.connections import (
    AUTH_KINDS,
    KEY_LOCATIONS,
    Authentication,
    Connection,
)
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.secrets.store import check_secret_name

logger = logging.getLogger(__name__)

CONNECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DEFAULT_KEY_NAMES = {"header": "X-API-Key", "query": "api_key"}


def build_auth(
    kind: str | None,
    secret: str | None,
    *,
    username: str | None = None,
    location: str | None = None,
    param_name: str | None = None,
) -> dict[str, Any] | None:
    """The stored form of a connection's authentication, checked; None for a
    connection without any."""
    if kind is None or kind == "none":
        if secret or username or location or param_name:
            raise FlowdeskError(
                "--secret, --username, --in and --param-name need --auth"
                f" ({', '.join(AUTH_KINDS)})."
            )
        return None
    if kind not in AUTH_KINDS:
        raise FlowdeskError(
            f"Unknown authentication {kind!r}; expected one of"
            f" {', '.join(AUTH_KINDS)} or none."
        )
    if not secret:
        raise FlowdeskError(
            f"--auth {kind} needs --secret NAME: the secret holding the credential."
        )
    check_secret_name(secret)

    auth: dict[str, Any] = {"kind": kind, "secret": secret}
    if kind == "basic":
        if not username:
            raise FlowdeskError("--auth basic needs --username.")
        auth["username"] = username
    if kind == "api_key":
        location = location or "header"
        if location not in KEY_LOCATIONS:
            raise FlowdeskError(f"--in must be 'header' or 'query', got {location!r}.")
        name = param_name or DEFAULT_KEY_NAMES[location]
        if location == "header":
            _check_header_name(name)
        auth.update(location=location, param_name=name)
    elif location or param_name:
        raise FlowdeskError("--in and --param-name go with --auth api_key only.")
    return auth


def set_connection(
    session: Session,
    name: str,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    auth: dict[str, Any] | None = None,
) -> bool:
    """Create or replace the connection `name`. True when it is new."""
    if CONNECTION_NAME.fullmatch(name) is None:
        raise FlowdeskError(
            "A connection's name must be letters, digits, '.', '_' and '-',"
            f" starting with a letter or digit; got {name!r}."
        )
    _check_base_url(base_url)
    for header, value in (headers or {}).items():
        _check_header_name(header)
        if "\r" in value or "\n" in value:
            raise FlowdeskError(f"The value of the header {header!r} has a line break.")

    row = session.scalar(select(ConnectionRow).where(ConnectionRow.name == name))
    now = utcnow()
    created = row is None
    if row is None:
        row = ConnectionRow(name=name, created_at=now)
        session.add(row)
    row.base_url = base_url
    row.headers = dict(headers or {})
    row.auth = auth
    row.updated_at = now
    logger.info("connection %s %s", name, "created" if created else "changed")
    return created


def list_connections(session: Session) -> list[ConnectionRow]:
    return list(session.scalars(select(ConnectionRow).order_by(ConnectionRow.name)))


def delete_connection(session: Session, name: str) -> None:
    row = session.scalar(select(ConnectionRow).where(ConnectionRow.name == name))
    if row is None:
        raise NotFound(f"There is no connection named {name!r}.")
    session.delete(row)
    logger.info("connection %s deleted", name)


def load_connections(session: Session) -> dict[str, Connection]:
    """Every connection as the engine uses it, for one run."""
    return {row.name: engine_connection(row) for row in list_connections(session)}


def engine_connection(row: ConnectionRow) -> Connection:
    auth = None
    if row.auth:
        auth = Authentication(
            kind=row.auth["kind"],
            secret=row.auth["secret"],
            username=row.auth.get("username"),
            location=row.auth.get("location", "header"),
            param_name=row.auth.get("param_name"),
        )
    return Connection(row.name, row.base_url, dict(row.headers or {}), auth)


def describe_auth(auth: dict[str, Any] | None) -> str:
    """A one-line summary for listings: the kind and the secret's name."""
    if not auth:
        return "none"
    secret = f"secret {auth['secret']}"
    if auth["kind"] == "basic":
        return f"basic as {auth.get('username')}, {secret}"
    if auth["kind"] == "api_key":
        return f"api_key in {auth.get('location')} {auth.get('param_name')}, {secret}"
    return f"bearer, {secret}"


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FlowdeskError(
            "A connection's base URL must be an http:// or https:// address with a"
            f" host, such as https://api.example.com/v1; got {base_url!r}."
        )
    if parts.query or parts.fragment:
        raise FlowdeskError(
            f"A connection's base URL may not have a query or fragment; got"
            f" {base_url!r}. Put parameters into the steps' 'query'."
        )


def _check_header_name(name: str) -> None:
    if HEADER_NAME.fullmatch(name) is None:
        raise FlowdeskError(f"{name!r} is not a valid HTTP header name.")
