"""Cancel requests kept in the database: the process that executes a run reads
them with its heartbeat, so that a cancel asked for in another process reaches
the run without the event bus; the same heartbeat stops a copy of a run that
another process has taken over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from flowdesk.db.models import Run
from flowdesk.runs import states
from flowdesk.runs.executor import heartbeat_seconds
from flowdesk.runs.service import cancel_run, create_run, start_run
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.runs.conftest import stored_run, wait_for_state
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow

# The lowest the settings allow: a heartbeat every half second.
STALE_RUN_SECONDS = 2.0
BEAT = heartbeat_seconds(STALE_RUN_SECONDS)


@pytest.fixture
async def beating_system(tmp_path: Path) -> AsyncIterator[System]:
    settings = Settings(
        data_dir=tmp_path / "data",
        load_examples=False,
        stale_run_seconds=STALE_RUN_SECONDS,
    )
    system = open_system(settings)
    apply_flow(system, SLEEPY_FLOW)
    await system.executor.start()
    yield system
    await system.executor.stop()
    system.db.dispose()


@pytest.fixture
def other_process(beating_system: System) -> Iterator[System]:
    """A second process on the same database whose executor holds no run and
    whose event bus reaches no one else, as a web process cut off from Redis."""
    other = open_system(beating_system.settings, migrate=False)
    yield other
    other.db.dispose()


async def test_cancel_request_from_another_process_stops_the_run_at_a_heartbeat(
    beating_system: System, other_process: System
) -> None:
    run = start_run(beating_system, "sleepy", {"seconds": 30}, "api")
    await wait_for_state(beating_system, run.id, states.RUNNING)

    asked_at = time.monotonic()
    # False: the other process cannot stop the run itself and does not wait.
    assert await cancel_run(other_process, run.id) is False
    stored, _events = stored_run(beating_system, run.id)
    assert stored.cancel_requested_at is not None

    await wait_for_state(beating_system, run.id, states.CANCELLED, timeout=BEAT + 5)
    took = time.monotonic() - asked_at

    stored, events = stored_run(beating_system, run.id)
    assert stored.status_message == states.DEFAULT_MESSAGES[states.CANCELLED]
    assert stored.finished_at is not None
    assert events[-1].data is not None and events[-1].data["state"] == "cancelled"
    # One heartbeat, and the time to record the end on a busy machine.
    assert took < BEAT + 2.0


async def test_cancel_request_of_a_queued_run_cancels_it_at_once(
    beating_system: System, other_process: System
) -> None:
    with other_process.db.transaction() as session:  # nobody executes it
        run = create_run(session, "sleepy", {}, "api")

    assert await cancel_run(other_process, run.id) is True

    stored, _events = stored_run(beating_system, run.id)
    assert stored.state == states.CANCELLED
    assert stored.cancel_requested_at is None


async def test_cancel_request_is_not_made_for_a_finished_run(
    beating_system: System, other_process: System
) -> None:
    run = start_run(beating_system, "sleepy", {"seconds": 0}, "api")
    await beating_system.executor.wait(run.id)

    assert await cancel_run(other_process, run.id) is False

    stored, _events = stored_run(beating_system, run.id)
    assert stored.state == states.SUCCEEDED
    assert stored.cancel_requested_at is None


async def test_heartbeat_stops_a_copy_of_a_run_another_process_took_over(
    beating_system: System,
) -> None:
    """This process was taken for dead and the run's next attempt runs
    elsewhere: the copy here stops, and the other's record stays as it is."""
    run = start_run(beating_system, "sleepy", {"seconds": 30}, "api")
    await wait_for_state(beating_system, run.id, states.RUNNING)
    with beating_system.db.transaction() as session:
        session.execute(
            update(Run).where(Run.id == run.id).values(owner="worker-9:42", attempt=2)
        )

    final = await asyncio.wait_for(beating_system.executor.wait(run.id), BEAT + 5)

    assert final == states.CANCELLED  # here; the database knows better
    stored, _events = stored_run(beating_system, run.id)
    assert (stored.state, stored.owner, stored.attempt) == (
        states.RUNNING,
        "worker-9:42",
        2,
    )
    assert stored.finished_at is None
