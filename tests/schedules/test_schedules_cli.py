"""`flowdesk schedules list` and the overview behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowdesk.cli.main import app
from flowdesk.schedules.scheduler import Scheduler
from flowdesk.schedules.service import schedule_overview
from flowdesk.system import System
from tests.schedules.conftest import FrozenClock, apply_scheduled

APPLIED = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)

NIGHTLY = """
    id: nightly
    name: Nightly
    schedule:
      cron: "30 2 * * *"
      timezone: Europe/Berlin
    steps:
      - log: tick
"""
PAUSED = """
    id: paused
    name: Paused
    schedule:
      cron: "@daily"
      enabled: false
    steps:
      - log: tick
"""
UNSCHEDULED = """
    id: by-hand
    name: By hand
    interactive:
      enabled: true
    steps:
      - log: tick
"""


@pytest.fixture
def scheduled(system: System) -> System:
    for text in (NIGHTLY, PAUSED, UNSCHEDULED):
        apply_scheduled(system, text, APPLIED)
    return system


def test_schedule_overview_lists_next_fire_and_last_run(scheduled: System) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # 02:30 in Berlin
    [run] = Scheduler(scheduled.db, now=clock).tick().runs

    with scheduled.db.reading() as session:
        summaries = schedule_overview(session, clock())

    nightly, paused = summaries
    assert (nightly.flow_id, nightly.cron, nightly.timezone) == (
        "nightly",
        "30 2 * * *",
        "Europe/Berlin",
    )
    assert nightly.next_fire is not None
    assert nightly.next_fire.isoformat() == "2026-03-03T02:30:00+01:00"
    assert nightly.last_run is not None and nightly.last_run.id == run.id
    assert (paused.flow_id, paused.enabled, paused.next_fire) == ("paused", False, None)
    assert paused.last_run is None


def test_schedules_list_prints_a_table(
    scheduled: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWDESK_DATA_DIR", str(scheduled.settings.data_dir))
    monkeypatch.setenv("FLOWDESK_LOAD_EXAMPLES", "false")

    result = CliRunner().invoke(app, ["schedules", "list"])

    assert result.exit_code == 0, result.output
    for text in ("flow", "next fire", "last run", "nightly", "30 2 * * *"):
        assert text in result.output
    assert "Europe/Berlin" in result.output
    assert "disabled" in result.output
    assert "by-hand" not in result.output


def test_schedules_list_on_a_fresh_data_dir_says_there_are_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWDESK_DATA_DIR", str(tmp_path))

    result = CliRunner().invoke(app, ["schedules", "list"])

    assert result.exit_code == 0, result.output
    assert "No flow has a schedule." in result.output
