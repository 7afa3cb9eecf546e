"""A run's life through the local executor: queued, running, then succeeded,
failed or cancelled, with its log, status, outputs and result stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest.mock import ANY

import pytest
from sqlalchemy import select

from flowdesk.db.models import FlowVersion
from flowdesk.flows.cache import versions
from flowdesk.runs import states
from flowdesk.runs.runner import execute_run
from flowdesk.runs.service import cancel_run, create_run, start_run
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.runs.conftest import stored_run, wait_for_state
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow

GREETER = """
    id: greeter
    name: Greeter
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [name]
        properties:
          name: {type: string}
          times: {type: integer, default: 2}
    steps:
      - status: Greeting {{ inputs.name }}...
        progress: 50
      - log: Hello {{ inputs.name }} number 0
      - log: Hello {{ inputs.name }} number 1
      - set: {greeting: "Hello {{ inputs.name }}", count: "{{ inputs.times }}"}
      - html: <h1>{{ greeting }}</h1>
"""

FAILING = """
    id: picky
    name: Picky
    steps:
      - log: Looking at the file
      - if: "{{ true }}"
        then:
          - fail: The file has no 'price' column.
      - log: never reached
"""


async def test_runner_successful_run_stores_outputs_html_and_log(
    running_system: System,
) -> None:
    apply_flow(running_system, GREETER)

    run = start_run(running_system, "greeter", {"name": "Ada & Bo"}, "form")
    final = await running_system.executor.wait(run.id)

    assert final == states.SUCCEEDED
    stored, events = stored_run(running_system, run.id)
    assert stored.state == states.SUCCEEDED
    assert stored.status_message == states.DEFAULT_MESSAGES[states.SUCCEEDED]
    assert stored.outputs == {"greeting": "Hello Ada & Bo", "count": 2}
    # Values are escaped in the HTML result.
    assert stored.html == "<h1>Hello Ada &amp; Bo</h1>"
    assert stored.progress == 100.0
    assert stored.error is None and stored.error_step is None
    assert stored.started_at is not None and stored.finished_at is not None
    assert stored.created_at <= stored.started_at <= stored.finished_at

    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert [(e.kind, e.message) for e in events] == [
        ("state", states.DEFAULT_MESSAGES[states.QUEUED]),
        ("state", states.DEFAULT_MESSAGES[states.RUNNING]),
        ("status", "Greeting Ada & Bo..."),
        ("log", "Hello Ada & Bo number 0"),
        ("log", "Hello Ada & Bo number 1"),
        ("state", states.DEFAULT_MESSAGES[states.SUCCEEDED]),
    ]
    assert [e.data["state"] for e in events if e.kind == "state"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert events[2].data == {"progress": 50}


async def test_runner_failed_run_stores_the_message_and_step_path(
    running_system: System,
) -> None:
    apply_flow(running_system, FAILING)

    run = start_run(running_system, "picky", {}, "cli")
    final = await running_system.executor.wait(run.id)

    assert final == states.FAILED
    stored, events = stored_run(running_system, run.id)
    assert stored.state == states.FAILED
    assert stored.error == "The file has no 'price' column."
    assert stored.error_step == "steps[1].then[0]"
    assert stored.status_message == "The file has no 'price' column."
    assert stored.outputs is None
    assert stored.finished_at is not None

    last = events[-1]
    assert (last.kind, last.level, last.data) == (
        "state",
        "error",
        {"state": "failed", "step": "steps[1].then[0]", "first_step_at": ANY},
    )
    assert "never reached" not in [event.message for event in events]


async def test_runner_run_longer_than_the_limit_fails(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", load_examples=False, max_run_seconds=0.2
    )
    system = open_system(settings)
    apply_flow(system, SLEEPY_FLOW)
    await system.executor.start()
    try:
        run = start_run(system, "sleepy", {"seconds": 30}, "api")
        final = await system.executor.wait(run.id)
    finally:
        await system.executor.stop()

    assert final == states.FAILED
    stored, _events = stored_run(system, run.id)
    assert stored.error == "The flow ran longer than 0.2 seconds."
    system.db.dispose()


async def test_runner_cancelled_running_run_records_its_end(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    run = start_run(running_system, "sleepy", {"seconds": 30}, "form")
    await wait_for_state(running_system, run.id, states.RUNNING)

    assert await cancel_run(running_system, run.id) is True

    stored, events = stored_run(running_system, run.id)
    assert stored.state == states.CANCELLED
    assert stored.status_message == states.DEFAULT_MESSAGES[states.CANCELLED]
    assert stored.finished_at is not None
    # Whether its first step had begun when the cancel came depends on timing.
    final = dict(events[-1].data or {})
    final.pop("first_step_at", None)
    assert final == {"state": "cancelled"}
    assert await cancel_run(running_system, run.id) is False


async def test_runner_cancelled_queued_run_never_starts(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    # Two sleepers fill both slots, so the third waits.
    busy = [
        start_run(running_system, "sleepy", {"seconds": 30}, "form") for _ in range(2)
    ]
    waiting = start_run(running_system, "sleepy", {"seconds": 0}, "form")
    for run in busy:
        await wait_for_state(running_system, run.id, states.RUNNING)

    assert await cancel_run(running_system, waiting.id) is True
    for run in busy:
        await cancel_run(running_system, run.id)
    await running_system.executor.wait(waiting.id)

    stored, events = stored_run(running_system, waiting.id)
    assert stored.state == states.CANCELLED
    assert stored.started_at is None
    assert [e.data["state"] for e in events] == ["queued", "cancelled"]


async def test_runner_stopping_the_executor_cancels_what_runs(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    run = start_run(running_system, "sleepy", {"seconds": 30}, "form")
    await wait_for_state(running_system, run.id, states.RUNNING)

    await running_system.executor.stop()

    stored, _events = stored_run(running_system, run.id)
    assert stored.state == states.CANCELLED


@pytest.mark.parametrize("trigger", ["form", "link", "rerun", "schedule", "api", "cli"])
async def test_runner_records_the_trigger(running_system: System, trigger: str) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    run = start_run(running_system, "sleepy", {"seconds": 0}, trigger)
    await running_system.executor.wait(run.id)

    stored, _events = stored_run(running_system, run.id)
    assert (stored.trigger, stored.state) == (trigger, states.SUCCEEDED)


def test_runner_unstartable_version_fails_the_run(system: System) -> None:
    """A stored definition the engine refuses fails its run once, clearly,
    instead of staying queued and being retried for ever."""
    apply_flow(system, "id: broken\nname: Broken\nsteps:\n  - log: hi\n")
    with system.db.transaction() as session:
        run_id = create_run(session, "broken", {}, "cli").id
        version = session.scalars(select(FlowVersion)).one()
        version.definition = {**version.definition, "steps": [{"log": "{{ oops"}]}
    versions.clear()  # as in a new process, which compiles the stored version

    assert asyncio.run(execute_run(system, run_id)) is None

    run, events = stored_run(system, run_id)
    assert run.state == states.FAILED
    assert "cannot run" in (run.error or "")
    assert [event.data for event in events if event.kind == "state"][-1] == {
        "state": states.FAILED
    }
