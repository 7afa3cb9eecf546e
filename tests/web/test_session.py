"""Signing in and out, where a visitor lands afterwards, the health check and
the error pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi import FastAPI

from flowdesk.auth.users import create_user
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.auth import SESSION_COOKIE
from tests.support.interactive import TestClient, cheap_password_hashing, sign_in_form

PASSWORD = "a-password-for-tests"
HOME = "/interactive-flows"


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    with system.db.transaction() as session:
        create_user(session, "alice", PASSWORD, ["flow:run"])
        create_user(session, "root", PASSWORD, ["admin"])
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, username: str = "alice", next: str = "/") -> None:
    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": username,
            "password": PASSWORD,
            "next": next,
        },
    )
    assert response.status_code == 303, response.text


def csrf_token(client: TestClient) -> str:
    # Every page a signed-in user sees carries the sign-out form and its token.
    page = client.get("/no-such-page", headers={"accept": "text/html"})
    found = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def test_session_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_session_front_door_leads_to_interactive_flows(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 303
    assert response.headers["location"] == HOME


def test_session_signed_out_visitor_is_sent_to_login_with_the_full_url(
    client: TestClient,
) -> None:
    response = client.get("/interactive-flows?q=sales&tag=a%20b")

    assert response.status_code == 303
    expected = quote("/interactive-flows?q=sales&tag=a%20b", safe="")
    assert response.headers["location"] == f"/login?next={expected}"


def test_session_login_page_has_labelled_fields_and_keeps_next(
    client: TestClient,
) -> None:
    response = client.get("/login", params={"next": "/runs/abc?x=1"})

    assert response.status_code == 200
    assert '<label for="username">' in response.text
    assert '<label for="password">' in response.text
    assert 'name="next" value="/runs/abc?x=1"' in response.text


def test_session_sign_in_returns_to_next_with_a_safe_cookie(
    client: TestClient,
) -> None:
    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": "alice",
            "password": PASSWORD,
            "next": "/interactive-flows/order?customer=ACME&start_flow=true",
        },
    )

    assert response.status_code == 303
    assert (
        response.headers["location"]
        == "/interactive-flows/order?customer=ACME&start_flow=true"
    )
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_session_wrong_password_shows_the_form_again(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": "alice",
            "password": "wrong",
            "next": "/runs/1",
        },
    )

    assert response.status_code == 401
    assert "The user name or password is not right." in response.text
    assert 'value="alice"' in response.text
    assert 'name="next" value="/runs/1"' in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
    ],
)
def test_session_sign_in_never_leaves_the_site(client: TestClient, target: str) -> None:
    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": "alice",
            "password": PASSWORD,
            "next": target,
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == HOME


def test_session_signed_in_visit_of_login_goes_on_to_next(client: TestClient) -> None:
    sign_in(client)

    response = client.get("/login", params={"next": "/runs/abc"})

    assert response.status_code == 303
    assert response.headers["location"] == "/runs/abc"


def test_session_sign_in_from_another_site_is_refused(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={**sign_in_form(client), "username": "alice", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_session_sign_out_ends_the_session(client: TestClient) -> None:
    sign_in(client)
    old_cookie = client.cookies[SESSION_COOKIE]

    response = client.post("/logout", data={"_csrf": csrf_token(client)})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    client.cookies.set(SESSION_COOKIE, old_cookie)
    assert client.get(HOME).headers["location"].startswith("/login?next=")


def test_session_sign_out_without_the_form_token_is_refused(
    client: TestClient,
) -> None:
    sign_in(client)

    response = client.post("/logout", data={"_csrf": "forged"})

    assert response.status_code == 403
    assert client.get("/healthz").status_code == 200
    assert "Sign out" in client.get("/nothing-here").text


def test_session_sign_out_works_for_a_user_without_flow_scopes(
    client: TestClient,
) -> None:
    sign_in(client, "root")

    response = client.post("/logout", data={"_csrf": csrf_token(client)})

    assert response.status_code == 303


def test_session_unknown_page_is_a_friendly_404(client: TestClient) -> None:
    response = client.get("/no/such/page", headers={"accept": "text/html"})

    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Page not found" in response.text
    assert "There is nothing at this address" in response.text


def test_session_unknown_api_address_answers_json(client: TestClient) -> None:
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert "error" in response.json()


def test_session_unexpected_error_is_a_friendly_500(app: FastAPI) -> None:
    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode", headers={"accept": "text/html"})

    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_session_pages_carry_security_headers(client: TestClient) -> None:
    response = client.get("/login")

    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
