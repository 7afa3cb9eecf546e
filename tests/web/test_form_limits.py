"""The fixed forms (sign-in, account, administration, secrets) read through
one helper with flowdesk's limits: an oversized field is a 413 that names it,
too many fields a 413 that says how many are accepted, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from flowdesk.system import System
from flowdesk.web.app import create_app
from flowdesk.web.limits import SMALL_FORM_FIELDS
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in,
    sign_in_form,
)


@dataclass(frozen=True)
class FixedForm:
    page: str  # where the form is, for its CSRF token
    action: str
    fields: dict[str, str]
    long_field: str  # a field with a length limit
    limit: int


FORMS = [
    FixedForm("/admin/users", "/admin/users", {"password": "x" * 10}, "username", 100),
    FixedForm("/admin/users", "/admin/users", {"username": "zed"}, "password", 1024),
    FixedForm("/admin/users", "/admin/users", {"username": "zed"}, "groups", 10_000),
    FixedForm("/admin/users/alice", "/admin/users/alice/groups", {}, "groups", 10_000),
    FixedForm(
        "/admin/users/alice", "/admin/users/alice/password", {}, "password", 1024
    ),
    FixedForm("/admin/users/alice", "/admin/users/alice/scopes", {}, "scope", 20),
    FixedForm("/admin/groups", "/admin/groups", {}, "name", 100),
    FixedForm("/admin/tokens", "/admin/tokens", {"username": "root"}, "name", 100),
    FixedForm("/admin/tokens", "/admin/tokens", {"name": "ci"}, "expires_in", 10),
    FixedForm("/admin/secrets", "/admin/secrets", {"value": "abcd"}, "name", 100),
    FixedForm("/admin/secrets", "/admin/secrets", {"name": "TOKEN"}, "value", 65536),
    FixedForm("/account", "/account/password", {}, "current_password", 1024),
    FixedForm("/account", "/account/password", {}, "new_password", 1024),
]
IDS = [f"{form.action} {form.long_field}" for form in FORMS]


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "root", ("admin", "flow:run"))
    add_user(system, "alice")
    return create_app(system)


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "root")
        yield client


@pytest.mark.parametrize("form", FORMS, ids=IDS)
def test_form_limits_oversized_field_is_a_413_naming_it(
    admin: TestClient, form: FixedForm
) -> None:
    fields = {
        "_csrf": csrf_token(admin.get(form.page).text),
        **form.fields,
        form.long_field: "a" * (form.limit + 1),
    }

    response = admin.post(form.action, data=fields)

    assert response.status_code == 413
    assert f"The field &#39;{form.long_field}&#39; has {form.limit + 1:,}" in (
        response.text
    )


@pytest.mark.parametrize("form", FORMS, ids=IDS)
def test_form_limits_too_many_fields_is_a_413(
    admin: TestClient, form: FixedForm
) -> None:
    fields = [("_csrf", csrf_token(admin.get(form.page).text))]
    fields += [(f"extra{number}", "1") for number in range(SMALL_FORM_FIELDS)]

    response = admin.post(form.action, data=dict(fields))

    assert response.status_code == 413
    assert f"this page accepts at most {SMALL_FORM_FIELDS}" in response.text


def test_form_limits_field_at_its_limit_gets_through(admin: TestClient) -> None:
    token = csrf_token(admin.get("/admin/groups").text)

    response = admin.post("/admin/groups", data={"_csrf": token, "name": "g" * 100})

    assert response.status_code == 303


def test_form_limits_sign_in_with_an_oversized_field_is_a_413(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as client:
        for name, limit in (("username", 1000), ("password", 1024), ("next", 4000)):
            fields = {**sign_in_form(client), "username": "alice", "password": "x"}
            fields[name] = "/" + "a" * limit

            response = client.post("/login", data=fields)

            assert response.status_code == 413, name
            assert f"The field &#39;{name}&#39; has {limit + 1:,}" in response.text


def test_form_limits_sign_in_with_too_many_fields_is_a_413(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as client:
        fields = {**sign_in_form(client), "username": "alice", "password": "x"}
        fields.update({f"extra{number}": "1" for number in range(SMALL_FORM_FIELDS)})

        response = client.post("/login", data=fields)

    assert response.status_code == 413
    assert "accepts at most" in response.text


def test_form_limits_hold_for_multipart_forms(admin: TestClient) -> None:
    token = csrf_token(admin.get("/admin/groups").text)

    response = admin.post(
        "/admin/groups",
        data={"_csrf": token},
        files={"name": (None, "g" * 101)},
    )

    assert response.status_code == 413
    assert "The field &#39;name&#39;" in response.text
