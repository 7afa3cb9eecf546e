"""Executes one run: claims it in the database, runs its steps through the
engine, and records every event. The local and the distributed executors both
run flows through `execute_run`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from flowdesk.db.models import Run, RunEvent
from flowdesk.db.types import utcnow
from flowdesk.engine import InputValues, Limits, RunResult
from flowdesk.engine.connections import Connection
from flowdesk.errors import DefinitionError, StepFailed
from flowdesk.flows.cache import LoadedVersion, versions
from flowdesk.runs import states
from flowdesk.runs.service import (
    INSERT_EVENTS,
    INSERT_RUN,
    event_payload,
    event_row,
    last_event_seq,
    state_event,
)
from flowdesk.runs.subflows import ChildRuns
from flowdesk.secrets.connections import load_connections
from flowdesk.secrets.store import load_secrets

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

# Log lines are written in batches: at most this long after they happen.
FLUSH_DELAY_SECONDS = 0.2
MAX_MESSAGE_CHARS = 10_000


# The statements of every run's writes, built once: building one costs about
# as much as running it. Columns to set are given as parameters; the `b_`
# names are those of the conditions, apart from the columns'.
# Only while the run is still ours: a process that was taken for dead (frozen,
# cut off) must not overwrite the end recorded for it since, nor a later
# attempt of the run (recovery starts one), even one this process has claimed.
_UPDATE_OWN_RUN = update(Run).where(
    Run.id == bindparam("b_run_id"),
    Run.state == states.RUNNING,
    Run.owner == bindparam("b_owner"),
    Run.attempt == bindparam("b_attempt"),
)


# The claim of a queued run, which also reads what running it takes.
_CLAIM_QUEUED = (
    update(Run)
    .where(Run.id == bindparam("b_run_id"), Run.state == states.QUEUED)
    .returning(
        Run.flow_id,
        Run.version_id,
        Run.trigger,
        Run.inputs,
        Run.created_at,
        Run.parent_run_id,
        Run.user_id,
        Run.attempt,
    )
)


@dataclass(frozen=True)
class ClaimedRun:
    run_id: str
    flow_id: str
    trigger: str
    inputs: dict[str, Any]
    created_at: datetime
    started_at: datetime
    loaded: LoadedVersion
    next_seq: int
    parent_run_id: str | None
    user_id: int | None
    secrets: dict[str, str]
    connections: dict[str, Connection]
    # 1, or more for a run started again after its process died (recovery).
    attempt: int = 1


async def execute_run(system: System, run_id: str) -> str | None:
    """Run `run_id` to its end if it is still queued; returns its final state,
    or None when another process had claimed it already."""
    claim = asyncio.ensure_future(system.db.write(_claim, system, run_id))
    try:
        claimed = await asyncio.shield(claim)
    except asyncio.CancelledError:
        # Cancelled while the claim was under way: its thread commits anyway,
        # so wait for it and record the run as cancelled rather than leave it
        # `running` with nobody executing it.
        claimed = await claim
        if claimed is not None:
            await RunExecution(system, claimed).finish_cancelled()
        raise
    if claimed is None:
        logger.debug("run %s was not queued any more; skipped", run_id)
        return None
    execution = RunExecution(system, claimed)
    return await execution.run()


def claim_created(
    session: Session,
    system: System,
    values: dict[str, Any],
    loaded: LoadedVersion,
) -> tuple[dict[str, Any], ClaimedRun]:
    """Add a new run already claimed by this process, in the transaction that
    creates it: `values` are those of a queued run (`new_run_values`); its row
    is written `running`, after its `queued` and `running` events. Returns the
    row as written and the claim. The caller holds an executor slot for it."""
    now = utcnow()
    message = states.DEFAULT_MESSAGES[states.RUNNING]
    run_id = values["id"]
    row = {
        **values,
        "state": states.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "owner": system.owner,
        "status_message": message,
    }
    # Core inserts: the ORM's unit of work costs several times as much per
    # statement, on the path every launch takes (docs/benchmarks.md).
    connection = session.connection()
    connection.execute(INSERT_RUN, row)
    queued = state_event(
        run_id, 1, states.QUEUED, values["status_message"], values["created_at"]
    )
    running = state_event(run_id, 2, states.RUNNING, message, now)
    connection.execute(INSERT_EVENTS, [event_row(queued), event_row(running)])
    claimed = ClaimedRun(
        run_id=run_id,
        flow_id=values["flow_id"],
        trigger=values["trigger"],
        inputs=dict(values["inputs"]),
        created_at=values["created_at"],
        started_at=now,
        loaded=loaded,
        next_seq=3,
        parent_run_id=values["parent_run_id"],
        user_id=values["user_id"],
        attempt=1,
        secrets=load_secrets(session, system.settings),
        connections=load_connections(session),
    )
    # Nothing is published: nobody can watch a run whose id is not out yet.
    return row, claimed


def _claim(system: System, run_id: str) -> ClaimedRun | None:
    now = utcnow()
    message = states.DEFAULT_MESSAGES[states.RUNNING]
    with system.db.transaction() as session:
        # The conditional update is the claim: of two executors handed the same
        # run, exactly one sees a changed row. It reads the run as well, which
        # saves a query on the path from a run's creation to its first step.
        run = (
            session.connection()
            .execute(
                _CLAIM_QUEUED,
                {
                    "b_run_id": run_id,
                    "state": states.RUNNING,
                    "started_at": now,
                    "heartbeat_at": now,
                    "owner": system.owner,
                    "status_message": message,
                },
            )
            .one_or_none()
        )
        if run is None:
            return None
        seq = last_event_seq(session, run_id) + 1
        running = state_event(run_id, seq, states.RUNNING, message, now)
        session.connection().execute(INSERT_EVENTS, event_row(running))
        unstartable: RunEvent | None = None
        try:
            loaded = versions.fetch(session, run.version_id)
        except DefinitionError as broken:
            # A stored version that no longer compiles (a newer flowdesk refusing
            # an old definition) fails its run instead of being retried forever.
            stored = session.get_one(Run, run_id)
            unstartable = _fail_unstartable(session, stored, seq + 1, broken, now)
        else:
            # Read in the claim's transaction, which costs one query each.
            claimed = ClaimedRun(
                run_id=run_id,
                flow_id=run.flow_id,
                trigger=run.trigger,
                inputs=dict(run.inputs),
                created_at=run.created_at,
                started_at=now,
                loaded=loaded,
                next_seq=seq + 1,
                parent_run_id=run.parent_run_id,
                user_id=run.user_id,
                attempt=run.attempt,
                secrets=load_secrets(session, system.settings),
                connections=load_connections(session),
            )

    if unstartable is not None:
        logger.error("run %s cannot start: %s", run_id, unstartable.message)
        system.bus.publish(run_id, event_payload(unstartable))
        return None
    system.bus.publish(
        run_id,
        {
            "seq": seq,
            "kind": "state",
            "state": states.RUNNING,
            "level": "info",
            "message": message,
            "at": now.isoformat(),
        },
    )
    return claimed


def _fail_unstartable(
    session: Session, run: Run, seq: int, broken: DefinitionError, now: datetime
) -> RunEvent:
    message = f"The flow's stored definition cannot run: {broken.message}"
    run.state = states.FAILED
    run.finished_at = now
    run.error = message[:MAX_MESSAGE_CHARS]
    run.status_message = run.error
    event = state_event(run.id, seq, states.FAILED, run.error, now)
    event.level = "error"
    session.add(event)
    return event


class RunExecution:
    """The engine's reporter for one run: publishes events at once and stores
    them in small batches."""

    def __init__(self, system: System, claimed: ClaimedRun) -> None:
        self.system = system
        self.claimed = claimed
        self._seq = claimed.next_seq
        self._pending: list[RunEvent] = []
        self._status: tuple[str, float | None] | None = None
        self._reported_progress = False
        self._flush_task: asyncio.Task[None] | None = None
        self._storing: asyncio.Future[None] | None = None
        # Set once a store finds the run no longer ours (see `_store`): what
        # this execution does from then on is nobody's to hear of.
        self._lost = False
        self.first_step_at: datetime | None = None

    async def run(self) -> str:
        claimed = self.claimed
        settings = self.system.settings
        limits = Limits(
            max_loop_iterations=settings.max_loop_iterations,
            max_sleep_seconds=settings.max_sleep_seconds,
            python_timeout_seconds=settings.python_timeout_seconds,
            python_memory_mb=settings.python_memory_mb,
            http_timeout_seconds=settings.http_timeout_seconds,
            http_max_response_bytes=settings.http_max_response_bytes,
        )
        run_info = {
            "id": claimed.run_id,
            "flow_id": claimed.flow_id,
            "trigger": claimed.trigger,
            "started_at": claimed.started_at.isoformat(),
            "parent_run_id": claimed.parent_run_id,
            "attempt": claimed.attempt,
        }
        services = ChildRuns(self.system, claimed.run_id, claimed.user_id)
        logger.info("run %s of %s started", claimed.run_id, claimed.flow_id)
        try:
            # Not wait_for, which would run the flow in a task of its own: its
            # first step would then wait for another turn of the event loop.
            async with asyncio.timeout(settings.max_run_seconds):
                result = await claimed.loaded.compiled.execute(
                    InputValues(claimed.inputs, claimed.loaded.input_shape),
                    run_info,
                    self,
                    limits=limits,
                    secrets=claimed.secrets,
                    connections=claimed.connections,
                    services=services,
                )
        except StepFailed as failure:
            return await self._finish(states.FAILED, error=failure)
        except TimeoutError:
            too_long = StepFailed(
                "", f"The flow ran longer than {settings.max_run_seconds:g} seconds."
            )
            return await self._finish(states.FAILED, error=too_long)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(states.CANCELLED))
            raise
        except Exception:
            logger.exception("run %s failed inside flowdesk", claimed.run_id)
            internal = StepFailed("", "The flow stopped because of an internal error.")
        else:
            return await self._finish(states.SUCCEEDED, result=result)
        # Outside the handler, so that should recording the end fail too, the
        # executor's log of that does not repeat the error logged just above.
        return await self._finish(states.FAILED, error=internal)

    async def finish_cancelled(self) -> str:
        return await self._finish(states.CANCELLED)

    # The engine's reporter protocol.

    async def log(
        self,
        message: str,
        *,
        level: str = "info",
        step: str | None = None,
        child_run_id: str | None = None,
    ) -> None:
        data: dict[str, Any] = {}
        if step:
            data["step"] = step
        if child_run_id:
            # Tells a live run page to show the new child run's link.
            data["child_run_id"] = child_run_id
        self._record("log", message, level=level, data=data or None)

    async def status(self, message: str, progress: float | None = None) -> None:
        self._status = (message[:MAX_MESSAGE_CHARS], progress)
        self._reported_progress = self._reported_progress or progress is not None
        data: dict[str, Any] = {"progress": progress}
        self._record("status", message, data=data)

    async def step_started(self, path: str, kind: str) -> None:
        if self.first_step_at is None:
            self.first_step_at = utcnow()

    # Recording.

    def _record(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
        publish: bool = True,
    ) -> RunEvent:
        event = RunEvent(
            run_id=self.claimed.run_id,
            seq=self._seq,
            kind=kind,
            level=level,
            message=message[:MAX_MESSAGE_CHARS],
            data=data,
            created_at=utcnow(),
        )
        self._seq += 1
        self._pending.append(event)
        if not publish:
            return event
        if not self._lost:
            self.system.bus.publish(self.claimed.run_id, event_payload(event))
        if self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(
                self._flush_later()
            )
        return event

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        # Past this point the flush is no longer cancelled by `_finish`, which
        # waits for it instead, so that a late status never overwrites the end.
        self._flush_task = None
        events, status = self._take_pending()
        if events:
            self._storing = asyncio.ensure_future(
                self.system.db.write(self._store, events, status, None)
            )
            await self._storing

    def _take_pending(self) -> tuple[list[RunEvent], tuple[str, float | None] | None]:
        events, self._pending = self._pending, []
        status, self._status = self._status, None
        return events, status

    def _store(
        self,
        events: list[RunEvent],
        status: tuple[str, float | None] | None,
        final: dict[str, Any] | None,
    ) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow(), **(final or {})}
        if status is not None and "status_message" not in values:
            values["status_message"], values["progress"] = status
        with self.system.db.transaction() as session:
            # Core statements on the session's connection: the ORM would add
            # its unit of work and an evaluation of the update's criteria
            # against the session, to each of a run's writes.
            connection = session.connection()
            result = connection.execute(
                _UPDATE_OWN_RUN,
                {
                    "b_run_id": self.claimed.run_id,
                    "b_owner": self.system.owner,
                    "b_attempt": self.claimed.attempt,
                    **values,
                },
            )
            if result.rowcount != 1:
                if not self._lost:
                    logger.warning(
                        "run %s was ended elsewhere; its later events are dropped",
                        self.claimed.run_id,
                    )
                self._lost = True
                return
            if events:
                connection.execute(INSERT_EVENTS, [event_row(e) for e in events])

    async def _finish(
        self,
        state: str,
        *,
        result: RunResult | None = None,
        error: StepFailed | None = None,
    ) -> str:
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None
        if self._storing is not None and not self._storing.done():
            await self._storing

        now = utcnow()
        final: dict[str, Any] = {"state": state, "finished_at": now}
        if result is not None:
            final["outputs"] = result.outputs
            final["html"] = result.html
        if error is not None:
            final["error"] = error.reason[:MAX_MESSAGE_CHARS]
            final["error_step"] = error.path or None
        # The last status may have been stored already, so remember whether the
        # flow ever showed progress: a finished one then shows it full.
        if self._reported_progress and state == states.SUCCEEDED:
            final["progress"] = 100.0
        message = _final_message(state, error)
        final["status_message"] = message

        # Stored before it is announced, so that whoever hears of the end finds
        # the outputs and the result already in the database.
        event = self._record(
            "state",
            message,
            level=_level(state),
            data={"state": state, **_error_data(error), **self._timing()},
            publish=False,
        )
        events, _status = self._take_pending()
        await self.system.db.write(self._store, events, None, final)
        if self._lost:
            # Watchers of the run (perhaps of its next attempt) are not to hear
            # of an end the database does not have.
            return state
        self.system.bus.publish(self.claimed.run_id, event_payload(event))
        logger.info("run %s of %s %s", self.claimed.run_id, self.claimed.flow_id, state)
        return state

    def _timing(self) -> dict[str, Any]:
        # When the first step began, so that the delay between creating a run
        # and running it can be measured from outside (see bench/).
        if self.first_step_at is None:
            return {}
        return {"first_step_at": self.first_step_at.isoformat()}


def _final_message(state: str, error: StepFailed | None) -> str:
    if state == states.FAILED and error is not None:
        return error.reason
    return states.DEFAULT_MESSAGES[state]


def _level(state: str) -> str:
    return "error" if state == states.FAILED else "info"


def _error_data(error: StepFailed | None) -> dict[str, Any]:
    return {"step": error.path} if error is not None and error.path else {}
