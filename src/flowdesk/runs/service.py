"""Starting, cancelling and reading runs. A run is validated and committed in
one transaction before anything executes; only then is it handed to the
executor."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from flowdesk.db.models import Flow, Run, RunEvent, User
from flowdesk.db.types import utcnow
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.flows.cache import LoadedVersion, versions
from flowdesk.inputs import check_input
from flowdesk.runs import states
from flowdesk.runs.executor import LocalExecutor

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
# A cursor goes into links as it is, so it holds only URL-safe characters (an
# ISO offset's "+" would arrive as a space).
CURSOR_TIME_FORMAT = "%Y%m%dT%H%M%S.%f"


def new_run_id() -> str:
    return uuid.uuid4().hex


# Two columns of one row, as Core: every run started reads them, and loading
# the Flow entity through the ORM costs several times as much (see
# docs/benchmarks.md). Built once; `session.execute` still autoflushes.
_CURRENT_VERSION = select(Flow.current_version_id, Flow.deleted_at).where(
    Flow.id == bindparam("flow_id")
)


def load_current_version(session: Session, flow_id: str) -> LoadedVersion:
    row = session.execute(_CURRENT_VERSION, {"flow_id": flow_id}).one_or_none()
    if row is None or row.deleted_at is not None:
        raise NotFound(f"There is no flow with the id '{flow_id}'.")
    if row.current_version_id is None:
        raise NotFound(f"The flow '{flow_id}' has no saved version.")
    return versions.fetch(session, row.current_version_id)


# A run's row and its events, as Core built once: the ORM's unit of work
# costs several times as much per statement, on the path every launch takes
# (docs/benchmarks.md).
INSERT_RUN = insert(Run)
INSERT_EVENTS = insert(RunEvent)


def event_row(event: RunEvent) -> dict[str, Any]:
    """The column values of an event, for a Core insert."""
    return {
        "run_id": event.run_id,
        "seq": event.seq,
        "kind": event.kind,
        "level": event.level or "info",
        "message": event.message,
        "data": event.data,
        "created_at": event.created_at,
    }


def create_run(
    session: Session,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    *,
    user: User | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Validate `inputs` against the flow's current schema and add a queued run.

    Raises InputError (nothing is added) when the inputs do not fit."""
    values, _loaded = new_run_values(
        session, flow_id, inputs, trigger, user=user, parent_run_id=parent_run_id
    )
    run = Run(**values)
    session.add(run)
    session.add(
        state_event(run.id, 1, states.QUEUED, run.status_message, run.created_at)
    )
    return run


def new_run_values(
    session: Session,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    *,
    user: User | None = None,
    parent_run_id: str | None = None,
) -> tuple[dict[str, Any], LoadedVersion]:
    """The column values of a new queued run of the flow's current version,
    with that version; raises InputError when `inputs` do not fit its schema."""
    if trigger not in states.TRIGGERS:
        expected = ", ".join(states.TRIGGERS)
        raise FlowdeskError(f"Unknown trigger {trigger!r}; expected one of {expected}.")
    loaded = load_current_version(session, flow_id)
    data = check_input(loaded.definition.input_schema, inputs)
    values = {
        "id": new_run_id(),
        "flow_id": flow_id,
        "version_id": loaded.version_id,
        "state": states.QUEUED,
        "trigger": trigger,
        "user_id": user.id if user else None,
        "parent_run_id": parent_run_id,
        "inputs": data,
        "status_message": states.DEFAULT_MESSAGES[states.QUEUED],
        "created_at": utcnow(),
    }
    return values, loaded


# A run started for a page begins once the page's answer is out, or this long
# after its creation should the answer never say so (`start_run_answered`).
ANSWER_WAIT_SECONDS = 0.05


def start_run(
    system: System,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    *,
    user: User | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Create a run (one transaction) and hand it to the executor at once.

    When this process executes runs itself and has a slot free, the run is
    claimed in that same transaction: its first step then starts without a
    second write, a worker thread and a query in between."""
    return _start(system, flow_id, inputs, trigger, user, parent_run_id, wait=None).run


@dataclass(frozen=True)
class StartedRun:
    run: Run
    # Begins the run now, if it waits for it; on the event loop only.
    begin: Callable[[], None]


def start_run_answered(
    system: System,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    *,
    user: User | None = None,
) -> StartedRun:
    """As `start_run`, for a request whose answer (the redirect to the run's
    page) should go out before the run takes the event loop: a run claimed at
    creation begins when `begin` is called, at the latest after
    ANSWER_WAIT_SECONDS. Its first step would otherwise run ahead of the
    answer, which waited for the step's CPU time (docs/benchmarks.md)."""
    return _start(
        system, flow_id, inputs, trigger, user, None, wait=ANSWER_WAIT_SECONDS
    )


def _start(
    system: System,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    user: User | None,
    parent_run_id: str | None,
    *,
    wait: float | None,
) -> StartedRun:
    executor = system.executor
    if isinstance(executor, LocalExecutor) and executor.take_slot_now():
        return _start_claimed(
            system, executor, flow_id, inputs, trigger, user, parent_run_id, wait
        )

    # Core inserts rather than `create_run`'s ORM objects, which its callers
    # go on to change in their session: this is every launch's path while all
    # slots are busy (docs/benchmarks.md).
    with system.db.transaction() as session:
        values, _loaded = new_run_values(
            session, flow_id, inputs, trigger, user=user, parent_run_id=parent_run_id
        )
        queued = state_event(
            values["id"],
            1,
            states.QUEUED,
            values["status_message"],
            values["created_at"],
        )
        connection = session.connection()
        connection.execute(INSERT_RUN, values)
        connection.execute(INSERT_EVENTS, event_row(queued))
    # Outside any session, for the caller to read, as for a claimed run.
    run = Run(**values)
    _log_created(run, "queued", user)
    executor.submit(run.id)
    return StartedRun(run, _begun_already)


def _begun_already() -> None:
    """A queued run's `begin`: the executor starts it when a slot is free."""


def _start_claimed(
    system: System,
    executor: LocalExecutor,
    flow_id: str,
    inputs: dict[str, Any],
    trigger: str,
    user: User | None,
    parent_run_id: str | None,
    wait: float | None,
) -> StartedRun:
    # Imported here: the runner imports this module.
    from flowdesk.runs.runner import claim_created

    run_id: str | None = None
    try:
        with system.db.transaction() as session:
            values, loaded = new_run_values(
                session,
                flow_id,
                inputs,
                trigger,
                user=user,
                parent_run_id=parent_run_id,
            )
            run_id = values["id"]
            executor.hold_claimed(run_id)
            row, claimed = claim_created(session, system, values, loaded)
    except BaseException:
        executor.give_slot_back(run_id)
        raise
    begin = executor.run_claimed(claimed, wait=wait)
    # An object outside any session, for the caller to read (the id, the
    # state): the row itself was written as Core by `claim_created`.
    run = Run(**row)
    _log_created(run, "created", user)
    return StartedRun(run, begin)


def _log_created(run: Run, how: str, user: User | None) -> None:
    logger.info(
        "run %s of %s %s (trigger %s, by %s)",
        run.id,
        run.flow_id,
        how,
        run.trigger,
        user.username if user else "-",
    )


def state_event(
    run_id: str, seq: int, state: str, message: str, at: datetime
) -> RunEvent:
    return RunEvent(
        run_id=run_id,
        seq=seq,
        kind="state",
        message=message,
        data={"state": state},
        created_at=at,
    )


_LAST_EVENT_SEQ = select(func.max(RunEvent.seq)).where(
    RunEvent.run_id == bindparam("run_id")
)


def last_event_seq(session: Session, run_id: str) -> int:
    # Through the session, not its connection: events it holds unflushed count.
    value = session.scalar(_LAST_EVENT_SEQ, {"run_id": run_id})
    return value or 0


# What an event stream reads: whose run it is and whether it has finished, then
# the events the page has not seen, as Core statements built once (every page
# watching a run makes these reads).
_WATCHED_RUN = select(Run.user_id, Run.state).where(Run.id == bindparam("run_id"))
_EVENTS_AFTER = (
    select(
        RunEvent.seq,
        RunEvent.kind,
        RunEvent.level,
        RunEvent.message,
        RunEvent.created_at,
        RunEvent.data,
    )
    .where(RunEvent.run_id == bindparam("run_id"), RunEvent.seq > bindparam("after"))
    .order_by(RunEvent.seq)
)


@dataclass(frozen=True)
class WatchedRun:
    user_id: int | None
    finished: bool
    # The stored events after the one asked for, as `event_payload` gives them.
    events: list[dict[str, Any]]


def watched_run(connection: Connection, run_id: str, after: int) -> WatchedRun:
    """The run's owner and whether it has finished, and its stored events
    after `after`; raises NotFound for an unknown run."""
    row = connection.execute(_WATCHED_RUN, {"run_id": run_id}).one_or_none()
    if row is None:
        raise NotFound(f"There is no run with the id '{run_id}'.")
    return WatchedRun(
        user_id=row.user_id,
        finished=row.state in states.FINISHED,
        events=stored_payloads(connection, run_id, after),
    )


def stored_payloads(
    connection: Connection, run_id: str, after: int
) -> list[dict[str, Any]]:
    """The run's stored events after `after`, as live pages receive them."""
    rows = connection.execute(_EVENTS_AFTER, {"run_id": run_id, "after": after})
    return [_payload(*row) for row in rows]


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"There is no run with the id '{run_id}'.")
    return run


def run_events(session: Session, run_id: str, after_seq: int = 0) -> list[RunEvent]:
    query = (
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
        .order_by(RunEvent.seq)
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None


def list_runs(
    session: Session,
    *,
    flow_id: str | None = None,
    user_id: int | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> RunPage:
    """Newest runs first, one page at a time. The cursor is the last run's
    (created_at, id), so a page costs the same however long the history is."""
    query = select(Run)
    if flow_id is not None:
        query = query.where(Run.flow_id == flow_id)
    if user_id is not None:
        query = query.where(Run.user_id == user_id)
    if cursor:
        created_at, run_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                Run.created_at < created_at,
                and_(Run.created_at == created_at, Run.id < run_id),
            )
        )
    query = query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)
    runs = list(session.scalars(query))
    next_cursor = None
    if len(runs) > limit:
        runs = runs[:limit]
        last = runs[-1]
        stamp = last.created_at.astimezone(UTC).strftime(CURSOR_TIME_FORMAT)
        next_cursor = f"{stamp}~{last.id}"
    return RunPage(runs, next_cursor)


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, run_id = cursor.split("~", 1)
        created_at = datetime.strptime(stamp, CURSOR_TIME_FORMAT).replace(tzinfo=UTC)
        return created_at, run_id
    except ValueError:
        raise FlowdeskError(
            f"The page cursor {cursor!r} is not one this server made."
        ) from None


def cancel_queued(session: Session, run_id: str) -> RunEvent | None:
    """Cancel a run that has not started; None when it already has."""
    now = utcnow()
    message = states.DEFAULT_MESSAGES[states.CANCELLED]
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == states.QUEUED)
        .values(state=states.CANCELLED, finished_at=now, status_message=message)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    seq = last_event_seq(session, run_id) + 1
    event = state_event(run_id, seq, states.CANCELLED, message, now)
    session.add(event)
    return event


def request_cancel(session: Session, run_id: str) -> None:
    """Note that a running run is to stop. The process holding it reads this
    with its heartbeat, so the request reaches it without the event bus too."""
    session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.state == states.RUNNING,
            Run.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=utcnow())
    )


async def cancel_run(system: System, run_id: str) -> bool:
    """Stop a queued or running run. False when it had already finished."""
    with system.db.transaction() as session:
        run = get_run(session, run_id)
        if run.state in states.FINISHED:
            return False
        event = cancel_queued(session, run_id)
        if event is None:
            request_cancel(session, run_id)
    if event is not None:
        system.bus.publish(run_id, event_payload(event))
        logger.info("run %s cancelled before it started", run_id)
        return True
    return await system.executor.cancel(run_id)


def event_payload(event: RunEvent) -> dict[str, Any]:
    """The JSON form of a stored event, as live pages receive it."""
    return _payload(
        event.seq, event.kind, event.level, event.message, event.created_at, event.data
    )


def _payload(
    seq: int,
    kind: str,
    level: str,
    message: str,
    at: datetime,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "seq": seq,
        "kind": kind,
        "level": level,
        "message": message,
        "at": at.isoformat(),
    }
    if data:
        payload.update(data)
    return payload
