"""Signing in as an attacker would try it: where `next` may lead, throttling of
repeated failures, unknown users treated like wrong passwords, fixation, the
cookie's flags, and the ends of a session."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import func, select, update

from flowdesk.auth import passwords
from flowdesk.auth.signin_form import FORM_LIFETIME, issue_form_token
from flowdesk.auth.users import disable_user, get_user, set_password
from flowdesk.db.models import SignInFailure, WebSession
from flowdesk.db.types import utcnow
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from flowdesk.web.app import create_app
from flowdesk.web.auth import SESSION_COOKIE
from flowdesk.web.routes.session import (
    HOME,
    SIGN_IN_COOKIE,
    SIGN_IN_FIELD,
    safe_next,
)
from tests.conftest import make_settings
from tests.support.interactive import (
    PASSWORD,
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in_fields_of,
    sign_in_form,
)

FOREIGN_TARGETS = [
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "\\/\\/evil.com",
    "\\\\evil.com",
    "https://evil.com",
    "http:evil.com",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%252F%252Fevil.com",
    "/%5Cevil.com",
    "/%09/evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    " //evil.com",
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "evil.com",
    "",
]
SIGN_IN_TOKEN = re.compile(r'(?<=name="_sign_in" value=")[^"]+')
LOCAL_TARGETS = [
    "/runs/abc?x=1",
    "/interactive-flows/order?customer=ACME%20GmbH&start_flow=true",
    "/interactive-flows?q=a%2Fb",
    "/flows/order-report#settings",
]


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "alice")
    add_user(system, "bob")
    add_user(system, "root", ("admin",))
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def attempt(
    client: TestClient, username: str, password: str = PASSWORD, next: str = "/"
) -> int:
    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": username,
            "password": password,
            "next": next,
        },
    )
    return response.status_code


def page_text(html: str, username: str) -> str:
    """The page without the name typed and the fresh sign-in form token."""
    return SIGN_IN_TOKEN.sub("TOKEN", html.replace(username, "NAME"))


def is_signed_in(client: TestClient) -> bool:
    return client.get(HOME).status_code == 200


# Where `next` may lead


@pytest.mark.parametrize("target", FOREIGN_TARGETS)
def test_sign_in_next_to_another_site_falls_back_home(
    client: TestClient, target: str
) -> None:
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


@pytest.mark.parametrize("target", FOREIGN_TARGETS)
def test_sign_in_page_never_offers_a_foreign_next(
    client: TestClient, target: str
) -> None:
    page = client.get("/login", params={"next": target})

    assert f'name="next" value="{HOME}"' in page.text


@pytest.mark.parametrize("target", LOCAL_TARGETS)
def test_sign_in_next_on_this_site_is_kept_whole(
    client: TestClient, target: str
) -> None:
    assert safe_next(target) == target

    response = client.post(
        "/login",
        data={
            **sign_in_form(client),
            "username": "alice",
            "password": PASSWORD,
            "next": target,
        },
    )

    assert response.headers["location"] == target


def test_sign_in_signed_in_visit_with_a_foreign_next_stays_here(
    client: TestClient,
) -> None:
    attempt(client, "alice")

    response = client.get("/login", params={"next": "/%2F%2Fevil.com"})

    assert response.status_code == 303
    assert response.headers["location"] == HOME


# Unknown users and wrong passwords


def test_sign_in_unknown_user_gets_the_answer_of_a_wrong_password(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(password))
            return super().verify(hash, password)

    counting = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", counting)

    wrong = client.post(
        "/login",
        data={**sign_in_form(client), "username": "alice", "password": "nope-1"},
    )
    unknown = client.post(
        "/login",
        data={**sign_in_form(client), "username": "alicia", "password": "nope-2"},
    )

    assert wrong.status_code == unknown.status_code == 401
    assert page_text(wrong.text, "alice") == page_text(unknown.text, "alicia")
    # Both cost one argon2 verification: the same time, whoever asks.
    assert verified == ["nope-1", "nope-2"]


def test_sign_in_disabled_user_gets_the_answer_of_a_wrong_password(
    client: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        disable_user(session, get_user(session, "bob"))

    response = client.post(
        "/login", data={**sign_in_form(client), "username": "bob", "password": PASSWORD}
    )

    assert response.status_code == 401
    assert "The user name or password is not right." in response.text


def test_sign_in_logs_one_line_per_attempt_without_the_password(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flowdesk")

    attempt(client, "alice", "wrong-password")
    attempt(client, "alice")

    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "flowdesk.auth.signin"
    ]
    assert lines == [
        "failed sign-in for 'alice' from testclient",
        "user alice signed in from testclient",
    ]
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)
    assert all("wrong-password" not in r.getMessage() for r in caplog.records)


# Throttling


def test_sign_in_throttles_an_account_after_five_failures(client: TestClient) -> None:
    for _ in range(5):
        assert attempt(client, "alice", "wrong-password") == 401

    response = client.post(
        "/login",
        data={**sign_in_form(client), "username": "alice", "password": PASSWORD},
    )

    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    assert "Too many failed sign-ins. Wait 15 minutes and try again." in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    # Another account from the same address is not held back by alice's.
    assert attempt(client, "bob") == 303


def test_sign_in_success_clears_the_accounts_failures(client: TestClient) -> None:
    for _ in range(4):
        attempt(client, "alice", "wrong-password")
    assert attempt(client, "alice") == 303

    for _ in range(4):
        assert attempt(client, "alice", "wrong-password") == 401
    assert attempt(client, "alice") == 303


def test_sign_in_throttles_an_address_trying_many_accounts(
    client: TestClient,
) -> None:
    for number in range(20):
        assert attempt(client, f"guess{number}", "wrong-password") == 401

    response = client.post(
        "/login", data={**sign_in_form(client), "username": "bob", "password": PASSWORD}
    )

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def test_sign_in_throttling_holds_across_server_processes(
    system: System, settings: Settings
) -> None:
    other = open_system(settings)
    try:
        with TestClient(create_app(system), follow_redirects=False) as first:
            for _ in range(5):
                attempt(first, "alice", "wrong-password")
        with TestClient(create_app(other), follow_redirects=False) as second:
            assert attempt(second, "alice") == 429
    finally:
        other.db.dispose()


def test_sign_in_is_possible_again_once_the_window_has_passed(
    client: TestClient, system: System
) -> None:
    for _ in range(5):
        attempt(client, "alice", "wrong-password")
    assert attempt(client, "alice") == 429

    with system.db.transaction() as session:
        long_ago = utcnow() - timedelta(minutes=16)
        session.execute(update(SignInFailure).values(failed_at=long_ago))

    assert attempt(client, "alice") == 303


def test_sign_in_throttled_attempts_do_not_extend_the_wait(
    client: TestClient,
) -> None:
    for _ in range(5):
        attempt(client, "alice", "wrong-password")
    first = client.post(
        "/login", data={**sign_in_form(client), "username": "alice", "password": "x"}
    )
    for _ in range(10):
        client.post(
            "/login",
            data={**sign_in_form(client), "username": "alice", "password": "x"},
        )
    later = client.post(
        "/login", data={**sign_in_form(client), "username": "alice", "password": "x"}
    )

    assert int(later.headers["retry-after"]) <= int(first.headers["retry-after"])


# Sessions


def test_sign_in_gives_a_new_session_and_ends_the_old_one(client: TestClient) -> None:
    attempt(client, "alice")
    planted = client.cookies[SESSION_COOKIE]

    attempt(client, "alice")
    fresh = client.cookies[SESSION_COOKIE]

    assert fresh != planted
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, planted)
    assert not is_signed_in(client)


def test_sign_in_cookie_is_http_only_and_same_site_lax(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={**sign_in_form(client), "username": "alice", "password": PASSWORD},
    )

    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie


def test_sign_in_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(
        app, base_url="https://testserver", follow_redirects=False
    ) as client:
        response = client.post(
            "/login",
            data={**sign_in_form(client), "username": "alice", "password": PASSWORD},
        )

    assert "; secure" in response.headers["set-cookie"].lower()
    assert "max-age=31536000" in response.headers["strict-transport-security"]


def test_sign_in_cookie_is_secure_when_the_base_url_is_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TLS ends at a proxy that does not tell: the base URL still says https.
    cheap_password_hashing(monkeypatch)
    secure = open_system(
        make_settings(tmp_path / "https", base_url="https://flows.example.com")
    )
    add_user(secure, "alice")
    with TestClient(create_app(secure), follow_redirects=False) as client:
        response = client.post(
            "/login",
            data={**sign_in_form(client), "username": "alice", "password": PASSWORD},
        )
        page = client.get("/login")
    secure.db.dispose()

    assert "; secure" in response.headers["set-cookie"].lower()
    assert "strict-transport-security" in page.headers


def test_sign_in_plain_http_sends_no_hsts(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/login").headers


def test_sign_in_session_ends_when_it_expires(
    client: TestClient, system: System
) -> None:
    attempt(client, "alice")

    with system.db.transaction() as session:
        gone = utcnow() - timedelta(seconds=1)
        session.execute(update(WebSession).values(expires_at=gone))

    assert not is_signed_in(client)


def test_sign_in_session_ends_on_sign_out(client: TestClient) -> None:
    attempt(client, "alice")
    cookie = client.cookies[SESSION_COOKIE]
    token = csrf_token(client.get(HOME).text)

    client.post("/logout", data={"_csrf": token})

    client.cookies.set(SESSION_COOKIE, cookie)
    assert not is_signed_in(client)


def test_sign_in_session_ends_when_the_user_is_disabled(
    app: FastAPI, system: System
) -> None:
    with (
        TestClient(app, follow_redirects=False) as alice,
        TestClient(app, follow_redirects=False) as admin,
    ):
        attempt(alice, "alice")
        attempt(admin, "root")
        token = csrf_token(admin.get("/admin/users/alice").text)

        response = admin.post("/admin/users/alice/disable", data={"_csrf": token})

        assert response.status_code == 303
        assert not is_signed_in(alice)
        assert attempt(alice, "alice") == 401


def test_sign_in_session_ends_when_the_password_changes(
    app: FastAPI, system: System
) -> None:
    with (
        TestClient(app, follow_redirects=False) as alice,
        TestClient(app, follow_redirects=False) as admin,
    ):
        attempt(alice, "alice")
        attempt(admin, "root")
        token = csrf_token(admin.get("/admin/users/alice").text)

        admin.post(
            "/admin/users/alice/password",
            data={"_csrf": token, "password": "a-brand-new-password"},
        )

        assert not is_signed_in(alice)
        assert attempt(alice, "alice") == 401
        assert attempt(alice, "alice", "a-brand-new-password") == 303


def test_sign_in_session_ends_when_the_password_changes_elsewhere(
    client: TestClient, system: System
) -> None:
    # A change made by another process (the CLI): only the timestamp tells.
    attempt(client, "alice")
    with system.db.transaction() as session:
        set_password(session, get_user(session, "alice"), "changed-in-the-cli")

    assert not is_signed_in(client)


# The sign-in form's pre-session token (login CSRF)


def test_sign_in_page_sets_the_form_cookie_and_field(client: TestClient) -> None:
    page = client.get("/login")

    cookie = page.headers["set-cookie"].lower()
    assert cookie.startswith(f"{SIGN_IN_COOKIE}=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/login" in cookie
    assert "secure" not in cookie
    assert SIGN_IN_FIELD in sign_in_fields_of(page.text)


def test_sign_in_with_the_pages_fields_works_and_drops_the_form_cookie(
    client: TestClient,
) -> None:
    fields = sign_in_fields_of(client.get("/login").text)

    response = client.post(
        "/login", data={**fields, "username": "alice", "password": PASSWORD}
    )

    assert response.status_code == 303
    assert f'{SIGN_IN_COOKIE}=""' in response.headers["set-cookie"]
    assert is_signed_in(client)


@pytest.mark.parametrize(
    "forgery", ["no token", "no cookie", "another field", "another cookie"]
)
def test_sign_in_without_a_matching_form_token_is_refused(
    client: TestClient, forgery: str
) -> None:
    # No Origin and no Referer: what the Origin check alone let through.
    fields = sign_in_fields_of(client.get("/login").text)
    other = issue_form_token(client.app.state.system.settings.resolved_secret_key())
    if forgery == "no token":
        del fields[SIGN_IN_FIELD]
    elif forgery == "no cookie":
        client.cookies.clear()
    elif forgery == "another field":
        fields[SIGN_IN_FIELD] = other.field
    else:
        client.cookies.clear()
        client.cookies.set(SIGN_IN_COOKIE, other.cookie)

    response = client.post(
        "/login", data={**fields, "username": "alice", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert "The sign-in form expired or came from another site" in response.text
    assert SESSION_COOKIE not in response.headers["set-cookie"]
    # A fresh form comes with it, so that signing in again just works.
    client.cookies.delete(SIGN_IN_COOKIE, domain="")  # the one planted above
    retry = sign_in_fields_of(response.text)
    again = client.post(
        "/login", data={**retry, "username": "alice", "password": PASSWORD}
    )
    assert again.status_code == 303


def test_sign_in_with_an_expired_form_token_is_refused(client: TestClient) -> None:
    key = client.app.state.system.settings.resolved_secret_key()
    stale = issue_form_token(key, now=utcnow() - FORM_LIFETIME - timedelta(minutes=1))
    client.cookies.set(SIGN_IN_COOKIE, stale.cookie)

    response = client.post(
        "/login",
        data={SIGN_IN_FIELD: stale.field, "username": "alice", "password": PASSWORD},
    )

    assert response.status_code == 403
    assert not is_signed_in(client)


def test_sign_in_form_token_is_not_counted_as_a_failed_sign_in(
    client: TestClient, system: System
) -> None:
    client.post("/login", data={"username": "alice", "password": "wrong"})

    with system.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(SignInFailure)) == 0
