"""A real `flowdesk serve` killed with SIGKILL while runs are in flight: after a
restart no run is left `running`, the interrupted ones are `failed` with a clear
message, the queued ones have run, and every run is still recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from flowdesk.db.models import Run
from flowdesk.runs import states
from flowdesk.runs.service import create_run, run_events
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.support.server import LiveServer
from tests.support.stored_flows import apply_flow

pytestmark = pytest.mark.slow

SLOW = """
    id: slow
    name: Slow
    steps:
      - status: Working for a long time...
      - sleep: 60
"""

QUICK = """
    id: quick
    name: Quick
    steps:
      - set: {done: true}
"""

SERVER_ENV = {"FLOWDESK_MAX_CONCURRENT_RUNS": "2", "FLOWDESK_LOAD_EXAMPLES": "false"}


def states_of(system: System) -> dict[str, Run]:
    with system.db.reading() as session:
        return {run.id: run for run in session.scalars(select(Run))}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def test_crash_recovery_after_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "server-data"
    system = open_system(Settings(data_dir=data_dir, load_examples=False))
    apply_flow(system, SLOW)
    apply_flow(system, QUICK)
    # Two slow runs take both slots of the first server; two quick ones wait.
    with system.db.transaction() as session:
        slow = [create_run(session, "slow", {}, "api").id for _ in range(2)]
    with system.db.transaction() as session:
        quick = [create_run(session, "quick", {}, "api").id for _ in range(2)]

    first = LiveServer(data_dir, env=SERVER_ENV).start()
    try:
        wait_until(
            lambda: all(states_of(system)[i].state == states.RUNNING for i in slow),
            timeout=10,
            what="both slow runs are running",
        )
        assert [states_of(system)[i].state for i in quick] == [states.QUEUED] * 2
        first.kill()
    finally:
        first.stop()
    # Nobody cleaned up: the kill left them as they were.
    assert [states_of(system)[i].state for i in slow] == [states.RUNNING] * 2

    second = LiveServer(data_dir, env=SERVER_ENV).start()
    try:
        wait_until(
            lambda: all(
                run.state in states.FINISHED for run in states_of(system).values()
            ),
            timeout=10,
            what="every run has finished",
        )
    finally:
        second.stop()

    runs = states_of(system)
    assert set(runs) == {*slow, *quick}
    for run_id in slow:
        run = runs[run_id]
        assert run.state == states.FAILED
        assert run.error == states.INTERRUPTED_MESSAGE
        assert run.status_message == states.INTERRUPTED_MESSAGE
        assert run.finished_at is not None
    for run_id in quick:
        assert runs[run_id].state == states.SUCCEEDED
        assert runs[run_id].outputs == {"done": True}
    with system.db.reading() as session:
        interrupted = run_events(session, slow[0])
    assert [event.data["state"] for event in interrupted if event.kind == "state"] == [
        "queued",
        "running",
        "failed",
    ]
    system.db.dispose()
