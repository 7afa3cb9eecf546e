"""Recovery of runs left behind: a `running` run whose process is gone becomes
`failed` with the interrupted message; queued runs are dispatched again."""

from __future__ import annotations

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


def queued_run(system: System, *, age: timedelta = timedelta(0)) -> str:
    with system.db.transaction() as session:
        run = create_run(session, "sleepy", {"seconds": 0}, "form")
        run.created_at = utcnow() - age
    return run.id


def running_run(system: System, owner: str, heartbeat: datetime | None) -> str:
    """A run as a process leaves it when it dies mid-run."""
    run_id = queued_run(system)
    with system.db.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                state=states.RUNNING,
                started_at=utcnow(),
                owner=owner,
                heartbeat_at=heartbeat,
                status_message=states.DEFAULT_MESSAGES[states.RUNNING],
            )
        )
    return run_id


@pytest.fixture
def sleepy_system(running_system: System) -> System:
    apply_flow(running_system, SLEEPY_FLOW)
    return running_system


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
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
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
