"""Connections: checked when stored, credentials only as secret names, and
turned into what the engine's http step applies."""

from __future__ import annotations

from typing import Any

import pytest

from flowdesk.engine.connections import Authentication, Connection
from flowdesk.errors import FlowdeskError
from flowdesk.secrets.connections import (
    build_auth,
    delete_connection,
    describe_auth,
    list_connections,
    load_connections,
    set_connection,
)
from flowdesk.system import System


def test_connection_round_trips_to_the_engine(system: System) -> None:
    auth = build_auth("api_key", "SHOP_KEY", location="query", param_name="key")
    with system.db.transaction() as session:
        created = set_connection(
            session, "shop", "https://shop.example/api", {"Accept": "text/csv"}, auth
        )
    assert created is True

    with system.db.reading() as session:
        assert load_connections(session) == {
            "shop": Connection(
                "shop",
                "https://shop.example/api",
                {"Accept": "text/csv"},
                Authentication(
                    "api_key", "SHOP_KEY", location="query", param_name="key"
                ),
            )
        }


def test_connection_set_again_replaces_it(system: System) -> None:
    with system.db.transaction() as session:
        set_connection(session, "shop", "https://a.example", {}, None)
    with system.db.transaction() as session:
        again = set_connection(
            session, "shop", "https://b.example", {}, build_auth("bearer", "T")
        )

    assert again is False
    with system.db.reading() as session:
        [row] = list_connections(session)
        assert row.base_url == "https://b.example"
        assert describe_auth(row.auth) == "bearer, secret T"
    with system.db.transaction() as session:
        delete_connection(session, "shop")
        assert list_connections(session) == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"kind": "bearer", "secret": None}, "needs --secret NAME"),
        ({"kind": "basic", "secret": "PW"}, "needs --username"),
        ({"kind": "oauth", "secret": "T"}, "Unknown authentication 'oauth'"),
        ({"kind": "api_key", "secret": "K", "location": "body"}, "'header' or 'query'"),
        ({"kind": "bearer", "secret": "T", "param_name": "x"}, "api_key only"),
        ({"kind": "none", "secret": "T"}, "need --auth"),
        ({"kind": "bearer", "secret": "not-a-name"}, "secret's name must be"),
    ],
)
def test_build_auth_refuses_what_cannot_work(
    arguments: dict[str, Any], problem: str
) -> None:
    kind, secret = arguments.pop("kind"), arguments.pop("secret")

    with pytest.raises(FlowdeskError, match=problem):
        build_auth(kind, secret, **arguments)


@pytest.mark.parametrize(
    ("name", "base_url", "headers", "problem"),
    [
        ("shop api", "https://x", {}, "A connection's name"),
        ("shop", "ftp://x", {}, "http:// or https://"),
        ("shop", "https://x/?page=1", {}, "may not have a query"),
        ("shop", "https://x", {"Bad Header": "1"}, "not a valid HTTP header"),
        ("shop", "https://x", {"X-A": "1\r\nX-B: 2"}, "has a line break"),
    ],
)
def test_set_connection_refuses_bad_settings(
    system: System, name: str, base_url: str, headers: dict[str, str], problem: str
) -> None:
    with (
        system.db.transaction() as session,
        pytest.raises(FlowdeskError, match=problem),
    ):
        set_connection(session, name, base_url, headers, None)
