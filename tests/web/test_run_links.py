"""Runs started by `run_flow` and their parents, linked both ways on the run
page and in the JSON API, and only where the viewer may open the other run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from flowdesk.db.models import Run, User
from flowdesk.runs.service import create_run
from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    csrf_token,
    run_id_of,
    sign_in,
    wait_until_finished,
)
from tests.support.stored_flows import apply_flow

CHILD = """
    id: child
    name: Doubler
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          n: {type: integer, default: 1}
          pause: {type: number, default: 0}
    steps:
      - sleep: "{{ inputs.pause }}"
      - set: {doubled: "{{ inputs.n * 2 }}"}
"""

PARENT = """
    id: parent
    name: Order totals
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          pause: {type: number, default: 0}
    steps:
      - for_each: "{{ [1, 2] }}"
        as: n
        do:
          - run_flow: child
            inputs: {n: "{{ n }}", pause: "{{ inputs.pause }}"}
            save_as: result
"""


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    apply_flow(system, CHILD)
    apply_flow(system, PARENT)
    add_user(system, "alice")
    add_user(system, "bob")
    add_user(system, "dev", ("flow:edit",))
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "alice")
        yield test_client


def start_parent(client: TestClient, pause: float = 0) -> str:
    form = client.get("/interactive-flows/parent").text
    response = client.post(
        "/interactive-flows/parent/runs",
        data={"_csrf": csrf_token(form), "pause": str(pause)},
        follow_redirects=False,
    )
    return run_id_of(response.headers["location"])


def children_of(system: System, run_id: str) -> list[Run]:
    query = select(Run).where(Run.parent_run_id == run_id).order_by(Run.created_at)
    with system.db.reading() as session:
        return list(session.scalars(query))


def queued_run(
    system: System, flow_id: str, username: str, parent_run_id: str | None = None
) -> str:
    """A run that stays queued, started by `username`, perhaps as a child."""
    with system.db.transaction() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        run = create_run(
            session, flow_id, {}, "form", user=user, parent_run_id=parent_run_id
        )
        return run.id


def live_area(page: str) -> str:
    """The part of the run page that is refreshed when the run ends."""
    found = re.search(r"<div id=\"run-live\".*</div>\s*</main>", page, re.S)
    assert found is not None
    return found.group(0)


def test_run_links_parent_lists_its_children_and_each_child_names_its_parent(
    client: TestClient, system: System
) -> None:
    parent_id = start_parent(client)
    wait_until_finished(system, parent_id)
    first, second = children_of(system, parent_id)

    parent_page = client.get(f"/runs/{parent_id}").text
    child_page = client.get(f"/runs/{first.id}").text

    children = live_area(parent_page)
    assert "Runs started by this run" in children
    for child in (first, second):
        assert (
            f'<a href="/runs/{child.id}">Doubler · run <code>{child.id[:8]}</code></a>'
            in children
        )
    assert children.count('class="state-badge state-succeeded"') == 2
    assert (
        f'Started by <a href="/runs/{parent_id}">run <code>{parent_id[:8]}</code>'
        " of Order totals</a> (succeeded)" in child_page
    )
    assert "Runs started by this run" not in child_page
    assert "Started by" not in parent_page


def test_run_links_children_appear_while_the_parent_runs(
    client: TestClient, system: System
) -> None:
    parent_id = start_parent(client, pause=0.5)
    deadline = time.monotonic() + 10
    while not children_of(system, parent_id):
        assert time.monotonic() < deadline, "the parent started no child"
        time.sleep(0.02)
    [first] = children_of(system, parent_id)

    page = client.get(f"/runs/{parent_id}").text

    # Without JavaScript the page reloads itself; with it the live area, where
    # the children are, is fetched again when the run ends.
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert f'<a href="/runs/{first.id}">Doubler' in live_area(page)
    wait_until_finished(system, parent_id)


def test_run_links_name_runs_the_viewer_may_not_open_without_a_link(
    client: TestClient, system: System
) -> None:
    bobs_parent = queued_run(system, "parent", "bob")
    alices_child = queued_run(system, "child", "alice", parent_run_id=bobs_parent)
    alices_parent = queued_run(system, "parent", "alice")
    bobs_child = queued_run(system, "child", "bob", parent_run_id=alices_parent)

    child_page = client.get(f"/runs/{alices_child}").text
    parent_page = client.get(f"/runs/{alices_parent}").text
    sign_in(client, "dev")
    as_developer = client.get(f"/runs/{alices_child}").text

    assert "Started by another run, which you cannot open." in child_page
    assert bobs_parent not in child_page and "Order totals</a>" not in child_page
    assert "Doubler · a run you cannot open" in parent_page
    assert f'href="/runs/{bobs_child}"' not in parent_page
    assert f'Started by <a href="/runs/{bobs_parent}">' in as_developer


def test_run_links_are_in_the_api(client: TestClient, system: System) -> None:
    parent_id = start_parent(client)
    wait_until_finished(system, parent_id)
    first, second = children_of(system, parent_id)

    parent = client.get(f"/api/v1/runs/{parent_id}").json()
    child = client.get(f"/api/v1/runs/{first.id}").json()
    listed = client.get("/api/v1/runs").json()["runs"]

    assert parent["parent_run_id"] is None
    assert parent["child_run_ids"] == [first.id, second.id]
    assert child["parent_run_id"] == parent_id
    assert child["child_run_ids"] == []
    assert {run["id"]: run["parent_run_id"] for run in listed} == {
        parent_id: None,
        first.id: parent_id,
        second.id: parent_id,
    }


def test_run_links_in_the_api_leave_out_children_the_caller_may_not_see(
    client: TestClient, system: System
) -> None:
    alices_parent = queued_run(system, "parent", "alice")
    queued_run(system, "child", "bob", parent_run_id=alices_parent)
    own = queued_run(system, "child", "alice", parent_run_id=alices_parent)

    answer = client.get(f"/api/v1/runs/{alices_parent}").json()

    assert answer["child_run_ids"] == [own]
