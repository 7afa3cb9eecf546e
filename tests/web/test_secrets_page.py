"""The administrators' secrets page at /admin/secrets: names and times, setting
a value through a password field, deleting after confirming; values never come
back, and only administrators get in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowdesk.secrets.store import load_secrets, secret_box, set_secret
from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in,
)

VALUE = "page-value-never-shown"


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    add_user(system, "root", ("flow:run", "admin"))
    add_user(system, "dev", ("flow:run", "flow:edit"))
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "root")
        yield test_client


def stored(system: System) -> dict[str, str]:
    with system.db.reading() as session:
        return load_secrets(session, system.settings)


def test_secrets_page_lists_names_but_never_values(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "SHOP_TOKEN", VALUE)

    page = client.get("/admin/secrets")

    assert page.status_code == 200
    assert "<code>SHOP_TOKEN</code>" in page.text
    assert VALUE not in page.text
    assert 'name="value" type="password"' in page.text
    assert 'href="/admin/secrets"' in page.text and 'aria-current="page"' in page.text


def test_secrets_page_sets_a_secret(client: TestClient, system: System) -> None:
    token = csrf_token(client.get("/admin/secrets").text)

    response = client.post(
        "/admin/secrets",
        data={"_csrf": token, "name": "NEW_KEY", "value": VALUE},
        follow_redirects=False,
    )
    page = client.get(response.headers["location"])

    assert response.status_code == 303
    assert stored(system) == {"NEW_KEY": VALUE}
    assert "The secret NEW_KEY was saved." in page.text
    assert VALUE not in page.text


def test_secrets_page_keeps_the_name_but_not_the_value_on_an_error(
    client: TestClient, system: System
) -> None:
    token = csrf_token(client.get("/admin/secrets").text)

    response = client.post(
        "/admin/secrets", data={"_csrf": token, "name": "bad name", "value": VALUE}
    )

    assert response.status_code == 422
    assert "A secret&#39;s name must be letters" in response.text
    assert 'value="bad name"' in response.text
    assert VALUE not in response.text
    assert stored(system) == {}


def test_secrets_page_refuses_a_post_without_the_csrf_token(
    client: TestClient, system: System
) -> None:
    response = client.post("/admin/secrets", data={"name": "X_KEY", "value": VALUE})

    assert response.status_code == 403
    assert stored(system) == {}


def test_secrets_page_deletes_after_confirmation(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        set_secret(session, secret_box(system.settings), "OLD_KEY", VALUE)

    confirm = client.get("/admin/secrets/OLD_KEY/delete")
    assert confirm.status_code == 200
    assert "Delete the secret OLD_KEY?" in confirm.text
    assert stored(system) == {"OLD_KEY": VALUE}  # asking changes nothing

    response = client.post(
        "/admin/secrets/OLD_KEY/delete",
        data={"_csrf": csrf_token(confirm.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert stored(system) == {}
    assert (
        "The secret OLD_KEY was deleted."
        in client.get(response.headers["location"]).text
    )


def test_secrets_page_is_for_administrators_only(client: TestClient) -> None:
    sign_in(client, "dev")

    page = client.get("/admin/secrets")

    assert page.status_code == 403
    assert "admin" in page.text
    assert 'href="/admin/secrets"' not in client.get("/interactive-flows").text
