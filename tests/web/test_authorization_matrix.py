"""Every route the app registers, for every kind of viewer, against the one
policy table in `flowdesk.web.policy`: signed-out visitors are sent to sign in,
a missing scope is a 403 that names it, a flow limited to groups and another
user's run are a 404, and everyone else gets in.

A route without a line in the table fails here; add it to the table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowdesk.web.app import create_app
from flowdesk.web.policy import POLICY, Access
from tests.support.access import (
    GROUP,
    ROLES,
    RUN_OWNER,
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
from tests.support.interactive import cheap_password_hashing, sign_in_form

ROUTES = registered_routes(offline_app())

SIGN_IN = "sent to sign in"
FORBIDDEN = "refused for the missing scope"
HIDDEN = "answered as if it did not exist"
ALLOWED = "let in"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("FLOWDESK_") and name != "FLOWDESK_TEST_STRICT":
                patch.delenv(name)
        cheap_password_hashing(patch)
        yield build_world(tmp_path_factory.mktemp("matrix") / "data")


def expected_outcome(access: Access, role: Role) -> str:
    if access.public:
        return ALLOWED
    if role.username is None:
        return SIGN_IN
    if access.scopes and not set(access.scopes) & set(role.scopes):
        return FORBIDDEN
    if access.hidden == "group" and not role.sees_everything:
        return ALLOWED if GROUP in role.groups else HIDDEN
    if access.hidden == "owner" and not role.sees_everything:
        return ALLOWED if role.username == RUN_OWNER else HIDDEN
    return ALLOWED


def actual_outcome(route: RouteKey, response: httpx.Response) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    if status == 303 and location.startswith("/login?next="):
        return SIGN_IN
    if status == 401 and route.path.startswith("/api/"):
        return SIGN_IN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    return ALLOWED


def test_authorization_matrix_has_a_rule_for_every_route() -> None:
    missing = [
        str(route) for route in ROUTES if (route.method, route.path) not in POLICY
    ]

    assert not missing, (
        "These routes have no entry in flowdesk.web.policy.POLICY; add one that "
        f"says who may use them: {missing}"
    )


@pytest.mark.parametrize("role", ROLES, ids=[role.label for role in ROLES])
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_authorization_matrix_route_answers_each_role_by_the_policy(
    route: RouteKey,
    role: Role,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    access = POLICY.get((route.method, route.path))
    if access is None:
        pytest.fail(f"{route} has no entry in flowdesk.web.policy.POLICY")
    cheap_password_hashing(monkeypatch)
    system = open_copy(world, tmp_path / "data")
    url = fill_path(route.path, world.path_values())

    body: dict[str, object] = {} if route.method == "GET" else {"json": {}}
    with client_for(create_app(system), world, role) as client:
        if (route.method, route.path) == ("POST", "/login"):
            # The sign-in form's own token, which any visitor can get.
            body = {"data": sign_in_form(client)}
        response = client.request(route.method, url, **body)
    system.db.dispose()

    assert response.status_code < 500, response.text
    expected = expected_outcome(access, role)
    assert actual_outcome(route, response) == expected, (
        f"{route} as {role.label}: expected to be {expected}, got "
        f"{response.status_code} {response.headers.get('location', '')}"
        f"{response.text[:300]}"
    )
    if expected == FORBIDDEN:
        assert access.scopes[0] in response.text
