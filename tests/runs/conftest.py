"""A system whose local executor is running, with at most two runs at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowdesk.db.models import Run, RunEvent
from flowdesk.runs import states
from flowdesk.runs.service import get_run, run_events
from flowdesk.settings import Settings
from flowdesk.system import System, open_system


@pytest.fixture
async def running_system(tmp_path: Path) -> AsyncIterator[System]:
    settings = Settings(
        data_dir=tmp_path / "data", load_examples=False, max_concurrent_runs=2
    )
    system = open_system(settings)
    await system.executor.start()
    yield system
    await system.executor.stop()
    system.db.dispose()


def stored_run(system: System, run_id: str) -> tuple[Run, list[RunEvent]]:
    with system.db.reading() as session:
        return get_run(session, run_id), run_events(session, run_id)


async def wait_for_state(
    system: System, run_id: str, wanted: str, timeout: float = 5.0
) -> Run:
    """Poll the database (the test, not flowdesk, polls) until the run is in
    `wanted`, failing after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run, _events = stored_run(system, run_id)
        if run.state == wanted:
            return run
        if run.state in states.FINISHED or asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} is {run.state}, expected {wanted}")
        await asyncio.sleep(0.01)


async def finished_state(system: System, run_id: str) -> str:
    """The stored state of a run once this system's executor let go of it."""
    await system.executor.wait(run_id)
    run, _events = stored_run(system, run_id)
    return run.state
