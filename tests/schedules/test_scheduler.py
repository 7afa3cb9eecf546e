"""The scheduler against a real database, with its clock frozen by the test."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from flowdesk.db.models import Flow, FlowVersion, Run, RunEvent, ScheduleFire
from flowdesk.db.types import utcnow
from flowdesk.flows.cache import versions
from flowdesk.flows.service import delete_flow, list_interactive_flows
from flowdesk.runs import states
from flowdesk.schedules.scheduler import Scheduler
from flowdesk.system import System
from tests.schedules.conftest import FrozenClock, apply_scheduled
from tests.support.stored_flows import apply_flow

BERLIN = ZoneInfo("Europe/Berlin")
# Sunday 1 March 2026, 06:00 in Berlin: when the test flows were applied.
APPLIED = datetime(2026, 3, 1, 6, 0, tzinfo=BERLIN)
SEVEN = datetime(2026, 3, 1, 7, 0, tzinfo=BERLIN)

REPORT_FLOW = """
    id: morning-report
    name: Morning report
    interactive:
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string}
    schedule:
      cron: "0 7 * * *"
      timezone: Europe/Berlin
      inputs: {customer: ACME}
      misfire: MISFIRE
    steps:
      - log: Report for {{ inputs.customer }}
"""


def report_flow(misfire: str = "skip", cron: str = "0 7 * * *") -> str:
    return REPORT_FLOW.replace("MISFIRE", misfire).replace("0 7 * * *", cron)


def runs_of(system: System, flow_id: str) -> list[Run]:
    with system.db.reading() as session:
        query = select(Run).where(Run.flow_id == flow_id).order_by(Run.created_at)
        return list(session.scalars(query))


def fire_times(system: System, flow_id: str) -> list[datetime]:
    with system.db.reading() as session:
        query = (
            select(ScheduleFire.fire_time)
            .where(ScheduleFire.flow_id == flow_id)
            .order_by(ScheduleFire.fire_time)
        )
        return list(session.scalars(query))


def test_scheduler_fires_a_due_schedule_as_a_schedule_run(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN + timedelta(milliseconds=5))
    dispatched: list[str] = []
    scheduler = Scheduler(system.db, now=clock, dispatch=dispatched.append)

    tick = scheduler.tick()

    [run] = runs_of(system, "morning-report")
    assert [created.id for created in tick.runs] == [run.id] == dispatched
    assert run.trigger == "schedule"
    assert run.state == states.QUEUED
    assert run.inputs == {"customer": "ACME"}
    assert fire_times(system, "morning-report") == [SEVEN.astimezone(UTC)]
    assert tick.next_fire == datetime(2026, 3, 2, 7, 0, tzinfo=BERLIN)


def test_scheduler_before_the_fire_time_waits_for_it(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN - timedelta(seconds=1))
    scheduler = Scheduler(system.db, now=clock)

    tick = scheduler.tick()

    assert tick.runs == []
    assert runs_of(system, "morning-report") == []
    assert tick.next_fire == SEVEN


def test_scheduler_fires_each_fire_time_once(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN)
    scheduler = Scheduler(system.db, now=clock)

    scheduler.tick()
    clock.advance(seconds=20)
    assert scheduler.tick().runs == []
    clock.set(SEVEN + timedelta(days=1))
    assert len(scheduler.tick().runs) == 1

    assert fire_times(system, "morning-report") == [
        SEVEN.astimezone(UTC),
        (SEVEN + timedelta(days=1)).astimezone(UTC),
    ]


def test_scheduler_restarted_knows_what_already_fired(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN + timedelta(seconds=2))
    Scheduler(system.db, now=clock).tick()

    restarted = Scheduler(system.db, now=clock)

    assert restarted.tick().runs == []
    assert len(runs_of(system, "morning-report")) == 1


def test_scheduler_fires_a_slightly_late_time(system: System) -> None:
    # A busy database or a quick restart makes a fire late, not missed.
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN + timedelta(seconds=40))

    assert len(Scheduler(system.db, now=clock).tick().runs) == 1


def test_scheduler_ignores_times_before_the_flow_was_applied(system: System) -> None:
    apply_scheduled(system, report_flow(), SEVEN + timedelta(seconds=10))
    clock = FrozenClock(SEVEN + timedelta(seconds=20))

    tick = Scheduler(system.db, now=clock).tick()

    assert tick.runs == []
    assert tick.next_fire == SEVEN + timedelta(days=1)


def test_scheduler_misfire_skip_after_downtime(system: System) -> None:
    apply_scheduled(system, report_flow("skip"), APPLIED)
    clock = FrozenClock(SEVEN)
    Scheduler(system.db, now=clock).tick()

    # Down from Sunday after the fire until Wednesday noon.
    clock.set(datetime(2026, 3, 4, 12, 0, tzinfo=BERLIN))
    restarted = Scheduler(system.db, now=clock)
    tick = restarted.tick()

    assert tick.runs == []
    assert tick.next_fire == datetime(2026, 3, 5, 7, 0, tzinfo=BERLIN)
    clock.set(datetime(2026, 3, 5, 7, 0, 1, tzinfo=BERLIN))
    assert len(restarted.tick().runs) == 1
    assert len(runs_of(system, "morning-report")) == 2


def test_scheduler_misfire_once_catches_up_with_one_run(system: System) -> None:
    apply_scheduled(system, report_flow("once"), APPLIED)
    clock = FrozenClock(SEVEN)
    Scheduler(system.db, now=clock).tick()

    # Down from Sunday after the fire until Wednesday noon: three times missed.
    clock.set(datetime(2026, 3, 4, 12, 0, tzinfo=BERLIN))
    restarted = Scheduler(system.db, now=clock)
    tick = restarted.tick()

    [catch_up] = tick.runs
    assert catch_up.trigger == "schedule"
    assert tick.next_fire == datetime(2026, 3, 5, 7, 0, tzinfo=BERLIN)
    clock.advance(minutes=5)
    assert restarted.tick().runs == []
    clock.set(datetime(2026, 3, 5, 7, 0, tzinfo=BERLIN))
    assert len(restarted.tick().runs) == 1

    # The catch-up is recorded under the latest missed time.
    assert fire_times(system, "morning-report") == [
        datetime(2026, 3, 1, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 4, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 5, 6, 0, tzinfo=UTC),
    ]


def test_scheduler_misfire_once_catches_up_after_a_never_running_scheduler(
    system: System,
) -> None:
    apply_scheduled(system, report_flow("once"), APPLIED)
    clock = FrozenClock(datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN))

    tick = Scheduler(system.db, now=clock).tick()

    assert len(tick.runs) == 1
    assert fire_times(system, "morning-report") == [
        datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    ]


def test_scheduler_inputs_failing_the_schema_give_a_failed_run(
    system: System,
) -> None:
    """Applying a flow checks its schedule's inputs, so the bad inputs are put
    into the stored version directly, as a version saved before its input
    schema gained a rule would have them."""
    version_id = apply_scheduled(system, report_flow(), APPLIED)
    with system.db.transaction() as session:
        version = session.get_one(FlowVersion, version_id)
        data: dict[str, Any] = dict(version.definition)
        data["schedule"] = {**data["schedule"], "inputs": {"customer": 42}}
        session.execute(
            update(FlowVersion)
            .where(FlowVersion.id == version_id)
            .values(definition=data)
        )
    versions.clear()
    dispatched: list[str] = []
    clock = FrozenClock(SEVEN)

    tick = Scheduler(system.db, now=clock, dispatch=dispatched.append).tick()

    [run] = runs_of(system, "morning-report")
    assert [failed.id for failed in tick.runs] == [run.id]
    assert dispatched == []
    assert run.trigger == "schedule"
    assert run.state == states.FAILED
    assert run.inputs == {"customer": 42}
    assert run.finished_at is not None
    assert run.error is not None
    assert run.error.startswith(
        "The schedule's inputs do not fit the flow's input schema: customer:"
    )
    assert run.status_message == run.error
    with system.db.reading() as session:
        [event] = session.scalars(select(RunEvent).where(RunEvent.run_id == run.id))
    assert (event.kind, event.data, event.level) == (
        "state",
        {"state": "failed"},
        "error",
    )
    assert event.message == run.error
    assert fire_times(system, "morning-report") == [SEVEN.astimezone(UTC)]


SETTINGS_FLOWS = """
    id: ID
    name: NAME
    interactive:
      enabled: INTERACTIVE
    SCHEDULE
    steps:
      - log: hello
"""
SCHEDULE = """schedule:
      cron: "0 7 * * *"
      timezone: Europe/Berlin
      enabled: ENABLED"""


def settings_flow(flow_id: str, interactive: bool, schedule: str | None) -> str:
    text = SETTINGS_FLOWS.replace("ID", flow_id).replace("NAME", flow_id.title())
    text = text.replace("INTERACTIVE", "true" if interactive else "false")
    if schedule is None:
        return text.replace("SCHEDULE", "")
    block = SCHEDULE.replace("ENABLED", "true" if schedule == "on" else "false")
    return text.replace("SCHEDULE", block)


def test_scheduler_interactive_and_scheduled_are_independent(system: System) -> None:
    cases = {
        "neither": (False, None),
        "interactive-only": (True, None),
        "scheduled-only": (False, "on"),
        "both": (True, "on"),
        "interactive-schedule-off": (True, "off"),
        "schedule-off": (False, "off"),
    }
    for flow_id, (interactive, schedule) in cases.items():
        apply_scheduled(system, settings_flow(flow_id, interactive, schedule), APPLIED)

    tick = Scheduler(system.db, now=FrozenClock(SEVEN)).tick()

    assert sorted(run.flow_id for run in tick.runs) == ["both", "scheduled-only"]
    with system.db.reading() as session:
        listed = [flow.id for flow in list_interactive_flows(session, None)]
        flags = {
            flow.id: (flow.interactive, flow.scheduled)
            for flow in session.scalars(select(Flow))
        }
    assert sorted(listed) == ["both", "interactive-only", "interactive-schedule-off"]
    assert flags == {
        "neither": (False, False),
        "interactive-only": (True, False),
        "scheduled-only": (False, True),
        "both": (True, True),
        "interactive-schedule-off": (True, False),
        "schedule-off": (False, False),
    }


def test_scheduler_ignores_deleted_flows(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    with system.db.transaction() as session:
        delete_flow(session, "morning-report")

    tick = Scheduler(system.db, now=FrozenClock(SEVEN)).tick()

    assert tick.runs == []
    assert tick.next_fire is None


def test_scheduler_picks_up_a_changed_schedule_on_the_next_reload(
    system: System,
) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    clock = FrozenClock(SEVEN)
    scheduler = Scheduler(system.db, now=clock)
    scheduler.tick()

    apply_scheduled(system, report_flow(cron="30 8 * * *"), SEVEN + timedelta(hours=1))
    clock.set(datetime(2026, 3, 1, 8, 30, tzinfo=BERLIN))
    assert len(scheduler.tick().runs) == 1
    clock.set(datetime(2026, 3, 2, 7, 0, tzinfo=BERLIN))
    tick = scheduler.tick()

    assert tick.runs == []
    assert tick.next_fire == datetime(2026, 3, 2, 8, 30, tzinfo=BERLIN)


def test_scheduler_disabling_a_schedule_stops_it(system: System) -> None:
    apply_scheduled(system, report_flow(), APPLIED)
    disabled = report_flow().replace(
        "misfire: skip", "misfire: skip\n      enabled: false"
    )
    apply_scheduled(system, disabled, APPLIED + timedelta(minutes=1))

    tick = Scheduler(system.db, now=FrozenClock(SEVEN)).tick()

    assert tick.runs == []
    assert tick.next_fire is None


def test_scheduler_fires_at_the_spring_forward_gap_once(system: System) -> None:
    gap_flow = report_flow(cron="30 2 * * *")
    apply_scheduled(system, gap_flow, datetime(2026, 3, 28, 12, tzinfo=BERLIN))
    clock = FrozenClock(datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN))
    scheduler = Scheduler(system.db, now=clock)

    assert len(scheduler.tick().runs) == 1
    clock.advance(minutes=45)
    tick = scheduler.tick()

    assert tick.runs == []
    assert tick.next_fire == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


async def test_scheduler_run_wakes_at_the_fire_time(system: System) -> None:
    """The loop sleeps until the next fire time (here ~0.4 s away on a shifted
    clock), not until its next 30-second reload."""
    applied = SEVEN - timedelta(seconds=0.5)
    apply_scheduled(system, report_flow(cron="* * * * *"), applied)
    real_start = utcnow()
    shift = SEVEN - timedelta(seconds=0.4) - real_start
    scheduler = Scheduler(system.db, now=lambda: utcnow() + shift)

    started = time.monotonic()
    task = asyncio.get_running_loop().create_task(scheduler.run())
    try:
        fired = await wait_for_runs(system, "morning-report", timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    elapsed = time.monotonic() - started
    assert len(fired) == 1
    assert 0.3 <= elapsed < 3


async def test_scheduler_wake_reads_new_flows_at_once(system: System) -> None:
    scheduler = Scheduler(system.db, reload_seconds=600)
    task = asyncio.get_running_loop().create_task(scheduler.run())
    try:
        await asyncio.sleep(0.3)  # the first tick found nothing and sleeps
        # Its latest fire time has just passed, so it fires as soon as it is read.
        flow = report_flow("once", cron="* * * * *")
        apply_scheduled(system, flow, utcnow() - timedelta(minutes=2))
        scheduler.wake()
        fired = await wait_for_runs(system, "morning-report", timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert len(fired) == 1


async def wait_for_runs(system: System, flow_id: str, timeout: float) -> list[Run]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(runs_of, system, flow_id)
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"no run of {flow_id} within {timeout} s")


def test_scheduler_plain_flow_without_schedule_stays_quiet(system: System) -> None:
    apply_flow(system, settings_flow("plain", True, None))

    tick = Scheduler(system.db, now=FrozenClock(SEVEN)).tick()

    assert tick.runs == []
    assert tick.next_fire is None
