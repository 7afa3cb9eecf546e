"""Recovery of runs left behind: a `running` run whose process is gone becomes
`failed` with the interrupted message, or `queued` again for another attempt
where its flow has `retry_interrupted`; queued runs are dispatched again."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from flowdesk.db.models import Run
from flowdesk.db.types import utcnow
from flowdesk.runs import states
from flowdesk.runs.recovery import (
    STALE_AFTER,
    UNSTORED_EVENT_ROOM,
    _end_interrupted_run,
    _Seen,
    fail_interrupted,
    process_owner,
    redispatch_queued,
)
from flowdesk.runs.service import create_run
from flowdesk.system import System
from tests.runs.conftest import finished_state, stored_run, wait_for_state
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow

HOST = socket.gethostname()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# Reports which attempt it is, so that a test can tell a retried run's outputs.
RETRIED_FLOW = """
    id: retried
    name: Retried
    retry_interrupted: 2
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          customer: {type: string}
    steps:
      - set: {attempt: "{{ run.attempt }}", customer: "{{ inputs.customer }}"}
"""


def queued_run(
    system: System,
    *,
    age: timedelta = timedelta(0),
    flow_id: str = "sleepy",
    inputs: dict[str, object] | None = None,
) -> str:
    with system.db.transaction() as session:
        run = create_run(session, flow_id, inputs or {"seconds": 0}, "form")
        run.created_at = utcnow() - age
    return run.id


def running_run(
    system: System,
    owner: str,
    heartbeat: datetime | None,
    *,
    flow_id: str = "sleepy",
    inputs: dict[str, object] | None = None,
    attempt: int = 1,
) -> str:
    """A run as a process leaves it when it dies mid-run."""
    run_id = queued_run(system, flow_id=flow_id, inputs=inputs)
    with system.db.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                state=states.RUNNING,
                started_at=utcnow(),
                owner=owner,
                heartbeat_at=heartbeat,
                status_message="Halfway there",
                progress=50.0,
                attempt=attempt,
            )
        )
    return run_id


@pytest.fixture
def sleepy_system(running_system: System) -> System:
    apply_flow(running_system, SLEEPY_FLOW)
    return running_system


@pytest.fixture
def retried_system(sleepy_system: System) -> System:
    apply_flow(sleepy_system, RETRIED_FLOW)
    return sleepy_system


async def test_recovery_fails_a_run_whose_process_died(sleepy_system: System) -> None:
    run_id = running_run(sleepy_system, f"{HOST}:{dead_pid()}", utcnow())

    assert fail_interrupted(sleepy_system) == [run_id]

    run, events = stored_run(sleepy_system, run_id)
    assert run.state == states.FAILED
    assert run.error == states.INTERRUPTED_MESSAGE
    assert run.status_message == states.INTERRUPTED_MESSAGE
    assert run.finished_at is not None
    last = events[-1]
    assert (last.kind, last.level, last.data) == ("state", "error", {"state": "failed"})
    # Numbered past what the dead process may have published but not stored.
    assert [event.seq for event in events] == [1, UNSTORED_EVENT_ROOM + 2]
    assert fail_interrupted(sleepy_system) == []


async def test_recovery_leaves_a_run_of_a_live_process_alone(
    sleepy_system: System,
) -> None:
    # The parent of the test process is alive and on this host.
    run_id = running_run(sleepy_system, f"{HOST}:{os.getppid()}", utcnow())

    assert fail_interrupted(sleepy_system) == []
    run, _events = stored_run(sleepy_system, run_id)
    assert run.state == states.RUNNING


async def test_recovery_judges_other_hosts_by_their_heartbeat(
    sleepy_system: System,
) -> None:
    fresh = running_run(sleepy_system, "worker-7:1234", utcnow())
    stale = running_run(
        sleepy_system, "worker-7:1235", utcnow() - STALE_AFTER - timedelta(seconds=1)
    )
    silent = running_run(sleepy_system, "worker-7:1236", None)

    assert sorted(fail_interrupted(sleepy_system)) == sorted([stale, silent])
    run, _events = stored_run(sleepy_system, fresh)
    assert run.state == states.RUNNING


async def test_recovery_fails_a_run_left_by_an_earlier_process_with_this_id(
    sleepy_system: System,
) -> None:
    # A restarted container often gets the same host name and process id.
    run_id = running_run(sleepy_system, process_owner(), utcnow())

    assert fail_interrupted(sleepy_system) == [run_id]


async def test_recovery_dispatches_queued_runs_again(sleepy_system: System) -> None:
    first, second = queued_run(sleepy_system), queued_run(sleepy_system)

    picked = redispatch_queued(sleepy_system)

    assert picked == [first, second]
    assert await finished_state(sleepy_system, first) == states.SUCCEEDED
    assert await finished_state(sleepy_system, second) == states.SUCCEEDED


async def test_recovery_sweep_takes_only_runs_queued_for_a_while(
    sleepy_system: System,
) -> None:
    old = queued_run(sleepy_system, age=timedelta(minutes=1))
    new = queued_run(sleepy_system)

    assert redispatch_queued(sleepy_system, older_than=timedelta(seconds=5)) == [old]
    assert await finished_state(sleepy_system, old) == states.SUCCEEDED
    run, _events = stored_run(sleepy_system, new)
    assert run.state == states.QUEUED


async def test_recovery_end_recorded_elsewhere_is_not_overwritten(
    sleepy_system: System,
) -> None:
    """A process taken for dead that resumes (frozen, cut off) must not replace
    the interrupted end another process recorded for its run."""
    with sleepy_system.db.transaction() as session:
        run = create_run(session, "sleepy", {"seconds": 0.5}, "form")
    sleepy_system.executor.submit(run.id)
    await wait_for_state(sleepy_system, run.id, states.RUNNING)

    with sleepy_system.db.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run.id)
            .values(state=states.FAILED, error=states.INTERRUPTED_MESSAGE)
        )

    assert await finished_state(sleepy_system, run.id) == states.FAILED
    stored, _events = stored_run(sleepy_system, run.id)
    assert stored.error == states.INTERRUPTED_MESSAGE
    assert stored.outputs is None


async def test_recovery_retries_a_run_whose_flow_asks_for_it(
    retried_system: System,
) -> None:
    run_id = running_run(
        retried_system,
        f"{HOST}:{dead_pid()}",
        utcnow(),
        flow_id="retried",
        inputs={"customer": "ACME"},
    )

    assert fail_interrupted(retried_system) == [run_id]

    assert await finished_state(retried_system, run_id) == states.SUCCEEDED
    run, events = stored_run(retried_system, run_id)
    assert run.attempt == 2
    # A fresh start: the context holds only what the second attempt set.
    assert run.outputs == {"attempt": 2, "customer": "ACME"}
    assert run.inputs == {"customer": "ACME"}
    assert run.error is None
    assert run.owner == retried_system.owner
    retry = next(event for event in events if event.level == "warning")
    assert retry.kind == "state"
    assert retry.data == {"state": "queued", "attempt": 2}
    assert retry.message == (
        "The worker running this flow stopped; starting again (attempt 2 of 3)."
    )
    assert [event.data["state"] for event in events if event.kind == "state"] == [
        "queued",
        "queued",
        "running",
        "succeeded",
    ]
    retry_seq = UNSTORED_EVENT_ROOM + 2
    assert [event.seq for event in events] == [
        1,
        *range(retry_seq, retry_seq + len(events) - 1),
    ]


async def test_recovery_retried_run_waits_as_queued_with_its_status_reset(
    retried_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not executed, so that the test sees the run as a busy worker pool would.
    submitted: list[str] = []
    monkeypatch.setattr(retried_system.executor, "submit", submitted.append)
    run_id = running_run(
        retried_system, "worker-7:1234", None, flow_id="retried", attempt=2
    )

    assert fail_interrupted(retried_system) == [run_id]

    assert submitted == [run_id]
    run, _events = stored_run(retried_system, run_id)
    assert (run.state, run.attempt) == (states.QUEUED, 3)
    assert run.status_message == states.retry_message(3, 3)
    assert (run.owner, run.heartbeat_at, run.started_at, run.progress) == (
        None,
        None,
        None,
        None,
    )
    assert run.finished_at is None


async def test_recovery_fails_a_run_that_used_up_its_attempts(
    retried_system: System,
) -> None:
    run_id = running_run(
        retried_system, f"{HOST}:{dead_pid()}", utcnow(), flow_id="retried", attempt=3
    )

    assert fail_interrupted(retried_system) == [run_id]

    run, events = stored_run(retried_system, run_id)
    assert (run.state, run.attempt) == (states.FAILED, 3)
    assert run.error == (
        "The flow was interrupted because the process running it stopped, on each "
        "of its 3 attempts; start it again to retry."
    )
    assert run.status_message == run.error
    assert (events[-1].level, events[-1].data) == ("error", {"state": "failed"})


async def test_recovery_cancels_a_dead_run_that_was_asked_to_stop(
    retried_system: System,
) -> None:
    run_id = running_run(
        retried_system, f"{HOST}:{dead_pid()}", utcnow(), flow_id="retried"
    )
    with retried_system.db.transaction() as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(cancel_requested_at=utcnow())
        )

    assert fail_interrupted(retried_system) == [run_id]

    run, events = stored_run(retried_system, run_id)
    assert (run.state, run.attempt) == (states.CANCELLED, 1)
    assert events[-1].data == {"state": "cancelled"}


async def test_recovery_leaves_alone_a_later_attempt_started_meanwhile(
    retried_system: System,
) -> None:
    """Another sweep queued the run again and a worker runs its next attempt:
    what this sweep read about the first attempt no longer applies."""
    run_id = running_run(
        retried_system, "worker-8:99", utcnow(), flow_id="retried", attempt=2
    )
    with retried_system.db.reading() as session:
        version_id = session.get_one(Run, run_id).version_id
    seen_before = _Seen(run_id, version_id, attempt=1, cancel_requested=False)

    assert _end_interrupted_run(retried_system, seen_before, utcnow()) is None

    run, _events = stored_run(retried_system, run_id)
    assert (run.state, run.attempt, run.owner) == (states.RUNNING, 2, "worker-8:99")


async def test_recovery_stale_attempt_that_wakes_up_leaves_the_next_alone(
    retried_system: System,
) -> None:
    """An execution taken for dead whose run was started again (here under the
    same owner, which only the attempt tells apart) must neither store nor
    announce anything about the run."""
    with retried_system.db.transaction() as session:
        run = create_run(session, "sleepy", {"seconds": 0.5}, "form")
    async with retried_system.bus.subscribe(run.id) as heard:
        retried_system.executor.submit(run.id)
        await wait_for_state(retried_system, run.id, states.RUNNING)
        with retried_system.db.transaction() as session:
            session.execute(
                update(Run)
                .where(Run.id == run.id)
                .values(attempt=2, status_message="The second attempt")
            )

        await retried_system.executor.wait(run.id)

        stored, events = stored_run(retried_system, run.id)
        assert (stored.state, stored.attempt) == (states.RUNNING, 2)
        assert stored.status_message == "The second attempt"
        assert stored.outputs is None and stored.finished_at is None
        assert [e.data["state"] for e in events if e.kind == "state"] == [
            "queued",
            "running",
        ]
        announced = []
        while (event := await heard.get(0.1)) is not None:
            announced.append(event)
        assert "succeeded" not in [event.get("state") for event in announced]


async def test_recovery_sweep_says_nothing_at_info_of_runs_that_merely_wait(
    sleepy_system: System, caplog: pytest.LogCaptureFixture
) -> None:
    queued_run(sleepy_system, age=timedelta(minutes=1))
    caplog.set_level(logging.DEBUG, logger="flowdesk.runs.recovery")

    assert len(redispatch_queued(sleepy_system, older_than=timedelta(seconds=5))) == 1

    said = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "flowdesk.runs.recovery"
    ]
    assert said == [(logging.DEBUG, "offered 1 queued runs to the executor again")]
