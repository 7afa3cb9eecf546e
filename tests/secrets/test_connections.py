"""Connections: checked when stored, credentials only as secret names, and
turned into what the engine's http step applies."""

from __future__ import annotations

from typing import Any

import pytest

from flowdesk.engine.connections import Authentication, Connection
from flowdesk.errors import FlowdeskError, InputError, NotFound
from flowdesk.secrets.connections import (
    ConnectionForm,
    SecretUse,
    build_auth,
    check_connection,
    connection_listing,
    create_connection,
    delete_connection,
    describe_auth,
    form_of,
    list_connections,
    load_connections,
    set_connection,
    update_connection,
)
from flowdesk.secrets.store import secret_box, set_secret
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
        ({"kind": "bearer", "secret": None}, "needs the name of the secret"),
        ({"kind": "basic", "secret": "PW"}, "needs a user name"),
        ({"kind": "oauth", "secret": "T"}, "Unknown authentication 'oauth'"),
        (
            {"kind": "api_key", "secret": "K", "location": "body"},
            "'header' or the 'query', got 'body'",
        ),
        (
            {"kind": "bearer", "secret": "T", "param_name": "x"},
            "used only by api_key authentication",
        ),
        (
            {"kind": "none", "secret": "T"},
            "used only by bearer, basic or api_key authentication",
        ),
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


def test_check_connection_names_every_bad_field_at_once() -> None:
    form = ConnectionForm(
        name="shop api",
        base_url="shop.example",
        headers=("Accept", "Bad Header: 1"),
        auth="basic",
    )

    with pytest.raises(InputError) as refusal:
        check_connection(form, strict=False)

    assert [(error.field, error.message) for error in refusal.value.errors] == [
        (
            "name",
            "A connection's name must be letters, digits, '.', '_' and '-', starting"
            " with a letter or digit, at most 100 characters; got 'shop api'.",
        ),
        (
            "base_url",
            "A connection's base URL must be an http:// or https:// address with a"
            " host, such as https://api.example.com/v1; got 'shop.example'.",
        ),
        (
            "headers",
            "A header must look like Name: value, such as Accept: application/json;"
            " got 'Accept'.",
        ),
        (
            "headers",
            "'Bad Header' is not a valid HTTP header name: use letters, digits and"
            " '-', such as X-API-Key.",
        ),
        (
            "secret",
            "Basic authentication needs the name of the secret that holds its"
            " password.",
        ),
        ("username", "Basic authentication needs a user name."),
    ]


def test_check_connection_reads_headers_written_either_way() -> None:
    form = ConnectionForm(
        name="shop",
        base_url="https://shop.example",
        headers=("Accept: text/csv", "", "X-Query=a:b=c", "  X-Empty:  "),
    )

    checked = check_connection(form, strict=True)

    assert checked.headers == {"Accept": "text/csv", "X-Query": "a:b=c", "X-Empty": ""}


def test_check_connection_refuses_a_header_given_twice() -> None:
    form = ConnectionForm(
        name="shop", base_url="https://x.example", headers=("Accept: a", "accept: b")
    )

    with pytest.raises(InputError, match="The header 'accept' is given twice"):
        check_connection(form, strict=False)


def test_check_connection_leaves_unused_fields_aside_unless_strict() -> None:
    form = ConnectionForm(
        name="shop",
        base_url="https://x.example",
        auth="bearer",
        secret="SHOP_TOKEN",
        username="left over from basic",
        param_name="X-Key",
    )

    lenient = check_connection(form, strict=False)
    with pytest.raises(InputError) as refusal:
        check_connection(form, strict=True)

    assert lenient.auth == {"kind": "bearer", "secret": "SHOP_TOKEN"}
    assert [error.field for error in refusal.value.errors] == ["username", "param_name"]


def test_create_connection_refuses_a_name_in_use(system: System) -> None:
    form = ConnectionForm(name="shop", base_url="https://x.example")
    with system.db.transaction() as session:
        create_connection(session, form)

    with system.db.transaction() as session, pytest.raises(InputError) as refusal:
        create_connection(session, form)

    [error] = refusal.value.errors
    assert error.field == "name"
    assert "A connection named 'shop' exists already" in error.message


def test_update_connection_keeps_the_name_and_needs_the_connection(
    system: System,
) -> None:
    with system.db.transaction() as session:
        create_connection(session, ConnectionForm(name="shop", base_url="https://a.x"))
        update_connection(
            session,
            "shop",
            ConnectionForm(
                name="renamed",
                base_url="https://b.x",
                auth="api_key",
                secret="KEY",
                location="query",
            ),
        )

    with system.db.reading() as session:
        [row] = list_connections(session)
        assert (row.name, row.base_url) == ("shop", "https://b.x")
        assert describe_auth(row.auth) == "api_key in query api_key, secret KEY"
        assert form_of(row).param_name == "api_key"
    with system.db.transaction() as session, pytest.raises(NotFound):
        update_connection(session, "gone", ConnectionForm(base_url="https://b.x"))


def test_connection_listing_flags_a_secret_that_is_not_set(system: System) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "SET_TOKEN", "value-1234")
        for name, secret in (("a", "SET_TOKEN"), ("b", "MISSING_TOKEN")):
            set_connection(
                session, name, "https://x.example", {}, build_auth("bearer", secret)
            )
        set_connection(session, "c", "https://x.example", {"Accept": "x"}, None)

    with system.db.reading() as session:
        listing = connection_listing(session)

    assert [(item.name, item.auth_label, item.secrets) for item in listing] == [
        ("a", "Bearer token", (SecretUse("SET_TOKEN", True),)),
        ("b", "Bearer token", (SecretUse("MISSING_TOKEN", False),)),
        ("c", "None", ()),
    ]
    assert listing[1].missing_secrets == ["MISSING_TOKEN"]
