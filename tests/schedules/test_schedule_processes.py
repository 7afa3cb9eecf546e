"""Real processes: `flowdesk serve` and `flowdesk scheduler` firing a schedule.

Both tests store the flow with `flowdesk flows apply` before the process starts
and then date its version ten minutes back, as if it had been applied then and
the server had been down since. Its cron fires once an hour, at the minute that
was five minutes ago, and its misfire policy is `once`; so the process must
catch up with one run right after it starts. That proves a real process reads
the schedule, fires it through the database and executes the run, within
seconds rather than at the next minute boundary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from flowdesk.db import Database
from flowdesk.db.models import FlowVersion, Run, ScheduleFire
from flowdesk.db.types import utcnow
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

FLOW = """\
id: catch-up
name: Catch up
schedule:
  cron: "MINUTE * * * *"
  timezone: Europe/Berlin
  inputs: {}
  misfire: once
steps:
  - set: {greeting: "hello from the schedule"}
"""


def flowdesk(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLOWDESK_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "flowdesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass(frozen=True)
class MissedFlow:
    data_dir: Path
    db: Database
    fire_time: datetime  # the fire time that was missed


@pytest.fixture
def missed_flow(tmp_path: Path) -> Iterator[MissedFlow]:
    """A data dir whose one flow missed its hourly fire five minutes ago."""
    data_dir = tmp_path / "server-data"
    missed = (utcnow() - timedelta(minutes=5)).replace(second=0, microsecond=0)
    flow_file = tmp_path / "catch-up.yaml"
    flow_file.write_text(FLOW.replace("MINUTE", str(missed.minute)))
    applied = flowdesk(data_dir, "flows", "apply", str(flow_file))
    assert applied.returncode == 0, applied.stderr

    db = Database(f"sqlite:///{data_dir.resolve() / 'flowdesk.db'}")
    with db.transaction() as session:
        session.execute(
            update(FlowVersion)
            .where(FlowVersion.flow_id == "catch-up")
            .values(created_at=utcnow() - timedelta(minutes=10))
        )
    yield MissedFlow(data_dir, db, missed)
    db.dispose()


def wait_for_finished_run(db: Database, timeout: float) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.reading() as session:
            query = select(Run).where(Run.flow_id == "catch-up")
            runs = list(session.scalars(query))
        if runs and runs[0].finished_at is not None:
            [run] = runs
            return run
        time.sleep(0.1)
    pytest.fail(f"no finished scheduled run within {timeout} s")


def assert_one_caught_up_run(missed: MissedFlow, run: Run) -> None:
    assert run.trigger == "schedule"
    assert run.state == "succeeded", run.error
    assert run.outputs == {"greeting": "hello from the schedule"}
    with missed.db.reading() as session:
        [fire] = session.scalars(select(ScheduleFire))
    assert (fire.fire_time, fire.run_id) == (missed.fire_time, run.id)


# LiveServer.start leaves its log file open in the test process.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_serve_catches_up_a_missed_schedule_right_after_start(
    missed_flow: MissedFlow,
) -> None:
    server = LiveServer(missed_flow.data_dir)
    server.start()
    try:
        run = wait_for_finished_run(missed_flow.db, timeout=20)
        assert_one_caught_up_run(missed_flow, run)
        assert "schedule of catch-up caught up on missed times" in server.log()
    finally:
        server.stop()


def test_scheduler_process_fires_and_executes_runs_itself(
    missed_flow: MissedFlow,
) -> None:
    env = {**os.environ, "FLOWDESK_DATA_DIR": str(missed_flow.data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "flowdesk", "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run = wait_for_finished_run(missed_flow.db, timeout=20)
        assert_one_caught_up_run(missed_flow, run)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)

    assert process.returncode == 0, output
    assert "scheduler stopped" in output
