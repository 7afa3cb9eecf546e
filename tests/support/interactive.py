"""Helpers for the Interactive Flows tests over HTTP: users, signing a test
client in, the CSRF token of a page, and reading runs from the database."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from starlette.testclient import TestClient

from flowdesk.auth import passwords
from flowdesk.auth.signin_form import issue_form_token
from flowdesk.auth.users import create_user
from flowdesk.db.models import Run
from flowdesk.runs import states
from flowdesk.system import System

__all__ = ["TestClient"]

PASSWORD = "password-for-tests"

_CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]+)"')
_HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
# As in flowdesk.web.routes.session, spelled out so that a change shows here.
SIGN_IN_COOKIE = "flowdesk_sign_in"
SIGN_IN_FIELD = "_sign_in"


def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test passwords fast: these tests sign in often and are not about
    the cost of hashing."""
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", fast)


def add_user(
    system: System,
    name: str,
    scopes: tuple[str, ...] = ("flow:run",),
    groups: tuple[str, ...] = (),
) -> None:
    with system.db.transaction() as session:
        create_user(session, name, PASSWORD, list(scopes), list(groups))


def sign_in(client: TestClient, name: str) -> None:
    """Sign `client` in as `name`, dropping whoever it was signed in as."""
    client.cookies.clear()
    response = client.post(
        "/login",
        data={**sign_in_form(client), "username": name, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def sign_in_form(client: TestClient, next: str = "/") -> dict[str, str]:
    """What a sign-in form sends besides the credentials: its pre-session
    token, whose cookie goes into `client`, and `next`. Made as the server
    makes it, so that it works whether or not the client is signed in."""
    system: System = client.app.state.system  # type: ignore[attr-defined]
    token = issue_form_token(system.settings.resolved_secret_key())
    client.cookies.set(SIGN_IN_COOKIE, token.cookie)
    return {SIGN_IN_FIELD: token.field, "next": next}


def sign_in_fields_of(html: str) -> dict[str, str]:
    """The hidden fields of a sign-in page, as a browser would send them."""
    return dict(_HIDDEN_FIELD.findall(html))


def csrf_token(html: str) -> str:
    found = _CSRF_FIELD.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def count_runs(system: System, flow_id: str | None = None) -> int:
    query = select(func.count()).select_from(Run)
    if flow_id is not None:
        query = query.where(Run.flow_id == flow_id)
    with system.db.reading() as session:
        return session.scalar(query) or 0


def only_run(system: System, flow_id: str) -> Run:
    with system.db.reading() as session:
        runs = list(session.scalars(select(Run).where(Run.flow_id == flow_id)))
    assert len(runs) == 1, f"expected one run of {flow_id}, found {len(runs)}"
    return runs[0]


def wait_until_finished(system: System, run_id: str, timeout: float = 10.0) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        with system.db.reading() as session:
            run = session.get_one(Run, run_id)
        if run.state in states.FINISHED:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is still {run.state}")
        time.sleep(0.02)


def run_id_of(location: str) -> str:
    assert location.startswith("/runs/"), location
    return location.removeprefix("/runs/")


def sse_events(body: str) -> list[dict[str, Any]]:
    """The events of a server-sent event stream, each with its fields."""
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "data" in fields:
            events.append(fields)
    return events
