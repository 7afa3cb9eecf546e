"""The run page's parts outside the handlers: who may see a run, what its page
shows (including the runs it started and the run that started it), its live
events as a server-sent event stream, and its HTML result wrapped for the
sandboxed frame."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from flowdesk.db.models import Run, RunEvent
from flowdesk.db.types import utcnow
from flowdesk.errors import NotFound
from flowdesk.formatting import run_duration
from flowdesk.runs import states
from flowdesk.runs.runner import FLUSH_DELAY_SECONDS
from flowdesk.runs.service import (
    WatchedRun,
    cancel_run,
    get_run,
    run_events,
    stored_payloads,
    watched_run,
)
from flowdesk.web.auth import Viewer
from flowdesk.web.launch import (
    InputItem,
    Outcome,
    describe_inputs,
    launchable_or_none,
    new_inputs_query,
    rerun,
    run_schema,
)

if TYPE_CHECKING:
    from flowdesk.runs.events import Subscription
    from flowdesk.system import System

logger = logging.getLogger(__name__)

STATE_LABELS = {
    states.QUEUED: "Queued",
    states.RUNNING: "Running",
    states.SUCCEEDED: "Succeeded",
    states.FAILED: "Failed",
    states.CANCELLED: "Cancelled",
}

# A long log is cut to its end on the page, which would otherwise grow without
# bound for a flow that logs in a loop.
LOG_LINES_SHOWN = 1000
# The same for the runs a `run_flow` step in a loop starts.
CHILD_RUNS_SHOWN = 50

# Proxies close connections that stay silent for a minute or so.
HEARTBEAT_SECONDS = 15.0
STORE_POLL_SECONDS = 1.0
RETRY_MILLISECONDS = 2000
# Events are published before they are stored (see runs.runner), so a page
# that connects in between may find a gap; it waits this long for the store.
SETTLE_SECONDS = FLUSH_DELAY_SECONDS + 0.15
GAP_WAIT_SECONDS = 0.1
GAP_TRIES = 10


def visible_run(session: Session, run_id: str, viewer: Viewer) -> Run:
    """The run if the viewer started it or may see every run; else NotFound,
    worded as for a run that does not exist."""
    run = get_run(session, run_id)
    if viewer.may_see_run(run.user_id):
        return run
    raise NotFound(f"There is no run with the id '{run_id}'.")


@dataclass(frozen=True)
class RunView:
    run: Run
    flow_name: str
    label: str
    finished: bool
    # Seconds so far for a running run, its duration once finished.
    elapsed: float | None
    inputs: list[InputItem]
    log: list[RunEvent]  # the latest LOG_LINES_SHOWN entries
    log_total: int
    last_seq: int
    launch_url: str | None
    new_inputs_url: str | None
    started_by: str | None
    parent: RunLink | None
    children: list[RunLink]
    # All child runs, when there are more than the CHILD_RUNS_SHOWN listed.
    children_total: int


@dataclass(frozen=True)
class RunLink:
    """A run started by a `run_flow` step, or the run that started one, as the
    run page names it: `url` is None when the viewer may not open it."""

    run_id: str
    flow_name: str
    state: str
    label: str
    created_at: datetime
    url: str | None


def _run_link(run: Run, viewer: Viewer) -> RunLink:
    visible = viewer.may_see_run(run.user_id)
    return RunLink(
        run_id=run.id,
        flow_name=run.flow.name,
        state=run.state,
        label=STATE_LABELS.get(run.state, run.state.title()),
        created_at=run.created_at,
        url=f"/runs/{quote(run.id)}" if visible else None,
    )


def child_runs(session: Session, run_id: str, limit: int) -> list[Run]:
    """The first `limit` runs that `run_id` started, oldest first, with their
    flows."""
    query = (
        select(Run)
        .options(joinedload(Run.flow))
        .where(Run.parent_run_id == run_id)
        .order_by(Run.created_at, Run.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def visible_child_ids(session: Session, run_id: str, viewer: Viewer) -> list[str]:
    """The ids of the runs that `run_id` started which the viewer may see."""
    query = select(Run.id, Run.user_id).where(Run.parent_run_id == run_id)
    rows = session.execute(query.order_by(Run.created_at, Run.id))
    return [child_id for child_id, user_id in rows if viewer.may_see_run(user_id)]


def _family(
    session: Session, run: Run, viewer: Viewer
) -> tuple[RunLink | None, list[RunLink], int]:
    """The run's parent and its first children as links, and how many children
    it has in all."""
    parent = None
    if run.parent_run_id is not None:
        parent_run = session.get(Run, run.parent_run_id)
        parent = _run_link(parent_run, viewer) if parent_run else None

    children = child_runs(session, run.id, CHILD_RUNS_SHOWN)
    total = len(children)
    if total == CHILD_RUNS_SHOWN:
        count = select(func.count()).select_from(Run)
        total = session.scalar(count.where(Run.parent_run_id == run.id)) or total
    return parent, [_run_link(child, viewer) for child in children], total


def starter_name(run: Run) -> str:
    """Who started `run` as run lists show it: their user name, "deleted user",
    or "" when flowdesk did (a schedule, the command line)."""
    if run.user is not None:
        return run.user.username
    return states.DELETED_USER if run.trigger in states.PERSON_TRIGGERS else ""


def run_view(session: Session, run_id: str, viewer: Viewer) -> RunView:
    run = visible_run(session, run_id, viewer)
    events = run_events(session, run_id)
    finished = run.state in states.FINISHED

    target = launchable_or_none(session, run.flow_id, viewer)
    launch_url = f"/interactive-flows/{quote(run.flow_id)}" if target else None
    new_inputs_url = None
    if launch_url and finished:
        query = new_inputs_query(run)
        new_inputs_url = f"{launch_url}?{query}" if query else launch_url

    started_by = None
    if run.user is not None and run.user_id != viewer.user.id:
        started_by = run.user.username
    elif run.user_id is None and run.trigger in states.PERSON_TRIGGERS:
        started_by = states.DELETED_USER
    parent, children, children_total = _family(session, run, viewer)
    return RunView(
        run=run,
        flow_name=run.flow.name,
        label=STATE_LABELS.get(run.state, run.state.title()),
        finished=finished,
        elapsed=_elapsed(run.started_at, run.finished_at),
        inputs=describe_inputs(run_schema(run), run.inputs),
        log=events[-LOG_LINES_SHOWN:],
        log_total=len(events),
        last_seq=events[-1].seq if events else 0,
        launch_url=launch_url,
        new_inputs_url=new_inputs_url,
        started_by=started_by,
        parent=parent,
        children=children,
        children_total=children_total,
    )


def _elapsed(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None:
        return None
    return run_duration(started, finished or utcnow())


async def cancel_visible_run(system: System, run_id: str, viewer: Viewer) -> None:
    def check() -> None:
        with system.db.reading() as session:
            visible_run(session, run_id, viewer)

    await asyncio.to_thread(check)
    await cancel_run(system, run_id)


def rerun_visible_run(system: System, run_id: str, viewer: Viewer) -> Outcome:
    with system.db.reading() as session:
        run = visible_run(session, run_id, viewer)
        _ = run.version.definition  # loaded now, read after the session closes
    return rerun(system, run, viewer)


def result_html(session: Session, run_id: str, viewer: Viewer) -> str:
    run = visible_run(session, run_id, viewer)
    if run.html is None:
        raise NotFound("This run has no HTML result.")
    return run.html


# The result is the flow's HTML, which flowdesk does not trust: the frame has
# an opaque origin (no allow-same-origin) and only the size reporter, which
# carries this response's nonce, may run.
RESULT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "script-src 'nonce-{nonce}'; frame-ancestors 'self'; sandbox allow-scripts"
)

_SIZE_REPORTER = """<script nonce="{nonce}">
(function () {{
  var sent = 0;
  function report() {{
    var box = document.documentElement.getBoundingClientRect();
    var height = Math.ceil(box.height);
    if (height !== sent) {{
      sent = height;
      parent.postMessage({{ flowdeskResultHeight: height }}, "*");
    }}
  }}
  new ResizeObserver(report).observe(document.documentElement);
  addEventListener("load", report);
  // The page may start listening after the first report went out; it then
  // asks again.
  addEventListener("message", function (event) {{
    if (event.source === parent && event.data && event.data.flowdeskAskHeight) {{
      sent = 0;
      report();
    }}
  }});
}})();
</script>
<style>:where(html) {{ font-family: system-ui, sans-serif; line-height: 1.5; }}</style>
"""

_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)


def framed_result(html: str, nonce: str) -> str:
    """The flow's HTML with the size reporter put first, so that nothing in
    the flow's markup (an unclosed comment, say) can swallow it."""
    reporter = _SIZE_REPORTER.format(nonce=nonce)
    doctype = _DOCTYPE.match(html)
    if doctype is None:
        return "<!doctype html>\n" + reporter + html
    return html[: doctype.end()] + "\n" + reporter + html[doctype.end() :]


class LiveEvents:
    """A page's stream of a run's events, opened: subscribed to the live ones
    before the stored ones were read, so that nothing published in between is
    lost. `close` lets go of the subscription; the response calls it however
    the stream ends, even should it never have begun."""

    def __init__(
        self,
        system: System,
        subscription: Subscription,
        backlog: list[dict[str, Any]],
        after: int,
        exits: AsyncExitStack,
    ) -> None:
        self._system = system
        self._subscription = subscription
        self._backlog = backlog
        self._after = after
        self._exits = exits

    def messages(self) -> AsyncIterator[str]:
        return event_stream(
            self._system, self._subscription, self._backlog, self._after
        )

    async def close(self) -> None:
        await self._exits.aclose()


async def open_event_stream(
    system: System, run_id: str, after: int, may_see: Callable[[int | None], bool]
) -> LiveEvents | None:
    """The run's events after `after` for a page whose viewer `may_see` runs of
    a user; None once the run has finished and the page has seen its last
    event. NotFound, worded as for a run that does not exist, when the viewer
    may not see it."""
    exits = AsyncExitStack()
    try:
        subscription = await exits.enter_async_context(system.bus.subscribe(run_id))
        # One thread call, two Core reads: every Start Flow opens a stream.
        watched = await asyncio.to_thread(_read_watched, system, run_id, after)
        if not may_see(watched.user_id):
            raise NotFound(f"There is no run with the id '{run_id}'.")
    except BaseException:
        await exits.aclose()
        raise
    if watched.finished and not watched.events:
        await exits.aclose()
        return None
    return LiveEvents(system, subscription, watched.events, after, exits)


def _read_watched(system: System, run_id: str, after: int) -> WatchedRun:
    with system.db.read_connection() as connection:
        return watched_run(connection, run_id, after)


async def event_stream(
    system: System,
    subscription: Subscription,
    backlog: list[dict[str, Any]],
    after: int,
) -> AsyncIterator[str]:
    """The run's events after `after`: `backlog`, the stored ones read after
    `subscription` began, then live ones, until the run's final state."""
    run_id = subscription.run_id
    sent = after
    batch = backlog
    # What is ready goes out as one chunk: the stored events of a run that
    # has finished, say, in a single write rather than one each.
    chunk = [f"retry: {RETRY_MILLISECONDS}\n\n"]
    # The runner publishes a log line before it stores it, so one that went
    # out just before the subscription may have missed the backlog too; it
    # is stored within the runner's flush delay, where a second look finds it.
    wait = SETTLE_SECONDS
    while True:
        for event in batch:
            if event["seq"] <= sent:
                continue
            chunk.append(sse_message(event))
            sent = event["seq"]
            if is_final(event):
                yield "".join(chunk)
                # One event wakes every watcher of the run: let the others
                # send it too before this stream is torn down.
                await asyncio.sleep(0)
                return
        if chunk:
            yield "".join(chunk)
            chunk = []

        live = await subscription.get(wait)
        if live is None:
            if subscription.overflowed:
                return  # the page reconnects and catches up from the store
            # Quiet for a while: keep the connection open, and pick up
            # anything the bus did not bring (a run in another process).
            batch = await _stored_after(system, run_id, sent)
            if not batch and wait != SETTLE_SECONDS:
                chunk.append(": heartbeat\n\n")
            # A bus cut off from the other processes brings nothing of a run
            # executed elsewhere, so the store is read often meanwhile.
            wait = HEARTBEAT_SECONDS if system.bus.live else STORE_POLL_SECONDS
        elif live["seq"] > sent + 1:
            batch = [*await _fill_gap(system, run_id, sent, live["seq"]), live]
        else:
            batch = [live]


async def _stored_after(
    system: System, run_id: str, after: int
) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        with system.db.read_connection() as connection:
            return stored_payloads(connection, run_id, after)

    return await asyncio.to_thread(read)


async def _fill_gap(
    system: System, run_id: str, sent: int, upto: int
) -> list[dict[str, Any]]:
    """The stored events between `sent` and `upto`, waiting briefly for the
    runner to store those it has published already."""
    found: list[dict[str, Any]] = []
    for _attempt in range(GAP_TRIES):
        stored = await _stored_after(system, run_id, sent)
        found = [event for event in stored if event["seq"] < upto]
        if len(found) == upto - sent - 1:
            return found
        await asyncio.sleep(GAP_WAIT_SECONDS)
    logger.debug("run %s: events %s to %s never reached the store", run_id, sent, upto)
    return found


class _LastMessage:
    """The last event encoded and its encoding. The bus hands every watcher of
    a run the same event object, so a thousand watchers need one json.dumps."""

    payload: dict[str, Any] | None = None
    message = ""


def sse_message(payload: dict[str, Any]) -> str:
    if _LastMessage.payload is payload:
        return _LastMessage.message
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    message = f"id: {payload['seq']}\nevent: {payload['kind']}\ndata: {data}\n\n"
    _LastMessage.payload, _LastMessage.message = payload, message
    return message


def is_final(payload: dict[str, Any]) -> bool:
    return payload.get("kind") == "state" and payload.get("state") in states.FINISHED
