"""Several schedulers on one database: each fire time starts exactly one run,
because the database refuses a second fire row for the same (flow, time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from flowdesk.db.models import Run, ScheduleFire
from flowdesk.schedules.scheduler import Scheduler
from flowdesk.schedules.service import fire_schedule
from flowdesk.system import System, open_system
from tests.schedules.conftest import FrozenClock, apply_scheduled

pytestmark = pytest.mark.postgres

T = TypeVar("T")

APPLIED = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
FIRE_TIME = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)

FLOW = """
    id: nightly
    name: Nightly
    schedule:
      cron: "0 6 * * *"
    steps:
      - log: tick
"""


@pytest.fixture
def other_process(any_system: System) -> Iterator[System]:
    """A second system on the same database, as another scheduler process has."""
    other = open_system(any_system.settings, migrate=False)
    yield other
    other.db.dispose()


def counts(system: System) -> tuple[int, int]:
    with system.db.reading() as session:
        runs = session.scalar(select(func.count()).select_from(Run))
        fires = session.scalar(select(func.count()).select_from(ScheduleFire))
    return runs or 0, fires or 0


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException] = [RuntimeError("did not finish")] * len(calls)

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def test_fire_schedule_twice_for_one_time_starts_one_run(
    any_system: System, other_process: System
) -> None:
    apply_scheduled(any_system, FLOW, APPLIED)

    first = fire_schedule(any_system.db, "nightly", FIRE_TIME)
    second = fire_schedule(other_process.db, "nightly", FIRE_TIME)

    assert first is not None
    assert second is None
    assert counts(any_system) == (1, 1)


def test_fire_schedule_racing_threads_start_one_run_per_time(
    any_system: System, other_process: System
) -> None:
    apply_scheduled(any_system, FLOW, APPLIED)

    for day in range(5):
        fire_time = FIRE_TIME + timedelta(days=day)
        dbs = (any_system.db, other_process.db, other_process.db)
        results = at_once(
            *(partial(fire_schedule, db, "nightly", fire_time) for db in dbs)
        )
        assert sum(result is not None for result in results) == 1

    assert counts(any_system) == (5, 5)


def test_scheduler_instances_racing_for_a_due_time_start_one_run(
    any_system: System, other_process: System
) -> None:
    apply_scheduled(any_system, FLOW, APPLIED)
    clock = FrozenClock(FIRE_TIME + timedelta(milliseconds=3))
    here = Scheduler(any_system.db, now=clock)
    there = Scheduler(other_process.db, now=clock)

    ticks = at_once(here.tick, there.tick)

    assert sorted(len(tick.runs) for tick in ticks) == [0, 1]
    assert counts(any_system) == (1, 1)
    with any_system.db.reading() as session:
        fire = session.scalars(select(ScheduleFire)).one()
        run = session.scalars(select(Run)).one()
    assert (fire.fire_time, fire.run_id, run.trigger) == (FIRE_TIME, run.id, "schedule")


def test_scheduler_loser_of_a_race_keeps_firing_later_times(
    any_system: System, other_process: System
) -> None:
    apply_scheduled(any_system, FLOW, APPLIED)
    clock = FrozenClock(FIRE_TIME)
    here = Scheduler(any_system.db, now=clock)
    there = Scheduler(other_process.db, now=clock)
    here.tick()
    assert there.tick().runs == []

    clock.advance(days=1)

    assert len(there.tick().runs) == 1
    assert here.tick().runs == []
    assert counts(any_system) == (2, 2)
