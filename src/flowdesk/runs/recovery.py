"""Runs left behind by a process that died: a `running` run whose process is
gone is queued again where its flow asks for that (`retry_interrupted`) and
marked failed as interrupted otherwise, and `queued` runs are dispatched
again."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flowdesk.db.models import Run, RunEvent
from flowdesk.db.types import utcnow
from flowdesk.errors import DefinitionError
from flowdesk.flows.cache import versions
from flowdesk.runs import states
from flowdesk.runs.service import event_payload, last_event_seq, state_event

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

# A running run whose heartbeat is older than this is taken for dead even when
# its owner's host is another machine (the default of FLOWDESK_STALE_RUN_SECONDS).
STALE_AFTER = timedelta(seconds=60)
# A queued run no executor has picked up after this long is dispatched again.
ORPHAN_AFTER = timedelta(seconds=5)
# The sweep looks for both this often, or more often when runs go stale sooner:
# a dead run is then failed at most STALE_AFTER plus one period after its
# last heartbeat.
SWEEP_SECONDS = 15.0
LOCK_WAIT_MS = 2000
# A process that dies may have published events it never stored (those of its
# last flush delay, see runs.runner). The event recovery adds is numbered past
# room for that many, so that a page which saw them does not drop it as one it
# had; a page skips such a gap after a moment. Ten thousand is far more than a
# run records in one flush delay.
UNSTORED_EVENT_ROOM = 10_000


def sweep_seconds(stale_run_seconds: float) -> float:
    return min(SWEEP_SECONDS, stale_run_seconds / 3)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str | None) -> bool:
    if not owner:
        return True
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        # The caller skips the runs this process holds, so this one was left by
        # an earlier process with the same id (a container restarted as PID 1).
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class _Seen:
    """A running run as the sweep read it."""

    run_id: str
    version_id: int
    attempt: int
    cancel_requested: bool


def fail_interrupted(system: System) -> list[str]:
    """End the running runs whose process has died: each is queued again for
    another attempt where its flow's `retry_interrupted` allows one, cancelled
    when a cancel was asked for, and failed otherwise. Returns their ids."""
    now = utcnow()
    stale = timedelta(seconds=system.settings.stale_run_seconds)
    with system.db.reading() as session:
        candidates = session.execute(
            select(
                Run.id,
                Run.owner,
                Run.heartbeat_at,
                Run.version_id,
                Run.attempt,
                Run.cancel_requested_at,
            ).where(Run.state == states.RUNNING)
        ).all()
    dead = [
        _Seen(run_id, version_id, attempt, requested is not None)
        for run_id, owner, heartbeat, version_id, attempt, requested in candidates
        if not system.executor.holds(run_id)
        and (_owner_is_dead(owner) or heartbeat is None or now - heartbeat > stale)
    ]
    ended = []
    for seen in dead:
        try:
            ended_as = _end_interrupted_run(system, seen, now)
        except OperationalError:
            # Its process froze inside a transaction and keeps the row locked
            # until the database ends that transaction; the next sweep retries.
            logger.info(
                "run %s is locked by a stalled process; retried later", seen.run_id
            )
            continue
        if ended_as is None:
            continue
        state, event = ended_as
        system.bus.publish(seen.run_id, event_payload(event))
        ended.append(seen.run_id)
        outcome = "queued again" if state == states.QUEUED else f"marked {state}"
        logger.warning(
            "run %s was interrupted on attempt %s; %s",
            seen.run_id,
            seen.attempt,
            outcome,
        )
        if state == states.QUEUED:
            system.executor.submit(seen.run_id)
    return ended


def _allowed_attempts(session: Session, version_id: int) -> int:
    try:
        loaded = versions.fetch(session, version_id)
    except DefinitionError:
        return 1  # a definition that no longer compiles would only fail again
    return 1 + loaded.definition.retry_interrupted


def _end_interrupted_run(
    system: System, seen: _Seen, now: datetime
) -> tuple[str, RunEvent] | None:
    """Queue `seen` again or end it; its new state and the event saying so, or
    None when the run is no longer as the sweep saw it."""
    with system.db.transaction() as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # Not waiting long for a locked row: one stalled process must not
            # hold up the sweep of every other run.
            session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'"))

        # The same attempt still running: another sweep may have queued the run
        # again meanwhile and a worker started its next attempt, which is alive.
        still: tuple[ColumnElement[bool], ...] = (
            Run.id == seen.run_id,
            Run.state == states.RUNNING,
            Run.attempt == seen.attempt,
        )
        attempts = _allowed_attempts(session, seen.version_id)
        if seen.cancel_requested:
            state, message = states.CANCELLED, states.DEFAULT_MESSAGES[states.CANCELLED]
            values: dict[str, Any] = {"finished_at": now}
        elif seen.attempt < attempts:
            state = states.QUEUED
            message = states.retry_message(seen.attempt + 1, attempts)
            # The next attempt starts afresh: a new claim sets these again.
            values = {
                "attempt": seen.attempt + 1,
                "owner": None,
                "heartbeat_at": None,
                "started_at": None,
                "progress": None,
            }
            # A cancel asked for since the sweep looked is not to be lost by a
            # retry; the next sweep cancels the run instead.
            still = (*still, Run.cancel_requested_at.is_(None))
        else:
            state, message = states.FAILED, states.interrupted_message(seen.attempt)
            values = {"finished_at": now, "error": message}

        result = session.execute(
            update(Run)
            .where(*still)
            .values(state=state, status_message=message, **values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        seq = last_event_seq(session, seen.run_id) + UNSTORED_EVENT_ROOM + 1
        event = state_event(seen.run_id, seq, state, message, now)
        if state == states.QUEUED:
            event.level = "warning"
            event.data = {"state": state, "attempt": seen.attempt + 1}
        elif state == states.FAILED:
            event.level = "error"
        session.add(event)
    return state, event


def redispatch_queued(
    system: System, *, older_than: timedelta | None = None
) -> list[str]:
    """Hand queued runs that no executor holds to this one."""
    query = select(Run.id).where(Run.state == states.QUEUED)
    if older_than is not None:
        query = query.where(Run.created_at < utcnow() - older_than)
    with system.db.reading() as session:
        run_ids = list(session.scalars(query.order_by(Run.created_at)))
    picked = [run_id for run_id in run_ids if not system.executor.holds(run_id)]
    for run_id in picked:
        system.executor.submit(run_id)
    if picked:
        # Debug only: the Celery executor holds no run, so in that mode these
        # are mostly runs merely waiting for a free worker, which it does not
        # send again while they are on their way.
        logger.debug("offered %s queued runs to the executor again", len(picked))
    return picked


def recover(system: System) -> tuple[list[str], list[str]]:
    return fail_interrupted(system), redispatch_queued(system)


async def sweep(system: System) -> None:
    """Until cancelled, catch runs whose process died while this one runs and
    queued runs nobody took (a crash, or a broker that was away)."""
    period = sweep_seconds(system.settings.stale_run_seconds)
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(fail_interrupted, system)
            await asyncio.to_thread(redispatch_queued, system, older_than=ORPHAN_AFTER)
        except Exception:
            logger.exception("the sweep for interrupted and queued runs failed")
