"""Runs left behind by a process that died: a `running` run whose process is
gone is marked failed as interrupted, and `queued` runs are dispatched again."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from flowdesk.db.models import Run, RunEvent
from flowdesk.db.types import utcnow
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


def fail_interrupted(system: System) -> list[str]:
    """Mark as failed the running runs whose process has died."""
    now = utcnow()
    stale = timedelta(seconds=system.settings.stale_run_seconds)
    with system.db.reading() as session:
        candidates = session.execute(
            select(Run.id, Run.owner, Run.heartbeat_at).where(
                Run.state == states.RUNNING
            )
        ).all()
    dead = [
        run_id
        for run_id, owner, heartbeat in candidates
        if not system.executor.holds(run_id)
        and (_owner_is_dead(owner) or heartbeat is None or now - heartbeat > stale)
    ]
    failed = []
    for run_id in dead:
        try:
            event = _fail_interrupted_run(system, run_id, now)
        except OperationalError:
            # Its process froze inside a transaction and keeps the row locked
            # until the database ends that transaction; the next sweep retries.
            logger.info("run %s is locked by a stalled process; retried later", run_id)
            continue
        if event is None:
            continue
        system.bus.publish(run_id, event_payload(event))
        failed.append(run_id)
        logger.warning("run %s was interrupted; marked failed", run_id)
    return failed


def _fail_interrupted_run(
    system: System, run_id: str, now: datetime
) -> RunEvent | None:
    with system.db.transaction() as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # Not waiting long for a locked row: one stalled process must not
            # hold up the sweep of every other run.
            session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'"))
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == states.RUNNING)
            .values(
                state=states.FAILED,
                finished_at=now,
                error=states.INTERRUPTED_MESSAGE,
                status_message=states.INTERRUPTED_MESSAGE,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        event = state_event(
            run_id,
            last_event_seq(session, run_id) + 1,
            states.FAILED,
            states.INTERRUPTED_MESSAGE,
            now,
        )
        event.level = "error"
        session.add(event)
    return event


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
        logger.info("dispatched %s queued runs again", len(picked))
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
