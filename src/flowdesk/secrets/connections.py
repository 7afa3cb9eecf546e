"""Connections: a named base URL with default headers and authentication that
`http` steps use with `connection: NAME`.

A connection's credentials are secrets, referenced by name: the table holds the
secret's name, never its value, so listing or exporting connections shows no
credential.

The connections page and `flowdesk connections` share this module: both hand
in a `ConnectionForm` as it was typed, and a refusal is an `InputError` naming
every bad field (`name`, `base_url`, `headers`, `auth`, `secret`, `username`,
`location`, `param_name`), so the page can show each message beside its field
and the command line beside its option.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.db.models import Connection as ConnectionRow
from flowdesk.db.models import Secret
from flowdesk.db.types import utcnow
from flowdesk.engine.connections import (
    AUTH_KINDS,
    KEY_LOCATIONS,
    Authentication,
    Connection,
)
from flowdesk.errors import FieldError, FlowdeskError, InputError, NotFound
from flowdesk.secrets.store import check_secret_name

logger = logging.getLogger(__name__)

CONNECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A header name cannot hold ':' or '=', so the first of them ends it: both
# "Accept: text/csv" (as HTTP writes it) and "Accept=text/csv" (as the command
# line's --header has always taken it) read the same.
HEADER_LINE = re.compile(r"\s*([^:=]*?)\s*[:=]\s*(.*?)\s*")
DEFAULT_KEY_NAMES = {"header": "X-API-Key", "query": "api_key"}
LONGEST_BASE_URL = 2000  # the width of the column

NO_AUTH = "none"
AUTH_CHOICES = (NO_AUTH, *AUTH_KINDS)
AUTH_LABELS = {
    NO_AUTH: "None",
    "bearer": "Bearer token",
    "basic": "Basic (user name and password)",
    "api_key": "API key",
}
# For messages: each kind's name in a sentence, and what its secret holds.
KIND_NAMES = {"bearer": "Bearer", "basic": "Basic", "api_key": "API key"}
CREDENTIALS = {"bearer": "token", "basic": "password", "api_key": "key"}


@dataclass(frozen=True)
class ConnectionForm:
    """A connection's settings as they were typed, on the connections page or
    the command line, before they are checked."""

    name: str = ""
    base_url: str = ""
    # One header each, as "Name: value" or "Name=value"; blank ones are skipped.
    headers: Sequence[str] = ()
    auth: str = NO_AUTH
    secret: str = ""
    username: str = ""
    location: str = ""
    param_name: str = ""


@dataclass(frozen=True)
class CheckedConnection:
    """A connection's settings in their stored form, every one checked."""

    name: str
    base_url: str
    headers: dict[str, str]
    auth: dict[str, Any] | None


@dataclass(frozen=True)
class SecretUse:
    name: str
    exists: bool


@dataclass(frozen=True)
class ConnectionListing:
    """One line of the connections list: what a connection reaches, how it
    signs in, and which secrets it needs (a missing one makes its steps fail)."""

    name: str
    base_url: str
    headers: dict[str, str]
    auth_kind: str
    auth_label: str
    secrets: tuple[SecretUse, ...]

    @property
    def missing_secrets(self) -> list[str]:
        return [use.name for use in self.secrets if not use.exists]


class _Problems:
    """Collects what is wrong with a form, so that one answer names it all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def raise_any(self) -> None:
        if self.errors:
            raise InputError(self.errors)


def check_connection(form: ConnectionForm, *, strict: bool) -> CheckedConnection:
    """The form's settings in their stored form; raises InputError naming every
    field that is wrong. `strict` refuses settings that the chosen
    authentication does not use, which on a command line are a mistake; a page
    that shows every field leaves them aside instead."""
    problems = _Problems()
    name = form.name.strip()
    base_url = form.base_url.strip()
    _check_name(problems, name)
    _check_base_url(problems, base_url)
    headers = _headers(problems, form.headers)
    auth = _auth(
        problems,
        form.auth.strip() or NO_AUTH,
        form.secret.strip(),
        username=form.username.strip(),
        location=form.location.strip(),
        param_name=form.param_name.strip(),
        strict=strict,
    )
    problems.raise_any()
    return CheckedConnection(name, base_url, headers, auth)


def create_connection(
    session: Session, form: ConnectionForm, *, strict: bool = False
) -> None:
    """Add a new connection; a name in use already is refused."""
    checked = check_connection(form, strict=strict)
    if _row(session, checked.name) is not None:
        raise InputError(
            [
                FieldError(
                    "name",
                    f"A connection named {checked.name!r} exists already; choose"
                    " another name or edit that one.",
                )
            ]
        )
    _store(session, checked)


def update_connection(
    session: Session, name: str, form: ConnectionForm, *, strict: bool = False
) -> None:
    """Replace the settings of the connection `name`, which keeps its name:
    steps refer to it by name."""
    get_connection(session, name)
    checked = check_connection(replace(form, name=name), strict=strict)
    _store(session, checked)


def put_connection(
    session: Session, form: ConnectionForm, *, strict: bool = True
) -> bool:
    """Create the connection or replace its settings. True when it is new."""
    return _store(session, check_connection(form, strict=strict))


def set_connection(
    session: Session,
    name: str,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    auth: dict[str, Any] | None = None,
) -> bool:
    """Create or replace the connection `name` from settings given in code,
    `auth` as `build_auth` makes it. True when it is new."""
    problems = _Problems()
    _check_name(problems, name)
    _check_base_url(problems, base_url)
    for header, value in (headers or {}).items():
        _check_header(problems, header, value)
    problems.raise_any()
    return _store(session, CheckedConnection(name, base_url, dict(headers or {}), auth))


def build_auth(
    kind: str | None,
    secret: str | None,
    *,
    username: str | None = None,
    location: str | None = None,
    param_name: str | None = None,
) -> dict[str, Any] | None:
    """The stored form of a connection's authentication, checked strictly;
    None for a connection without any."""
    problems = _Problems()
    auth = _auth(
        problems,
        kind or NO_AUTH,
        secret or "",
        username=username or "",
        location=location or "",
        param_name=param_name or "",
        strict=True,
    )
    problems.raise_any()
    return auth


def get_connection(session: Session, name: str) -> ConnectionRow:
    row = _row(session, name)
    if row is None:
        raise NotFound(f"There is no connection named {name!r}.")
    return row


def form_of(row: ConnectionRow) -> ConnectionForm:
    """A stored connection as the form that would make it, to edit it."""
    auth = row.auth or {}
    return ConnectionForm(
        name=row.name,
        base_url=row.base_url,
        headers=tuple(f"{key}: {value}" for key, value in (row.headers or {}).items()),
        auth=auth.get("kind", NO_AUTH),
        secret=auth.get("secret", ""),
        username=auth.get("username") or "",
        location=auth.get("location") or "",
        param_name=auth.get("param_name") or "",
    )


def list_connections(session: Session) -> list[ConnectionRow]:
    return list(session.scalars(select(ConnectionRow).order_by(ConnectionRow.name)))


def connection_listing(session: Session) -> list[ConnectionListing]:
    """Every connection with the secrets it uses and whether each is set."""
    rows = list_connections(session)
    known = set(session.scalars(select(Secret.name)))
    listing = []
    for row in rows:
        auth = row.auth or {}
        kind = auth.get("kind", NO_AUTH)
        uses = [SecretUse(auth["secret"], auth["secret"] in known)] if auth else []
        listing.append(
            ConnectionListing(
                name=row.name,
                base_url=row.base_url,
                headers=dict(row.headers or {}),
                auth_kind=kind,
                auth_label=AUTH_LABELS.get(kind, kind),
                secrets=tuple(uses),
            )
        )
    return listing


def delete_connection(session: Session, name: str) -> None:
    session.delete(get_connection(session, name))
    logger.info("connection %s deleted", name)


# Read for every run, as Core built once: the ORM's entities cost several
# times as much and the run needs only these columns (docs/benchmarks.md).
_RUN_CONNECTIONS = select(
    ConnectionRow.name,
    ConnectionRow.base_url,
    ConnectionRow.headers,
    ConnectionRow.auth,
)


def load_connections(session: Session) -> dict[str, Connection]:
    """Every connection as the engine uses it, for one run."""
    rows = session.connection().execute(_RUN_CONNECTIONS)
    return {
        name: engine_connection(name, base_url, headers, auth)
        for name, base_url, headers, auth in rows
    }


def engine_connection(
    name: str,
    base_url: str,
    headers: dict[str, Any] | None,
    auth: dict[str, Any] | None,
) -> Connection:
    authentication = None
    if auth:
        authentication = Authentication(
            kind=auth["kind"],
            secret=auth["secret"],
            username=auth.get("username"),
            location=auth.get("location", "header"),
            param_name=auth.get("param_name"),
        )
    return Connection(name, base_url, dict(headers or {}), authentication)


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


# Storing


def _row(session: Session, name: str) -> ConnectionRow | None:
    return session.scalar(select(ConnectionRow).where(ConnectionRow.name == name))


def _store(session: Session, checked: CheckedConnection) -> bool:
    row = _row(session, checked.name)
    now = utcnow()
    created = row is None
    if row is None:
        row = ConnectionRow(name=checked.name, created_at=now)
        session.add(row)
    row.base_url = checked.base_url
    row.headers = checked.headers
    row.auth = checked.auth
    row.updated_at = now
    logger.info("connection %s %s", checked.name, "created" if created else "changed")
    return created


# Checks


def _check_name(problems: _Problems, name: str) -> None:
    if not name:
        problems.add("name", "A connection needs a name, such as crm or shop-api.")
    elif CONNECTION_NAME.fullmatch(name) is None:
        problems.add(
            "name",
            "A connection's name must be letters, digits, '.', '_' and '-',"
            f" starting with a letter or digit, at most 100 characters; got {name!r}.",
        )


def _check_base_url(problems: _Problems, base_url: str) -> None:
    if not base_url:
        problems.add(
            "base_url",
            "A connection needs a base URL, such as https://api.example.com/v1.",
        )
        return
    if len(base_url) > LONGEST_BASE_URL:
        problems.add(
            "base_url",
            f"A base URL may have at most {LONGEST_BASE_URL} characters;"
            f" this one has {len(base_url)}.",
        )
        return
    try:
        parts = urlsplit(base_url)
        has_host = bool(parts.hostname)
    except ValueError:
        parts, has_host = None, False
    if parts is None or parts.scheme not in ("http", "https") or not has_host:
        problems.add(
            "base_url",
            "A connection's base URL must be an http:// or https:// address with a"
            f" host, such as https://api.example.com/v1; got {base_url!r}.",
        )
    elif parts.query or parts.fragment:
        problems.add(
            "base_url",
            f"A connection's base URL may not have a query or fragment; got"
            f" {base_url!r}. Put parameters into the steps' 'query'.",
        )


def _headers(problems: _Problems, lines: Iterable[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        found = HEADER_LINE.fullmatch(line)
        if found is None or not found.group(1):
            problems.add(
                "headers",
                f"A header must look like Name: value, such as Accept:"
                f" application/json; got {line.strip()!r}.",
            )
            continue
        name, value = found.groups()
        if not _check_header(problems, name, value):
            continue
        if name.lower() in seen:
            problems.add("headers", f"The header {name!r} is given twice.")
            continue
        seen.add(name.lower())
        headers[name] = value
    return headers


def _check_header(problems: _Problems, name: str, value: str) -> bool:
    if HEADER_NAME.fullmatch(name) is None:
        problems.add("headers", _bad_header_name(name))
        return False
    if "\r" in value or "\n" in value:
        problems.add("headers", f"The value of the header {name!r} has a line break.")
        return False
    return True


def _bad_header_name(name: str) -> str:
    return (
        f"{name!r} is not a valid HTTP header name: use letters, digits and"
        " '-', such as X-API-Key."
    )


def _auth(
    problems: _Problems,
    kind: str,
    secret: str,
    *,
    username: str,
    location: str,
    param_name: str,
    strict: bool,
) -> dict[str, Any] | None:
    if kind not in AUTH_CHOICES:
        problems.add(
            "auth",
            f"Unknown authentication {kind!r}; expected one of"
            f" {', '.join(AUTH_CHOICES)}.",
        )
        return None
    auth = None
    if kind != NO_AUTH:
        auth = _credentials(problems, kind, secret, username, location, param_name)
    if strict:
        _refuse_unused(problems, kind, secret, username, location, param_name)
    return auth


def _credentials(
    problems: _Problems,
    kind: str,
    secret: str,
    username: str,
    location: str,
    param_name: str,
) -> dict[str, Any]:
    if not secret:
        problems.add(
            "secret",
            f"{KIND_NAMES[kind]} authentication needs the name of the secret"
            f" that holds its {CREDENTIALS[kind]}.",
        )
    else:
        try:
            check_secret_name(secret)
        except FlowdeskError as error:
            problems.add("secret", error.message)
    auth: dict[str, Any] = {"kind": kind, "secret": secret}

    if kind == "basic":
        if not username:
            problems.add("username", "Basic authentication needs a user name.")
        auth["username"] = username
    if kind == "api_key":
        location = location or "header"
        if location not in KEY_LOCATIONS:
            problems.add(
                "location",
                f"An API key goes in the 'header' or the 'query', got {location!r}.",
            )
            return auth
        name = param_name or DEFAULT_KEY_NAMES[location]
        if location == "header" and HEADER_NAME.fullmatch(name) is None:
            problems.add("param_name", _bad_header_name(name))
        auth.update(location=location, param_name=name)
    return auth


def _refuse_unused(
    problems: _Problems,
    kind: str,
    secret: str,
    username: str,
    location: str,
    param_name: str,
) -> None:
    given = {
        "secret": (secret, AUTH_KINDS, "A secret"),
        "username": (username, ("basic",), "A user name"),
        "location": (location, ("api_key",), "A key location"),
        "param_name": (param_name, ("api_key",), "A key parameter name"),
    }
    for field, (value, kinds, what) in given.items():
        if value and kind not in kinds:
            users = ", ".join(kinds[:-1]) + " or " if len(kinds) > 1 else ""
            problems.add(
                field,
                f"{what} is used only by {users}{kinds[-1]} authentication,"
                f" and this connection's is {kind}.",
            )
