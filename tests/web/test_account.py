"""The account page: any signed-in user sees who they are and changes their
own password; the change ends their other sessions and renews this one."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from flowdesk.auth.users import authenticate
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.auth import SESSION_COOKIE
from tests.support.interactive import (
    PASSWORD,
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in,
)

NEW_PASSWORD = "a-new-password"


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "alice", ("flow:run",), ("finance", "sales"))
    add_user(system, "nobody", ())
    return create_app(system)


@pytest.fixture
def alice(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "alice")
        yield client


def change(client: TestClient, current: str, new: str, repeated: str) -> httpx.Response:
    token = csrf_token(client.get("/account").text)
    return client.post(
        "/account/password",
        data={
            "_csrf": token,
            "current_password": current,
            "new_password": new,
            "repeated_password": repeated,
        },
    )


def test_account_page_shows_name_scopes_and_groups(alice: TestClient) -> None:
    page = alice.get("/account")

    assert page.status_code == 200
    assert "alice" in page.text
    assert "Flow Run (<code>flow:run</code>)" in page.text
    assert "finance, sales" in page.text
    assert '<label for="repeated-password">New password again</label>' in page.text


def test_account_link_is_in_the_navigation_for_everyone(app: FastAPI) -> None:
    with TestClient(app) as client:
        sign_in(client, "nobody")
        page = client.get("/account")

    assert page.status_code == 200
    assert 'href="/account" aria-current="page"' in page.text
    assert "none; ask an administrator for access" in page.text


def test_account_password_change_renews_this_session_and_ends_others(
    app: FastAPI, alice: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(app, follow_redirects=False) as other:
        sign_in(other, "alice")
        before = alice.cookies[SESSION_COOKIE]

        with caplog.at_level(logging.INFO):
            response = change(alice, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)

        assert response.status_code == 303
        assert response.headers["location"] == "/account?done=password"
        assert alice.cookies[SESSION_COOKIE] != before
        assert (
            "your other sessions have ended"
            in alice.get(response.headers["location"]).text
        )
        assert other.get("/account").status_code == 303
    assert "user alice changed their own password" in caplog.messages


@pytest.mark.parametrize(
    ("current", "new", "repeated", "message"),
    [
        ("wrong-password", NEW_PASSWORD, NEW_PASSWORD, "current password is not right"),
        (PASSWORD, NEW_PASSWORD, "another-password", "its repetition differ"),
        (PASSWORD, "short", "short", "at least 8 characters"),
    ],
)
def test_account_password_change_refused_keeps_the_old_password(
    alice: TestClient, current: str, new: str, repeated: str, message: str
) -> None:
    response = change(alice, current, new, repeated)

    assert response.status_code == 422
    assert message in response.text
    assert alice.get("/account").status_code == 200


def test_account_password_change_needs_the_csrf_token(alice: TestClient) -> None:
    response = alice.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeated_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 403


def test_account_wrong_current_passwords_are_throttled_like_sign_ins(
    alice: TestClient, system: System
) -> None:
    failures = system.settings.sign_in_account_failures
    for _ in range(failures):
        assert change(alice, "wrong", NEW_PASSWORD, NEW_PASSWORD).status_code == 422

    refused = change(alice, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many wrong passwords" in refused.text
    # The password stayed as it was, and the session goes on.
    assert alice.get("/account").status_code == 200
    with system.db.transaction() as session:
        assert authenticate(session, "alice", PASSWORD) is not None
