"""The scheduler: fires each scheduled flow at its fire times.

It runs as an asyncio task inside `flowdesk serve` and as the `flowdesk
scheduler` process. Its only state is the `schedule_fires` table, so any number
of schedulers can share a database: each fire time gets one fire row and one
run, whoever inserts the row first. The loop sleeps until the next fire time of
any schedule, re-reading the schedules at least every `RELOAD_SECONDS` (or when
woken) so that newly applied flows are picked up.

Missed fire times (the scheduler was down) follow the schedule's `misfire`:
`skip` drops them, `once` starts one catch-up run for all of them, recorded
under the latest missed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flowdesk.db import Database
from flowdesk.db.models import Run
from flowdesk.db.types import utcnow
from flowdesk.errors import FlowdeskError
from flowdesk.runs import states
from flowdesk.runs.recovery import sweep
from flowdesk.schedules.service import ScheduledFlow, fire_schedule, scheduled_flows
from flowdesk.schedules.timing import ScheduleClock, parse_schedule

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 30.0
# A fire time up to this late still counts as on time, so that a busy database
# or a quick restart does not turn it into a misfire.
MISFIRE_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Due:
    """What one schedule needs at a moment."""

    fire_time: datetime | None  # fire this time now; None: nothing to fire
    late: bool  # the fire is a catch-up for missed times
    missed: datetime | None  # the latest fire time skipped as missed
    next_fire: datetime  # the next fire time after the moment


def due_fire(
    clock: ScheduleClock,
    misfire: str,
    since: datetime,
    now: datetime,
    grace: timedelta = MISFIRE_GRACE,
) -> Due:
    """Decide for a schedule whose fire times up to `since` are dealt with."""
    first = clock.next_after(since)
    if first > now:
        return Due(None, late=False, missed=None, next_fire=first)

    # Of all the fire times in (since, now] only the latest can still fire:
    # earlier ones are either covered by it or were missed.
    latest = clock.latest_at_or_before(now)
    following = clock.next_after(now)
    if now - latest <= grace:
        return Due(latest, late=False, missed=None, next_fire=following)
    if misfire == "once":
        return Due(latest, late=True, missed=None, next_fire=following)
    return Due(None, late=False, missed=latest, next_fire=following)


@dataclass(frozen=True)
class Tick:
    runs: list[Run]  # the runs this tick created
    next_fire: datetime | None  # the next fire time of any schedule


class Scheduler:
    """Fires due schedules on `tick()`; `run()` ticks whenever one is due.

    `now` is the clock (tests freeze it); `dispatch` receives the id of each
    queued run once it is committed (None: leave runs queued for others)."""

    def __init__(
        self,
        db: Database,
        *,
        dispatch: Callable[[str], None] | None = None,
        now: Callable[[], datetime] = utcnow,
        reload_seconds: float = RELOAD_SECONDS,
        grace: timedelta = MISFIRE_GRACE,
    ) -> None:
        self.db = db
        self.dispatch = dispatch
        self.now = now
        self.reload_seconds = reload_seconds
        self.grace = grace
        # Versions never change, so a version's parsed schedule is kept.
        self._clocks: dict[int, ScheduleClock | None] = {}
        self._reported_misses: dict[str, datetime] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def tick(self) -> Tick:
        """Fire every schedule that is due now, each at most once."""
        now = self.now()
        with self.db.reading() as session:
            flows = scheduled_flows(session)

        runs = []
        next_fire: datetime | None = None
        for flow in flows:
            clock = self._clock(flow)
            if clock is None:
                continue
            since = flow.applied_at
            if flow.last_fire is not None:
                since = max(since, flow.last_fire)
            due = due_fire(clock, flow.schedule.misfire, since, now, self.grace)

            if due.fire_time is not None:
                run = self._fire(flow.flow_id, due.fire_time, due.late)
                if run is not None:
                    runs.append(run)
            elif due.missed is not None:
                self._report_miss(flow.flow_id, due.missed)
            if next_fire is None or due.next_fire < next_fire:
                next_fire = due.next_fire

        self._clocks = {
            flow.version_id: self._clocks[flow.version_id]
            for flow in flows
            if flow.version_id in self._clocks
        }
        return Tick(runs, next_fire)

    def _clock(self, flow: ScheduledFlow) -> ScheduleClock | None:
        if flow.version_id not in self._clocks:
            try:
                clock: ScheduleClock | None = parse_schedule(
                    flow.schedule.cron, flow.schedule.timezone
                )
            except FlowdeskError as exc:
                # Applying a flow checks its schedule; this is for a stored one
                # that the current tz database no longer accepts.
                logger.error("schedule of %s cannot fire: %s", flow.flow_id, exc)
                clock = None
            self._clocks[flow.version_id] = clock
        return self._clocks[flow.version_id]

    def _fire(self, flow_id: str, fire_time: datetime, late: bool) -> Run | None:
        try:
            run = fire_schedule(self.db, flow_id, fire_time)
        except Exception:
            logger.exception("schedule of %s could not fire for %s", flow_id, fire_time)
            return None
        if run is None:
            return None

        kind = "caught up on missed times" if late else "fired"
        if run.state == states.FAILED:
            logger.warning(
                "schedule of %s %s for %s: run %s failed: %s",
                flow_id,
                kind,
                fire_time.isoformat(),
                run.id,
                run.error,
            )
            return run
        logger.info(
            "schedule of %s %s for %s: run %s queued",
            flow_id,
            kind,
            fire_time.isoformat(),
            run.id,
        )
        if self.dispatch is not None:
            self.dispatch(run.id)
        return run

    def _report_miss(self, flow_id: str, missed: datetime) -> None:
        # Every tick sees the same missed times again until the next fire; say
        # it once.
        if self._reported_misses.get(flow_id) == missed:
            return
        self._reported_misses[flow_id] = missed
        logger.info(
            "schedule of %s missed its fire times up to %s; skipped (misfire: skip)",
            flow_id,
            missed.isoformat(),
        )

    async def run(self) -> None:
        """Tick until cancelled, sleeping until the next fire time of any
        schedule but at most `reload_seconds`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            next_fire = None
            try:
                next_fire = (await asyncio.to_thread(self.tick)).next_fire
            except Exception:
                logger.exception("the scheduler could not read the schedules")
            await self._sleep(next_fire)

    async def _sleep(self, next_fire: datetime | None) -> None:
        assert self._wake is not None
        delay = self.reload_seconds
        if next_fire is not None:
            delay = min(delay, (next_fire - self.now()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.0))
        self._wake.clear()

    def wake(self) -> None:
        """Re-read the schedules now (after a flow was applied); any thread."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


async def run_scheduler(system: System) -> None:
    """The `flowdesk scheduler` process: fire schedules until SIGINT or SIGTERM.

    With the local executor it executes the runs it creates, so that it is
    useful on its own; with Celery it hands them to the workers, and sweeps up
    after dead workers as the web processes do."""
    executes = system.settings.executor == "local"
    await system.executor.start()
    scheduler = Scheduler(system.db, dispatch=system.executor.submit)

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    ticking = loop.create_task(scheduler.run(), name="scheduler")
    sweeping = None if executes else loop.create_task(sweep(system), name="sweep")
    logger.info(
        "scheduler started; %s",
        "it executes its runs" if executes else "it hands its runs to the workers",
    )

    try:
        await stopping.wait()
    finally:
        for task in (ticking, sweeping):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await system.executor.stop()
        logger.info("scheduler stopped")
