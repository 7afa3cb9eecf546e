"""API tokens over HTTP: made on /admin/tokens and shown once, sent as
`Authorization: Bearer ...` to /api/v1/, limited to their own scopes within
their owner's, revocable, and never a way into the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from flowdesk.auth.tokens import create_token, token_hash
from flowdesk.auth.users import disable_user, get_user, set_scopes
from flowdesk.db.models import ApiToken
from flowdesk.db.types import utcnow
from flowdesk.formatting import format_time
from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.auth import SESSION_COOKIE
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    only_run,
    sign_in,
)
from tests.support.stored_flows import apply_flow

HELLO = """
    id: hello
    name: Hello
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          name: {type: string}
    steps:
      - log: Hello {{ inputs.name }}
"""


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "alice", ("flow:run", "admin"))
    add_user(system, "root", ("admin",))
    apply_flow(system, HELLO)
    return create_app(system)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def make_token(system: System, owner: str, *scopes: str) -> str:
    with system.db.transaction() as session:
        return create_token(
            session, "robot", get_user(session, owner), list(scopes)
        ).secret


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_api_token_acts_as_its_user_with_its_scopes(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")

    response = client.get("/api/v1/me", headers=bearer(secret))

    assert response.status_code == 200
    assert response.json() == {
        "username": "alice",
        "scopes": ["flow:run"],
        "groups": [],
        "by_token": True,
    }


def test_api_token_starts_a_run_without_a_csrf_token(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")

    response = client.post(
        "/api/v1/flows/hello/runs",
        json={"inputs": {"name": "robot"}},
        headers=bearer(secret),
    )

    assert response.status_code == 201, response.text
    run = only_run(system, "hello")
    assert run.trigger == "api"
    with system.db.reading() as session:
        assert run.user_id == get_user(session, "alice").id


def test_api_token_without_the_scope_is_refused_with_its_name(
    client: TestClient, system: System
) -> None:
    # alice may run flows, but this token of hers may not.
    secret = make_token(system, "alice", "admin")

    response = client.get("/api/v1/flows", headers=bearer(secret))

    assert response.status_code == 403
    assert response.json()["missing_scope"] == "flow:run"


def test_api_token_loses_a_scope_its_owner_loses(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")
    with system.db.transaction() as session:
        set_scopes(session, get_user(session, "alice"), ["admin"])

    response = client.get("/api/v1/flows", headers=bearer(secret))

    assert response.status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer fdk_not-a-real-token",
        "Bearer ",
        "Bearer",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "fdk_without-a-scheme",
        "Bearer " + "x" * 5000,
    ],
)
def test_api_token_that_is_not_valid_gets_401(
    client: TestClient, authorization: str
) -> None:
    response = client.get("/api/v1/flows", headers={"authorization": authorization})

    assert response.status_code == 401
    assert response.json() == {"error": "Please sign in."}
    assert response.headers["www-authenticate"] == "Bearer"


def test_api_token_revoked_is_refused(client: TestClient, system: System) -> None:
    secret = make_token(system, "alice", "flow:run")
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 200

    sign_in(client, "root")
    page = client.get("/admin/tokens")
    token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', page.text)
    assert token_id is not None
    revoked = client.post(
        f"/admin/tokens/{token_id.group(1)}/revoke",
        data={"_csrf": csrf_token(page.text)},
    )
    listing = client.get(revoked.headers["location"])
    client.cookies.clear()

    assert revoked.status_code == 303
    assert "The token was revoked" in listing.text
    assert "Revoked " in listing.text
    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 401


def test_api_token_of_a_disabled_user_is_refused(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")
    with system.db.transaction() as session:
        disable_user(session, get_user(session, "alice"))

    assert client.get("/api/v1/flows", headers=bearer(secret)).status_code == 401


def test_api_token_records_when_it_was_last_used(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")

    client.get("/api/v1/flows", headers=bearer(secret))

    with system.db.reading() as session:
        row = session.scalars(select(ApiToken)).one()
    assert row.last_used_at is not None


def test_api_token_opens_no_page(client: TestClient, system: System) -> None:
    secret = make_token(system, "alice", "flow:run")

    response = client.get("/interactive-flows", headers=bearer(secret))

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_api_token_wins_over_a_session_cookie(
    client: TestClient, system: System
) -> None:
    sign_in(client, "alice")
    secret = make_token(system, "root", "admin")

    response = client.get("/api/v1/me", headers=bearer(secret))

    assert response.json()["username"] == "root"
    assert SESSION_COOKIE in client.cookies


def test_api_session_request_still_needs_the_csrf_header(
    client: TestClient,
) -> None:
    sign_in(client, "alice")

    refused = client.post("/api/v1/flows/hello/runs", json={"inputs": {}})
    token = csrf_token(client.get("/interactive-flows").text)
    accepted = client.post(
        "/api/v1/flows/hello/runs", json={"inputs": {}}, headers={"x-csrf-token": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 201


def test_api_token_page_shows_a_new_token_once_and_stores_its_hash(
    client: TestClient, system: System
) -> None:
    sign_in(client, "root")
    page = client.get("/admin/tokens")

    created = client.post(
        "/admin/tokens",
        data={
            "_csrf": csrf_token(page.text),
            "name": "billing-system",
            "username": "alice",
            "scope": ["flow:run"],
        },
    )

    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    shown = re.search(r'id="new-token"[^>]*value="(fdk_[^"]+)"', created.text)
    assert shown is not None
    secret = shown.group(1)
    with system.db.reading() as session:
        row = session.scalars(select(ApiToken)).one()
    assert row.token_hash == token_hash(secret)
    assert row.scopes == ["flow:run"]
    again = client.get("/admin/tokens")
    assert secret not in again.text
    assert row.prefix in again.text
    assert "billing-system" in again.text
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200


def test_api_token_page_refuses_a_scope_the_user_lacks(
    client: TestClient, system: System
) -> None:
    sign_in(client, "root")
    page = client.get("/admin/tokens")

    response = client.post(
        "/admin/tokens",
        data={
            "_csrf": csrf_token(page.text),
            "name": "too-much",
            "username": "root",
            "scope": ["flow:edit"],
        },
    )

    assert response.status_code == 422
    assert "does not have the scope &#39;flow:edit&#39;" in response.text
    with system.db.reading() as session:
        assert session.scalars(select(ApiToken)).all() == []


# Expiry


def test_api_token_made_with_an_expiry_shows_it_in_the_list(
    client: TestClient, system: System
) -> None:
    sign_in(client, "alice")
    token = csrf_token(client.get("/admin/tokens").text)

    made = client.post(
        "/admin/tokens",
        data={
            "_csrf": token,
            "name": "ci",
            "username": "alice",
            "scope": "flow:run",
            "expires_in": "30",
        },
    )

    assert made.status_code == 201
    with system.db.reading() as session:
        row = session.scalars(select(ApiToken)).one()
    assert row.expires_at is not None
    assert 29 <= (row.expires_at - row.created_at).days <= 30
    assert f"<td>{format_time(row.expires_at)}</td>" in made.text


def test_api_token_form_names_a_bad_expiry(client: TestClient) -> None:
    sign_in(client, "alice")
    token = csrf_token(client.get("/admin/tokens").text)

    response = client.post(
        "/admin/tokens",
        data={"_csrf": token, "name": "ci", "username": "alice", "expires_in": "x"},
    )

    assert response.status_code == 422
    assert "whole number of days, or never; got &#39;x&#39;" in response.text


def test_api_token_expired_is_refused_with_a_401_saying_so(
    client: TestClient, system: System
) -> None:
    secret = make_token(system, "alice", "flow:run")
    with system.db.transaction() as session:
        session.execute(
            update(ApiToken).values(expires_at=utcnow() - timedelta(hours=1))
        )

    response = client.get("/api/v1/me", headers=bearer(secret))

    assert response.status_code == 401
    assert "expired on" in response.json()["error"]
    sign_in(client, "alice")
    listed = client.get("/admin/tokens").text
    assert '<span class="tag">Expired</span>' in listed
