"""The connections pages at /connections over HTTP: the list with its secret
flags, New connection, editing and deleting after confirming, each field's
message beside it, the CSRF check and who gets in; and a connection made here
serving a real `http` step."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from flowdesk.db.models import Connection as ConnectionRow
from flowdesk.flows.definition import bundled_examples, load_file
from flowdesk.flows.service import apply_definition
from flowdesk.secrets.connections import list_connections
from flowdesk.secrets.store import secret_box, set_secret
from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.http_api import ApiServer, serve_api
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    run_id_of,
    sign_in,
    wait_until_finished,
)

TOKEN = "tok-51d7-never-on-a-page"


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    add_user(system, "dev", ("flow:run", "flow:edit"))
    add_user(system, "runner", ("flow:run",))
    add_user(system, "root", ("admin",))
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "dev")
        yield test_client


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with serve_api() as server:
        yield server


def stored(system: System) -> dict[str, ConnectionRow]:
    with system.db.reading() as session:
        return {row.name: row for row in list_connections(session)}


def set_token(system: System, name: str = "CRM_TOKEN") -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), name, TOKEN)


def post_new(client: TestClient, **fields: str) -> tuple[int, str, str]:
    """Send the New connection form; its status, redirect and page."""
    token = csrf_token(client.get("/connections/new").text)
    response = client.post(
        "/connections", data={"_csrf": token, **fields}, follow_redirects=False
    )
    return response.status_code, response.headers.get("location", ""), response.text


def field_errors(page: str, field_id: str) -> list[str]:
    """The messages shown beside the field `field_id`."""
    hidden = '<span class="visually-hidden">Error: </span>'
    return re.findall(rf'id="{field_id}-error\d+">{hidden}([^<]*)<', page)


# The list


def test_connections_page_lists_each_connection_and_flags_a_missing_secret(
    client: TestClient, system: System
) -> None:
    set_token(system)
    post_new(
        client,
        name="crm",
        base_url="https://crm.example.com/api",
        headers="Accept: application/json",
        auth="bearer",
        secret="CRM_TOKEN",
    )
    post_new(
        client,
        name="shop",
        base_url="https://shop.example",
        auth="api_key",
        secret="SHOP_KEY",
    )

    page = client.get("/connections").text

    crm, shop = re.findall(r'<tr data-connection="[^"]+">.*?</tr>', page, re.S)
    assert "<code>crm</code>" in crm and "https://crm.example.com/api" in crm
    assert "Headers: Accept" in crm and "Bearer token" in crm
    assert "<code>CRM_TOKEN</code>" in crm and ">set</span>" in crm
    assert "API key" in shop and "<code>SHOP_KEY</code>" in shop
    assert ">not set</span>" in shop
    assert "flowdesk secrets set SHOP_KEY" in shop
    assert TOKEN not in page
    assert 'href="/connections" aria-current="page"' in page


def test_connections_page_is_linked_from_the_editor_area(client: TestClient) -> None:
    flows = client.get("/flows").text

    assert '<a href="/connections">Connections</a>' in flows


# New connection


def test_new_connection_is_stored_and_announced(
    client: TestClient, system: System
) -> None:
    status, location, _page = post_new(
        client,
        name="crm",
        base_url="https://crm.example.com/api",
        headers="Accept: application/json\r\n\r\nX-Source=flowdesk",
        auth="basic",
        secret="CRM_PASSWORD",
        username="robot",
        # Left over from choosing API key first: an unused field is left aside.
        param_name="X-Key",
    )

    assert (status, location) == (303, "/connections?saved=crm")
    row = stored(system)["crm"]
    assert row.base_url == "https://crm.example.com/api"
    assert row.headers == {"Accept": "application/json", "X-Source": "flowdesk"}
    assert row.auth == {"kind": "basic", "secret": "CRM_PASSWORD", "username": "robot"}
    assert "The connection crm was saved." in client.get(location).text


def test_new_connection_shows_each_problem_beside_its_field_and_keeps_the_input(
    client: TestClient, system: System
) -> None:
    status, _location, page = post_new(
        client,
        name="crm",
        base_url="crm.example.com",
        headers="Accept: text/csv\nBad Header: 1",
        auth="bearer",
        secret="",
    )

    assert status == 422
    assert field_errors(page, "connection-base-url") == [
        "A connection&#39;s base URL must be an http:// or https:// address with a"
        " host, such as https://api.example.com/v1; got &#39;crm.example.com&#39;."
    ]
    assert field_errors(page, "connection-headers") == [
        "&#39;Bad Header&#39; is not a valid HTTP header name: use letters, digits"
        " and &#39;-&#39;, such as X-API-Key."
    ]
    assert field_errors(page, "connection-secret") == [
        "Bearer authentication needs the name of the secret that holds its token."
    ]
    assert field_errors(page, "connection-name") == []
    assert 'aria-describedby="connection-base-url-hint connection-base-url-error1"' in (
        page
    )
    assert 'value="crm.example.com"' in page and 'value="crm"' in page
    assert ">Accept: text/csv\nBad Header: 1</textarea>" in page
    assert '<option value="bearer" selected>' in page
    assert stored(system) == {}


def test_new_connection_refuses_an_unknown_authentication_kind(
    client: TestClient, system: System
) -> None:
    status, _location, page = post_new(
        client, name="crm", base_url="https://crm.example", auth="oauth"
    )

    assert status == 422
    assert field_errors(page, "connection-auth") == [
        "Unknown authentication &#39;oauth&#39;; expected one of none, bearer,"
        " basic, api_key."
    ]
    assert stored(system) == {}


def test_new_connection_refuses_a_name_in_use(
    client: TestClient, system: System
) -> None:
    post_new(client, name="crm", base_url="https://a.example")

    status, _location, page = post_new(client, name="crm", base_url="https://b.example")

    assert status == 422
    assert field_errors(page, "connection-name") == [
        "A connection named &#39;crm&#39; exists already; choose another name or"
        " edit that one."
    ]
    assert stored(system)["crm"].base_url == "https://a.example"


def test_new_connection_allows_a_secret_that_is_not_set_yet(
    client: TestClient, system: System
) -> None:
    status, _location, _page = post_new(
        client, name="crm", base_url="https://a.example", auth="bearer", secret="LATER"
    )

    assert status == 303
    assert stored(system)["crm"].auth == {"kind": "bearer", "secret": "LATER"}


# Editing


def test_edit_page_shows_the_settings_and_saves_changes(
    client: TestClient, system: System
) -> None:
    post_new(
        client,
        name="shop",
        base_url="https://shop.example",
        headers="Accept: text/csv",
        auth="api_key",
        secret="SHOP_KEY",
        location="query",
        param_name="key",
    )

    page = client.get("/connections/shop/edit").text
    response = client.post(
        "/connections/shop/edit",
        data={
            "_csrf": csrf_token(page),
            "name": "renamed",  # the name is not a field here; a stray one is ignored
            "base_url": "https://shop.example/v2",
            "headers": "",
            "auth": "bearer",
            "secret": "SHOP_KEY",
        },
        follow_redirects=False,
    )

    assert 'value="https://shop.example"' in page
    assert ">Accept: text/csv</textarea>" in page
    assert '<option value="api_key" selected>' in page
    assert '<option value="query" selected>' in page and 'value="key"' in page
    assert 'name="name"' not in page
    assert response.status_code == 303
    assert list(stored(system)) == ["shop"]
    row = stored(system)["shop"]
    assert (row.base_url, row.headers) == ("https://shop.example/v2", {})
    assert row.auth == {"kind": "bearer", "secret": "SHOP_KEY"}


def test_edit_page_keeps_the_input_on_a_problem(
    client: TestClient, system: System
) -> None:
    post_new(client, name="shop", base_url="https://shop.example")
    token = csrf_token(client.get("/connections/shop/edit").text)

    response = client.post(
        "/connections/shop/edit",
        data={
            "_csrf": token,
            "base_url": "ftp://files.example",
            "auth": "basic",
            "secret": "PW",
        },
    )

    assert response.status_code == 422
    assert "ftp://files.example" in response.text
    assert field_errors(response.text, "connection-username") == [
        "Basic authentication needs a user name."
    ]
    assert stored(system)["shop"].base_url == "https://shop.example"


def test_edit_page_of_an_unknown_connection_is_not_found(client: TestClient) -> None:
    assert client.get("/connections/nothing/edit").status_code == 404


# Deleting


def test_connection_is_deleted_after_confirmation(
    client: TestClient, system: System
) -> None:
    post_new(client, name="crm", base_url="https://a.example")

    confirm = client.get("/connections/crm/delete")
    assert confirm.status_code == 200
    assert "Delete the connection crm?" in confirm.text
    assert "crm" in stored(system)  # asking changes nothing

    response = client.post(
        "/connections/crm/delete",
        data={"_csrf": csrf_token(confirm.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert stored(system) == {}
    page = client.get(response.headers["location"]).text
    assert "The connection crm was deleted." in page
    assert "No connections yet" in page


# CSRF and scopes


def test_connection_forms_refuse_a_post_without_the_csrf_token(
    client: TestClient, system: System
) -> None:
    post_new(client, name="crm", base_url="https://a.example")

    created = client.post("/connections", data={"name": "x", "base_url": "https://x"})
    edited = client.post("/connections/crm/edit", data={"base_url": "https://b.x"})
    deleted = client.post("/connections/crm/delete", data={})

    assert [created.status_code, edited.status_code, deleted.status_code] == [403] * 3
    assert list(stored(system)) == ["crm"]
    assert stored(system)["crm"].base_url == "https://a.example"


@pytest.mark.parametrize("username", ["runner", "root"])
def test_connections_pages_are_for_flow_developers(
    client: TestClient, username: str
) -> None:
    sign_in(client, username)

    for url in ("/connections", "/connections/new"):
        page = client.get(url)
        assert page.status_code == 403
        assert "flow:edit" in page.text
    assert 'href="/connections"' not in client.get("/interactive-flows").text


# A connection made here, used by a run


def test_connection_made_on_the_page_serves_the_api_report_example(
    client: TestClient, system: System, api: ApiServer
) -> None:
    # The bundled example the issue names: HTTP through a connection with a
    # secret, figures in Python, an HTML report, launched from its form.
    [path] = [path for path in bundled_examples() if path.stem == "api-report"]
    with system.db.transaction() as session:
        apply_definition(session, load_file(path), path.read_text(), "tests")
    set_token(system, "REPORT_TOKEN")
    status, _location, _page = post_new(
        client,
        name="local-api",
        base_url=api.url,
        auth="bearer",
        secret="REPORT_TOKEN",
    )
    assert status == 303

    form = client.get("/interactive-flows/api-report").text
    response = client.post(
        "/interactive-flows/api-report/runs",
        data={
            "_csrf": csrf_token(form),
            "connection": "local-api",
            "endpoint": "/echo",
            "samples": "2",
        },
        follow_redirects=False,
    )
    run_id = run_id_of(response.headers["location"])
    run = wait_until_finished(system, run_id, timeout=30)
    result = client.get(f"/runs/{run_id}/result").text

    assert run.state == "succeeded", run.error
    assert [seen["headers"]["authorization"] for seen in api.requests] == [
        f"Bearer {TOKEN}"
    ] * 2
    assert "API report: /echo" in result
    assert "2 of 2 calls succeeded" in result, result
    # The echoed request carried the token; the report shows it masked.
    assert "Bearer ***" in result
    assert TOKEN not in result and TOKEN not in client.get(f"/runs/{run_id}").text
