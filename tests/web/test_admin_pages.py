"""The administration pages: users (create, scopes, groups, disable, enable, a
new password), groups, and the sidebar that leads to them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from flowdesk.auth.users import get_user
from flowdesk.db.models import Run
from flowdesk.flows.service import get_flow
from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.interactive import (
    PASSWORD,
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    sign_in,
    sign_in_form,
)
from tests.support.stored_flows import apply_flow

AUDIT_FLOW = """
    id: audit
    name: Yearly audit
    interactive:
      enabled: true
      groups: [auditors]
    steps:
      - log: Audited
"""


@pytest.fixture
def app(system: System, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    cheap_password_hashing(monkeypatch)
    add_user(system, "root", ("admin",))
    add_user(system, "alice")
    apply_flow(system, AUDIT_FLOW)
    return create_app(system)


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "root")
        yield client


def post_form(
    client: TestClient, page: str, action: str, fields: dict[str, object]
) -> httpx.Response:
    token = csrf_token(client.get(page).text)
    return client.post(action, data={"_csrf": token, **fields})


def test_admin_sidebar_shows_administration_to_admins_only(
    app: FastAPI, admin: TestClient
) -> None:
    page = admin.get("/admin/users").text
    assert "Administration" in page
    for link in ("/admin/users", "/admin/groups", "/admin/tokens"):
        assert f'href="{link}"' in page

    with TestClient(app) as client:
        sign_in(client, "alice")
        assert "Administration" not in client.get("/interactive-flows").text


def test_admin_creates_a_user_who_can_sign_in(app: FastAPI, admin: TestClient) -> None:
    response = admin.post(
        "/admin/users",
        data={
            "_csrf": csrf_token(admin.get("/admin/users").text),
            "username": "carol",
            "password": "carols-password",
            "scope": ["flow:run", "flow:edit"],
            "groups": "auditors, sales",
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users/carol?done=created"
    page = admin.get(response.headers["location"]).text
    assert "The user was created." in page
    assert 'value="auditors, sales"' in page
    with TestClient(app, follow_redirects=False) as carol:
        signed = carol.post(
            "/login",
            data={
                **sign_in_form(carol),
                "username": "carol",
                "password": "carols-password",
            },
        )
        assert signed.status_code == 303
        assert carol.get("/flows").status_code == 200


def test_admin_new_user_with_a_bad_name_says_why_and_keeps_the_form(
    admin: TestClient,
) -> None:
    response = admin.post(
        "/admin/users",
        data={
            "_csrf": csrf_token(admin.get("/admin/users").text),
            "username": "<b>carol",
            "password": "carols-password",
            "scope": ["admin"],
        },
    )

    assert response.status_code == 422
    assert "The user name &#39;&lt;b&gt;carol&#39; is not allowed" in response.text
    assert 'value="&lt;b&gt;carol"' in response.text
    assert "carols-password" not in response.text


def test_admin_sets_scopes_which_apply_at_once(
    app: FastAPI, admin: TestClient, system: System
) -> None:
    with TestClient(app, follow_redirects=False) as alice:
        sign_in(alice, "alice")
        assert alice.get("/flows").status_code == 403

        response = post_form(
            admin,
            "/admin/users/alice",
            "/admin/users/alice/scopes",
            {"scope": ["flow:run", "flow:edit"]},
        )

        assert response.status_code == 303
        assert alice.get("/flows").status_code == 200
    with system.db.reading() as session:
        assert get_user(session, "alice").scopes == ["flow:run", "flow:edit"]


def test_admin_sets_groups_which_reveal_a_group_flow(
    app: FastAPI, admin: TestClient
) -> None:
    with TestClient(app, follow_redirects=False) as alice:
        sign_in(alice, "alice")
        assert alice.get("/interactive-flows/audit").status_code == 404

        post_form(
            admin,
            "/admin/users/alice",
            "/admin/users/alice/groups",
            {"groups": "auditors"},
        )

        assert alice.get("/interactive-flows/audit").status_code == 200


def test_admin_disables_and_enables_a_user(app: FastAPI, admin: TestClient) -> None:
    post_form(admin, "/admin/users/alice", "/admin/users/alice/disable", {})
    page = admin.get("/admin/users/alice?done=disabled").text

    assert "The user was disabled" in page
    assert "Enable alice" in page
    assert "Disabled" in admin.get("/admin/users").text

    post_form(admin, "/admin/users/alice", "/admin/users/alice/enable", {})
    with TestClient(app, follow_redirects=False) as alice:
        sign_in(alice, "alice")


def test_admin_cannot_disable_themselves(admin: TestClient) -> None:
    response = post_form(admin, "/admin/users/root", "/admin/users/root/disable", {})

    assert response.status_code == 422
    assert "You cannot disable your own account." in response.text
    assert admin.get("/admin/users").status_code == 200


def test_admin_cannot_drop_their_own_admin_scope(admin: TestClient) -> None:
    response = post_form(
        admin, "/admin/users/root", "/admin/users/root/scopes", {"scope": ["flow:run"]}
    )

    assert response.status_code == 422
    assert "You cannot take the admin scope from your own account" in (response.text)


def test_admin_new_password_too_short_is_refused(admin: TestClient) -> None:
    response = post_form(
        admin, "/admin/users/alice", "/admin/users/alice/password", {"password": "x"}
    )

    assert response.status_code == 422
    assert "at least 8 characters" in response.text


def test_admin_user_page_of_an_unknown_user_is_404(admin: TestClient) -> None:
    response = admin.get("/admin/users/nobody", headers={"accept": "text/html"})

    assert response.status_code == 404
    assert "There is no user named &#39;nobody&#39;." in response.text


def test_admin_notice_comes_only_from_the_fixed_list(admin: TestClient) -> None:
    page = admin.get("/admin/users/alice", params={"done": "You were hacked"}).text

    assert "You were hacked" not in page


def test_admin_groups_page_creates_and_counts_members(admin: TestClient) -> None:
    post_form(
        admin, "/admin/users/alice", "/admin/users/alice/groups", {"groups": "sales"}
    )

    created = post_form(admin, "/admin/groups", "/admin/groups", {"name": "Legal"})
    page = admin.get("/admin/groups?done=created").text

    assert created.headers["location"] == "/admin/groups?done=created"
    assert "The group was created." in page
    assert re.search(r"<td>Legal</td>\s*<td>0</td>", page)
    assert re.search(r"<td>sales</td>\s*<td>1</td>", page)


def test_admin_group_name_with_markup_is_shown_as_text(admin: TestClient) -> None:
    post_form(
        admin,
        "/admin/groups",
        "/admin/groups",
        {"name": "<img src=x onerror=alert(1)>"},
    )

    page = admin.get("/admin/groups").text

    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_admin_duplicate_group_is_refused_with_its_name(admin: TestClient) -> None:
    post_form(admin, "/admin/groups", "/admin/groups", {"name": "Legal"})

    response = post_form(admin, "/admin/groups", "/admin/groups", {"name": "Legal"})

    assert response.status_code == 422
    assert "A group named &#39;Legal&#39; exists already." in response.text


def test_admin_pages_refuse_users_without_the_admin_scope(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as alice:
        sign_in(alice, "alice")
        response = alice.get("/admin/users", headers={"accept": "text/html"})

    assert response.status_code == 403
    assert "This page needs the &#39;admin&#39; scope" in response.text
    assert PASSWORD not in response.text


# Deleting users and groups


def test_admin_deletes_a_user_after_confirming(
    admin: TestClient, system: System
) -> None:
    confirm = admin.get("/admin/users/alice/delete")
    assert confirm.status_code == 200
    assert "Delete the user alice?" in confirm.text

    response = admin.post(
        "/admin/users/alice/delete", data={"_csrf": csrf_token(confirm.text)}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users?done=deleted"
    assert "The user was deleted." in admin.get("/admin/users?done=deleted").text
    assert admin.get("/admin/users/alice").status_code == 404


def test_admin_cannot_delete_themselves(admin: TestClient) -> None:
    confirm = admin.get("/admin/users/root/delete")

    response = admin.post(
        "/admin/users/root/delete", data={"_csrf": csrf_token(confirm.text)}
    )

    assert response.status_code == 409
    assert "You cannot delete your own account." in response.text
    assert admin.get("/admin/users/root").status_code == 200


def test_admin_cannot_delete_the_last_enabled_admin(
    app: FastAPI, system: System
) -> None:
    add_user(system, "helper", ("admin",))
    with TestClient(app, follow_redirects=False) as helper:
        sign_in(helper, "helper")
        token = csrf_token(helper.get("/admin/users/root/delete").text)
        # root goes: helper is then the last admin and cannot go as well.
        assert (
            helper.post("/admin/users/root/delete", data={"_csrf": token}).status_code
            == 303
        )
    with TestClient(app, follow_redirects=False) as alice:
        sign_in(alice, "alice")
        assert alice.get("/admin/users/helper/delete").status_code == 403


def test_admin_deleted_users_runs_show_a_deleted_user(
    admin: TestClient, system: System
) -> None:
    with system.db.transaction() as session:
        flow = get_flow(session, "audit")
        session.add(
            Run(
                id="run-of-alice",
                flow_id="audit",
                version_id=flow.current_version_id,
                state="succeeded",
                trigger="form",
                user_id=get_user(session, "alice").id,
                inputs={},
            )
        )
    token = csrf_token(admin.get("/admin/users/alice/delete").text)
    admin.post("/admin/users/alice/delete", data={"_csrf": token})

    add_user(system, "boss", ("admin", "flow:run"))
    sign_in(admin, "boss")
    run_page = admin.get("/runs/run-of-alice")
    past_runs = admin.get("/interactive-flows/audit/runs")

    assert run_page.status_code == 200
    assert "started by deleted user" in run_page.text
    assert "deleted user" in past_runs.text


def test_admin_deletes_a_group_and_its_flows_stay_closed(
    app: FastAPI, admin: TestClient, system: System
) -> None:
    add_user(system, "auditor", ("flow:run",), ("auditors",))
    confirm = admin.get("/admin/groups/auditors/delete")
    assert "Delete the group auditors?" in confirm.text
    assert "Yearly audit" in confirm.text

    response = admin.post(
        "/admin/groups/auditors/delete", data={"_csrf": csrf_token(confirm.text)}
    )

    assert response.status_code == 303
    assert "auditors" not in admin.get("/admin/groups").text
    with TestClient(app, follow_redirects=False) as auditor:
        sign_in(auditor, "auditor")
        assert auditor.get("/interactive-flows/audit").status_code == 404
    assert admin.get("/admin/groups/auditors/delete").status_code == 404
