"""Cross-site request forgery: every route that changes state refuses a
request without the session's token, and one sent from another site (a foreign
Origin, `Origin: null`, or without Origin a foreign Referer), even with it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowdesk.system import System, open_system
from flowdesk.web.app import create_app
from flowdesk.web.auth import CSRF_HEADER
from flowdesk.web.policy import POLICY
from tests.support.access import (
    EVERYTHING,
    Role,
    RouteKey,
    World,
    build_world,
    client_for,
    fill_path,
    offline_app,
    open_copy,
    registered_routes,
)
from tests.support.interactive import (
    PASSWORD,
    TestClient,
    cheap_password_hashing,
    sign_in_form,
)

PROTECTED = [
    route
    for route in registered_routes(offline_app())
    if (access := POLICY.get((route.method, route.path))) and access.csrf
]
SESSION_FORMS = [
    route for route in PROTECTED if not POLICY[(route.method, route.path)].public
]

# What a forged request looks like, beyond lacking the token.
FOREIGN = {
    "a foreign Origin": {"origin": "https://evil.example"},
    "Origin null": {"origin": "null"},
    "a look-alike Origin": {"origin": "http://testserver.evil.example"},
    "a foreign Referer": {"referer": "https://evil.example/page"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("FLOWDESK_") and name != "FLOWDESK_TEST_STRICT":
                patch.delenv(name)
        cheap_password_hashing(patch)
        yield build_world(tmp_path_factory.mktemp("csrf") / "data")


@pytest.fixture(scope="module")
def system(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # Shared by the module: a refused request changes nothing.
    opened = open_copy(world, tmp_path_factory.mktemp("csrf-copy") / "data")
    yield opened
    opened.db.dispose()


def signed_in_client(
    system: System, world: World, role: Role = EVERYTHING
) -> TestClient:
    return client_for(create_app(system), world, role)


def test_csrf_every_state_change_is_protected() -> None:
    # The policy says which routes need the token; this keeps it honest about
    # POSTs, which are the ones a browser sends from another site's form.
    unprotected = [
        str(route)
        for route in registered_routes(offline_app())
        if route.method != "GET" and not POLICY[(route.method, route.path)].csrf
    ]

    assert unprotected == []


@pytest.mark.parametrize("route", SESSION_FORMS, ids=str)
def test_csrf_request_without_the_token_is_refused(
    route: RouteKey, system: System, world: World
) -> None:
    url = fill_path(route.path, world.path_values())

    with signed_in_client(system, world) as client:
        del client.headers[CSRF_HEADER]
        response = client.request(route.method, url, data={"name": "x"})

    assert response.status_code == 403, response.text
    assert "did not come from this site" in response.text


@pytest.mark.parametrize("route", SESSION_FORMS, ids=str)
def test_csrf_request_with_another_sessions_token_is_refused(
    route: RouteKey, system: System, world: World
) -> None:
    url = fill_path(route.path, world.path_values())
    someone_else = world.sessions["runner"].csrf

    with signed_in_client(system, world) as client:
        client.headers[CSRF_HEADER] = someone_else
        response = client.request(route.method, url, json={})

    assert response.status_code == 403, response.text


@pytest.mark.parametrize("how", FOREIGN)
@pytest.mark.parametrize("route", PROTECTED, ids=str)
def test_csrf_request_from_another_site_is_refused_even_with_the_token(
    route: RouteKey, how: str, system: System, world: World
) -> None:
    url = fill_path(route.path, world.path_values())

    with signed_in_client(system, world) as client:
        del client.headers["origin"]
        response = client.request(route.method, url, json={}, headers=FOREIGN[how])

    assert response.status_code == 403, response.text
    assert "came from another site" in response.text


def test_csrf_token_in_the_form_field_is_accepted(system: System, world: World) -> None:
    token = world.sessions[EVERYTHING.username or ""].csrf

    with signed_in_client(system, world) as client:
        del client.headers[CSRF_HEADER]
        response = client.post(
            "/admin/groups", data={"_csrf": token, "name": "Field token"}
        )

    assert response.status_code == 303


def test_csrf_same_site_referer_without_origin_is_accepted(
    system: System, world: World
) -> None:
    with signed_in_client(system, world) as client:
        del client.headers["origin"]
        response = client.post(
            "/admin/groups",
            data={"name": "Referer only"},
            headers={"referer": "http://testserver/admin/groups"},
        )

    assert response.status_code == 303


def test_csrf_sign_in_from_another_site_is_refused(system: System) -> None:
    with TestClient(create_app(system), follow_redirects=False) as client:
        for headers in FOREIGN.values():
            response = client.post(
                "/login",
                data={**sign_in_form(client), "username": "boss", "password": PASSWORD},
                headers=headers,
            )
            assert response.status_code == 403, headers
            assert "set-cookie" not in response.headers

        same_site = client.post(
            "/login",
            data={**sign_in_form(client), "username": "boss", "password": PASSWORD},
            headers={"origin": "http://testserver"},
        )
    assert same_site.status_code == 303


def test_csrf_origin_of_the_base_url_is_accepted(world: World, tmp_path: Path) -> None:
    # Behind a proxy the Host header may differ from the public address.
    settings = world.copy_to(tmp_path / "data")
    settings.base_url = "https://flows.example.com"
    system = open_system(settings, migrate=False)
    with TestClient(create_app(system), follow_redirects=False) as client:
        response = client.post(
            "/login",
            data={**sign_in_form(client), "username": "boss", "password": PASSWORD},
            headers={"origin": "https://flows.example.com"},
        )
    system.db.dispose()

    assert response.status_code == 303
