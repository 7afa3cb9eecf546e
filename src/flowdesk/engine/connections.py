"""Connections as the engine sees them: a base URL, default headers and the
authentication an `http` step applies when it names the connection.

Credentials are never stored here, only the names of the secrets that hold them;
the step reads the values from the run's secrets when it sends a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

AuthKind = Literal["bearer", "basic", "api_key"]
KeyLocation = Literal["header", "query"]

AUTH_KINDS: tuple[AuthKind, ...] = ("bearer", "basic", "api_key")
KEY_LOCATIONS: tuple[KeyLocation, ...] = ("header", "query")


@dataclass(frozen=True)
class Authentication:
    """How a connection proves who it is.

    `bearer`: `Authorization: Bearer <secret>`; `basic`: `username` and the
    secret as password; `api_key`: the secret under `param_name`, in a header or
    in the query string (`location`).
    """

    kind: AuthKind
    secret: str
    username: str | None = None
    location: KeyLocation = "header"
    param_name: str | None = None


@dataclass(frozen=True)
class Connection:
    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Authentication | None = None
