"""Schedules in the database: which flows are scheduled and when they last fired,
firing one fire time (its fire row and its run in one transaction), and the
overview `flowdesk schedules list` prints."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowdesk.db import Database
from flowdesk.db.models import Flow, FlowVersion, Run, ScheduleFire
from flowdesk.db.types import utcnow
from flowdesk.errors import InputError
from flowdesk.flows.cache import versions
from flowdesk.flows.definition import ScheduleSettings
from flowdesk.flows.service import list_flows
from flowdesk.runs import states
from flowdesk.runs.service import (
    create_run,
    load_current_version,
    new_run_id,
    state_event,
)
from flowdesk.schedules.timing import check_schedule, parse_schedule

logger = logging.getLogger(__name__)

TRIGGER = "schedule"


@dataclass(frozen=True)
class ScheduledFlow:
    """A flow whose current version has an enabled schedule."""

    flow_id: str
    version_id: int
    applied_at: datetime  # when the current version was saved
    schedule: ScheduleSettings
    last_fire: datetime | None  # the latest fire time on record, if any


def scheduled_flows(session: Session) -> list[ScheduledFlow]:
    """Every flow a scheduler should look at: not deleted, schedule enabled."""
    rows = session.execute(
        select(Flow.id, FlowVersion.id, FlowVersion.created_at, FlowVersion.definition)
        .join(FlowVersion, Flow.current_version_id == FlowVersion.id)
        .where(Flow.deleted_at.is_(None), Flow.scheduled.is_(True))
        .order_by(Flow.id)
    )
    last_fires = last_fire_times(session)

    flows = []
    for flow_id, version_id, applied_at, data in rows:
        schedule = versions.load(version_id, data).definition.schedule
        if schedule is None or not schedule.enabled:
            continue
        flows.append(
            ScheduledFlow(
                flow_id, version_id, applied_at, schedule, last_fires.get(flow_id)
            )
        )
    return flows


def last_fire_times(session: Session) -> dict[str, datetime]:
    """The latest recorded fire time of each flow that ever fired."""
    latest = func.max(ScheduleFire.fire_time)
    rows = session.execute(
        select(ScheduleFire.flow_id, latest).group_by(ScheduleFire.flow_id)
    )
    return {flow_id: fire_time for flow_id, fire_time in rows if fire_time}


def fire_schedule(db: Database, flow_id: str, fire_time: datetime) -> Run | None:
    """Record `fire_time` of the flow's schedule and create its run, in one
    transaction. Returns None when another scheduler fired that time first, or
    when the flow is no longer scheduled.

    Inputs that no longer fit the input schema give a run that failed at once,
    with the reason as its message, so a broken schedule is seen, not skipped."""
    try:
        with db.transaction() as session:
            run = _scheduled_run(session, flow_id)
            if run is None:
                return None
            session.flush()
            # The unique (flow_id, fire_time) makes the loser of a race fail
            # here, and its whole transaction, run included, is rolled back.
            session.add(
                ScheduleFire(
                    flow_id=flow_id,
                    fire_time=fire_time,
                    run_id=run.id,
                    created_at=run.created_at,
                )
            )
            session.flush()
    except IntegrityError:
        if not _fired_already(db, flow_id, fire_time):
            raise
        logger.debug("schedule of %s at %s was fired elsewhere", flow_id, fire_time)
        return None
    return run


def _scheduled_run(session: Session, flow_id: str) -> Run | None:
    flow = session.get(Flow, flow_id)
    if flow is None or flow.deleted_at is not None or not flow.scheduled:
        return None
    loaded = load_current_version(session, flow_id)
    schedule = loaded.definition.schedule
    if schedule is None or not schedule.enabled:
        return None

    try:
        return create_run(session, flow_id, dict(schedule.inputs), TRIGGER)
    except InputError as exc:
        reason = f"The schedule's inputs do not fit the flow's input schema: {exc}"
        return _failed_run(session, flow_id, loaded.version_id, schedule.inputs, reason)


def _failed_run(
    session: Session,
    flow_id: str,
    version_id: int,
    inputs: dict[str, Any],
    reason: str,
) -> Run:
    # create_run refuses invalid input before adding anything, so the record of
    # the refused fire is written here, already finished.
    now = utcnow()
    run = Run(
        id=new_run_id(),
        flow_id=flow_id,
        version_id=version_id,
        state=states.FAILED,
        trigger=TRIGGER,
        inputs=dict(inputs),
        status_message=reason,
        error=reason,
        created_at=now,
        finished_at=now,
    )
    session.add(run)
    event = state_event(run.id, 1, states.FAILED, reason, now)
    event.level = "error"
    session.add(event)
    return run


def _fired_already(db: Database, flow_id: str, fire_time: datetime) -> bool:
    with db.reading() as session:
        found = session.scalar(
            select(ScheduleFire.id).where(
                ScheduleFire.flow_id == flow_id, ScheduleFire.fire_time == fire_time
            )
        )
    return found is not None


@dataclass(frozen=True)
class ScheduleSummary:
    """One line of the schedules overview."""

    flow_id: str
    flow_name: str
    cron: str
    timezone: str
    enabled: bool
    next_fire: datetime | None  # in the schedule's timezone; None when disabled
    problem: str | None  # why the schedule cannot fire, when it cannot
    last_run: Run | None  # the newest run a schedule started


def schedule_overview(session: Session, now: datetime) -> list[ScheduleSummary]:
    """Every flow that has a schedule, enabled or not, with its next fire time
    after `now` and its last scheduled run."""
    summaries = []
    for flow in list_flows(session):
        version = flow.current_version
        if version is None:
            continue
        schedule = versions.load(version.id, version.definition).definition.schedule
        if schedule is None:
            continue

        problem = check_schedule(schedule.cron, schedule.timezone)
        next_fire = None
        if problem is None and flow.scheduled and schedule.enabled:
            clock = parse_schedule(schedule.cron, schedule.timezone)
            next_fire = clock.next_after(now).astimezone(clock.zone)
        summaries.append(
            ScheduleSummary(
                flow_id=flow.id,
                flow_name=flow.name,
                cron=schedule.cron,
                timezone=schedule.timezone,
                enabled=flow.scheduled and schedule.enabled,
                next_fire=next_fire,
                problem=problem,
                last_run=_last_scheduled_run(session, flow.id),
            )
        )
    return summaries


def _last_scheduled_run(session: Session, flow_id: str) -> Run | None:
    query = (
        select(Run)
        .where(Run.flow_id == flow_id, Run.trigger == TRIGGER)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()
