"""The run page over HTTP: who may see it, what it shows before and after the
end, its live events, its sandboxed HTML result, and Cancel and Rerun."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from flowdesk.db.models import Run, RunEvent, User
from flowdesk.db.types import utcnow
from flowdesk.runs import states
from flowdesk.runs.service import create_run
from flowdesk.system import System
from flowdesk.web import run_page
from flowdesk.web.app import create_app
from tests.support.interactive import (
    TestClient,
    add_user,
    cheap_password_hashing,
    count_runs,
    csrf_token,
    run_id_of,
    sign_in,
    sse_events,
    wait_until_finished,
)
from tests.support.stored_flows import apply_flow

REPORT = """
    id: report
    name: Weekly report
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string, title: Customer name}
          items: {type: integer, title: Number of items, default: 1}
          express: {type: boolean, title: Express delivery}
          regions: {type: array, title: Regions, items: {type: string}}
      allowed_triggers: [link_click]
    steps:
      - status: Counting for {{ inputs.customer }}...
        progress: 50
      - log: Counted
      - html: |
          <h1>Report for {{ inputs.customer }}</h1>
          <script>document.title = "the flow's own script"</script>
"""

SLOW = """
    id: slow
    name: Slow flow
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          seconds: {type: number, default: 0.6}
    steps:
      - status: Working...
        progress: 10
      - log: Begun
      - sleep: "{{ inputs.seconds }}"
      - log: Done
"""

FAILING = """
    id: failing
    name: Failing flow
    interactive: {enabled: true}
    steps:
      - fail: The source system did not answer.
"""


@pytest.fixture
def client(system: System, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    cheap_password_hashing(monkeypatch)
    for text in (REPORT, SLOW, FAILING):
        apply_flow(system, text)
    add_user(system, "alice")
    add_user(system, "bob")
    add_user(system, "dev", ("flow:run", "flow:edit"))
    with TestClient(create_app(system)) as test_client:
        sign_in(test_client, "alice")
        yield test_client


def start(client: TestClient, link: str) -> str:
    """Start a run by a start_flow link; returns its id."""
    response = client.get(link, follow_redirects=False)
    assert response.status_code == 303, response.text
    return run_id_of(response.headers["location"])


def start_failing(client: TestClient) -> str:
    form = client.get("/interactive-flows/failing").text
    response = client.post(
        "/interactive-flows/failing/runs",
        data={"_csrf": csrf_token(form)},
        follow_redirects=False,
    )
    return run_id_of(response.headers["location"])


def start_slow(client: TestClient) -> str:
    form = client.get("/interactive-flows/slow").text
    response = client.post(
        "/interactive-flows/slow/runs",
        data={"_csrf": csrf_token(form), "seconds": "0.6"},
        follow_redirects=False,
    )
    return run_id_of(response.headers["location"])


def queued_run(system: System, flow_id: str, inputs: dict[str, object]) -> str:
    """A run that stays queued: created, but never handed to the executor."""
    with system.db.transaction() as session:
        user = session.scalar(select(User).where(User.username == "alice"))
        return create_run(session, flow_id, inputs, "form", user=user).id


def finished_report(client: TestClient, system: System) -> str:
    run_id = start(
        client, "/interactive-flows/report?customer=ACME&regions=north&start_flow=true"
    )
    wait_until_finished(system, run_id)
    return run_id


# Access


def test_run_page_is_only_for_its_starter_and_developers(
    client: TestClient, system: System
) -> None:
    run_id = finished_report(client, system)

    sign_in(client, "bob")
    assert client.get(f"/runs/{run_id}").status_code == 404
    assert client.get(f"/runs/{run_id}/result").status_code == 404
    assert client.get(f"/runs/{run_id}/events").status_code == 404

    sign_in(client, "dev")
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "started by alice" in page.text


def test_unknown_run_is_not_found(client: TestClient) -> None:
    assert client.get("/runs/0123456789abcdef").status_code == 404


def test_run_page_sends_signed_out_visitor_to_sign_in(
    client: TestClient, system: System
) -> None:
    run_id = queued_run(system, "slow", {})
    client.cookies.clear()

    response = client.get(f"/runs/{run_id}", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Fruns%2F{run_id}"


# What the page shows


def test_unfinished_run_shows_status_cancel_and_refreshes_without_js(
    client: TestClient, system: System
) -> None:
    run_id = queued_run(system, "report", {"customer": "ACME", "express": True})

    page = client.get(f"/runs/{run_id}").text

    assert "data-state-label>Queued<" in page
    assert "The flow is waiting to start..." in page
    assert re.search(r'role="status" aria-live="polite"', page)
    assert "indicator-queued" in page and 'class="spinner"' in page
    assert f'action="/runs/{run_id}/cancel"' in page and ">Cancel</button>" in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert "Rerun" not in page and "New Inputs" not in page
    assert "<dt>Customer name</dt>" in page and "<dd>ACME</dd>" in page
    assert "<dt>Express delivery</dt>" in page and "<dd>Yes</dd>" in page
    assert '<details class="run-log">' in page
    assert '<script type="module" src="/static/js/run-page.js' in page


def test_finished_run_shows_result_rerun_and_new_inputs(
    client: TestClient, system: System
) -> None:
    run_id = finished_report(client, system)

    page = client.get(f"/runs/{run_id}").text

    assert "data-state-label>Succeeded<" in page
    assert "indicator-succeeded" in page
    assert "The flow completed successfully." in page
    assert 'http-equiv="refresh"' not in page
    assert ">Cancel</button>" not in page
    assert f'action="/runs/{run_id}/rerun"' in page and ">Rerun</button>" in page
    new_inputs = re.search(r'<a class="button" href="([^"]+)">New Inputs</a>', page)
    assert new_inputs is not None
    assert new_inputs.group(1).replace("&amp;", "&") == (
        "/interactive-flows/report?customer=ACME&items=1&regions=north"
    )
    frame = re.search(r"<iframe[^>]*>", page, re.S)
    assert frame is not None
    assert 'sandbox="allow-scripts"' in frame.group(0)
    assert "allow-same-origin" not in page
    assert f'src="/runs/{run_id}/result"' in frame.group(0)
    assert "Counted" in page  # the log


def test_failed_run_shows_the_failure(client: TestClient, system: System) -> None:
    run_id = start_failing(client)
    wait_until_finished(system, run_id)

    page = client.get(f"/runs/{run_id}").text

    assert "data-state-label>Failed<" in page
    assert "indicator-failed" in page
    assert "The source system did not answer." in page
    assert "<iframe" not in page


def test_long_log_is_cut_to_its_end(
    client: TestClient, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_page, "LOG_LINES_SHOWN", 2)
    run_id = finished_report(client, system)

    page = client.get(f"/runs/{run_id}").text

    assert "Showing the last 2 entries." in page
    assert page.count('class="log-line ') == 2
    assert "The flow completed successfully.</span>" in page


def test_run_page_escapes_inputs(client: TestClient, system: System) -> None:
    run_id = queued_run(system, "report", {"customer": "<b>ACME</b>"})

    page = client.get(f"/runs/{run_id}").text

    assert "<b>ACME</b>" not in page
    assert "&lt;b&gt;ACME&lt;/b&gt;" in page


# The HTML result


def test_result_carries_its_own_restrictive_policy(
    client: TestClient, system: System
) -> None:
    run_id = finished_report(client, system)

    response = client.get(f"/runs/{run_id}/result")

    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert nonce is not None
    assert policy == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'nonce-{nonce.group(1)}'; frame-ancestors 'self'; "
        "sandbox allow-scripts"
    )
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    body = response.text
    assert "<h1>Report for ACME</h1>" in body
    assert body.count(f'nonce="{nonce.group(1)}"') == 1
    assert "<script>document.title" in body  # the flow's script, without a nonce
    assert "postMessage" in body

    again = client.get(f"/runs/{run_id}/result").headers["content-security-policy"]
    assert again != policy, "the nonce is new for every response"


def test_result_of_a_run_without_html_is_not_found(
    client: TestClient, system: System
) -> None:
    run_id = start_failing(client)
    wait_until_finished(system, run_id)

    assert client.get(f"/runs/{run_id}/result").status_code == 404


# Live events


def test_events_send_the_backlog_then_live_events_until_the_end(
    client: TestClient, system: System
) -> None:
    run_id = start_slow(client)

    with client.stream("GET", f"/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())

    assert body.startswith("retry: ")
    events = sse_events(body)
    seqs = [int(event["id"]) for event in events]
    assert seqs == list(range(1, len(seqs) + 1)), "every event once, in order"
    kinds = [event["event"] for event in events]
    payloads = [json.loads(event["data"]) for event in events]
    assert kinds[0] == "state" and payloads[0]["state"] == "queued"
    assert "status" in kinds and "log" in kinds
    assert payloads[-1]["kind"] == "state" and payloads[-1]["state"] == "succeeded"
    status = payloads[kinds.index("status")]
    assert status["message"] == "Working..." and status["progress"] == 10


def test_events_resume_after_the_last_event_id(
    client: TestClient, system: System
) -> None:
    run_id = start_slow(client)
    wait_until_finished(system, run_id)

    by_header = client.get(f"/runs/{run_id}/events", headers={"last-event-id": "2"})
    by_query = client.get(f"/runs/{run_id}/events?after=2")

    for response in (by_header, by_query):
        seqs = [int(event["id"]) for event in sse_events(response.text)]
        assert seqs[0] == 3
        assert seqs == list(range(3, 3 + len(seqs)))


def test_events_of_a_run_seen_to_its_end_say_no_content(
    client: TestClient, system: System
) -> None:
    run_id = start_slow(client)
    run = wait_until_finished(system, run_id)
    with system.db.reading() as session:
        last = max(
            session.scalars(select(RunEvent.seq).where(RunEvent.run_id == run.id))
        )

    response = client.get(
        f"/runs/{run_id}/events", headers={"last-event-id": str(last)}
    )

    # 204 is what stops EventSource from reconnecting.
    assert response.status_code == 204


def test_events_send_heartbeats_while_quiet(
    client: TestClient, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_page, "HEARTBEAT_SECONDS", 0.05)
    # Quiet from well before the run's sleep ends, however late the page opens.
    monkeypatch.setattr(run_page, "SETTLE_SECONDS", 0.02)
    run_id = start_slow(client)

    body = client.get(f"/runs/{run_id}/events").text

    assert ": heartbeat" in body
    assert json.loads(sse_events(body)[-1]["data"])["state"] == "succeeded"


def test_events_bad_last_event_id_is_refused(
    client: TestClient, system: System
) -> None:
    run_id = queued_run(system, "slow", {})

    response = client.get(f"/runs/{run_id}/events", headers={"last-event-id": "x"})

    assert response.status_code == 400


async def test_event_stream_drops_duplicates_and_fills_gaps(system: System) -> None:
    run_id = queued_run_without_user(system)
    events = await run_page.open_event_stream(system, run_id, 0, lambda _user: True)
    assert events is not None
    stream = events.messages()

    # The stored queued event, with the retry time; subscribed by now.
    first = await anext(stream)
    assert first.startswith("retry:")
    assert re.findall(r"^id: (\d+)$", first, re.MULTILINE) == ["1"]

    system.bus.publish(run_id, _payload(1, "state", state="queued"))  # again
    system.bus.publish(run_id, _payload(2, "log"))
    # Seq 3 is published before it is stored, as the runner does with logs.
    system.bus.publish(run_id, _payload(4, "state", state="succeeded"))
    store_later = asyncio.create_task(_store_event(system, run_id, 3, delay=0.15))

    rest = [message async for message in stream]
    await store_later
    await events.close()
    assert system.bus.watcher_count(run_id) == 0

    sent_ids = re.findall(r"^id: (\d+)$", "".join(rest), re.MULTILINE)
    assert sent_ids == ["2", "3", "4"]


def queued_run_without_user(system: System) -> str:
    apply_flow(system, SLOW)
    with system.db.transaction() as session:
        return create_run(session, "slow", {}, "api").id


def _payload(seq: int, kind: str, **extra: object) -> dict[str, object]:
    return {
        "seq": seq,
        "kind": kind,
        "level": "info",
        "message": f"event {seq}",
        "at": utcnow().isoformat(),
        **extra,
    }


async def _store_event(system: System, run_id: str, seq: int, delay: float) -> None:
    await asyncio.sleep(delay)
    with system.db.transaction() as session:
        session.add(RunEvent(run_id=run_id, seq=seq, kind="log", message="late"))


# Cancel and Rerun


def test_cancel_stops_a_queued_run(client: TestClient, system: System) -> None:
    run_id = queued_run(system, "slow", {})
    token = csrf_token(client.get(f"/runs/{run_id}").text)

    response = client.post(
        f"/runs/{run_id}/cancel", data={"_csrf": token}, follow_redirects=False
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/runs/{run_id}"
    assert wait_until_finished(system, run_id).state == states.CANCELLED
    assert "data-state-label>Cancelled<" in client.get(f"/runs/{run_id}").text


def wait_until_running(system: System, run_id: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with system.db.reading() as session:
            if session.get_one(Run, run_id).state == states.RUNNING:
                return
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not start")


def test_cancel_stops_a_running_run(client: TestClient, system: System) -> None:
    form = client.get("/interactive-flows/slow").text
    token = csrf_token(form)
    started = client.post(
        "/interactive-flows/slow/runs",
        data={"_csrf": token, "seconds": "30"},
        follow_redirects=False,
    )
    run_id = run_id_of(started.headers["location"])
    wait_until_running(system, run_id)

    client.post(f"/runs/{run_id}/cancel", data={"_csrf": token})

    assert wait_until_finished(system, run_id, timeout=5).state == states.CANCELLED


@pytest.mark.parametrize("action", ["cancel", "rerun"])
def test_cancel_and_rerun_need_the_csrf_token(
    client: TestClient, system: System, action: str
) -> None:
    run_id = queued_run(system, "slow", {})

    response = client.post(f"/runs/{run_id}/{action}", data={})

    assert response.status_code == 403
    assert count_runs(system) == 1
    with system.db.reading() as session:
        assert session.get_one(Run, run_id).state == states.QUEUED


def test_cancel_of_another_users_run_is_not_found(
    client: TestClient, system: System
) -> None:
    run_id = queued_run(system, "slow", {})
    sign_in(client, "bob")
    token = csrf_token(client.get("/interactive-flows").text)

    response = client.post(f"/runs/{run_id}/cancel", data={"_csrf": token})

    assert response.status_code == 404
    with system.db.reading() as session:
        assert session.get_one(Run, run_id).state == states.QUEUED


def test_rerun_starts_the_same_flow_with_the_same_inputs(
    client: TestClient, system: System
) -> None:
    first_id = finished_report(client, system)
    token = csrf_token(client.get(f"/runs/{first_id}").text)

    response = client.post(
        f"/runs/{first_id}/rerun", data={"_csrf": token}, follow_redirects=False
    )

    assert response.status_code == 303
    second_id = run_id_of(response.headers["location"])
    assert second_id != first_id
    with system.db.reading() as session:
        first, second = session.get_one(Run, first_id), session.get_one(Run, second_id)
        assert second.trigger == "rerun"
        assert second.flow_id == first.flow_id
        assert second.inputs == first.inputs


# Schema changes


REPORT_V2 = REPORT.replace(
    "regions: {type: array, title: Regions, items: {type: string}}",
    "priority: {type: integer, title: Priority}",
).replace("required: [customer]", "required: [customer, priority]")


def test_schema_change_keeps_old_runs_and_refuses_plain_rerun(
    client: TestClient, system: System
) -> None:
    run_id = finished_report(client, system)
    apply_flow(system, REPORT_V2)

    page = client.get(f"/runs/{run_id}").text
    # The inputs the run had, under the titles of the version it ran.
    assert "<dt>Regions</dt>" in page and "<dd>north</dd>" in page
    assert "flow version 1" in page

    rerun = client.post(f"/runs/{run_id}/rerun", data={"_csrf": csrf_token(page)})
    assert rerun.status_code == 422
    assert count_runs(system, "report") == 1
    assert 'value="ACME"' in rerun.text
    assert "Priority" in rerun.text and 'aria-invalid="true"' in rerun.text
    assert "regions" not in rerun.text.lower().split("<main", 1)[1].split("</form>")[0]


def test_new_inputs_link_after_schema_change_drops_old_fields(
    client: TestClient, system: System
) -> None:
    run_id = finished_report(client, system)
    apply_flow(system, REPORT_V2)
    page = client.get(f"/runs/{run_id}").text
    link = re.search(r'href="([^"]+)">New Inputs', page)
    assert link is not None

    form = client.get(link.group(1).replace("&amp;", "&"))

    assert form.status_code == 200
    assert 'value="ACME"' in form.text
    assert 'name="priority"' in form.text
    assert 'aria-invalid="true"' not in form.text  # a new required field, empty
    assert 'name="regions"' not in form.text
