"""Sub-flows: what a run's `run_flow` steps do outside the engine.

`ChildRuns` is the engine's `RunServices` for one run. It creates child runs
(validated like any other, with `parent_run_id` set and the `flow` trigger),
hands them to the executor, and waits for their end by listening on the event
bus, whose final event of a run comes after its outputs are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowdesk.db.models import Run, User
from flowdesk.engine.services import ChildRun
from flowdesk.errors import FlowdeskError
from flowdesk.runs import states
from flowdesk.runs.events import Subscription
from flowdesk.runs.service import cancel_run, create_run, get_run

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

TRIGGER = "flow"
# The bus announces a child's end; reading the database this often as well
# covers an announcement that was missed (a watcher dropped for being slow).
RECHECK_SECONDS = 5.0


class ChildRuns:
    """Starts and waits for the child runs of the run `parent_run_id`."""

    def __init__(self, system: System, parent_run_id: str, user_id: int | None):
        self.system = system
        self.parent_run_id = parent_run_id
        self.user_id = user_id
        self._depth: int | None = None  # of the parent, counted on first use

    async def start_child_run(self, flow_id: str, inputs: dict[str, Any]) -> str:
        run_id = await asyncio.to_thread(self._create, flow_id, inputs)
        logger.info("run %s started run %s of %s", self.parent_run_id, run_id, flow_id)
        self.system.executor.submit(run_id)
        return run_id

    def _create(self, flow_id: str, inputs: dict[str, Any]) -> str:
        limit = self.system.settings.max_run_depth
        with self.system.db.transaction() as session:
            if self._depth is None:
                self._depth = _ancestors(session, self.parent_run_id, limit)
            if self._depth + 1 > limit:
                raise FlowdeskError(
                    f"flows may start flows only {limit} levels deep, and this"
                    f" would be level {self._depth + 1}; does a flow start itself?"
                )
            user = session.get(User, self.user_id) if self.user_id else None
            run = create_run(
                session,
                flow_id,
                inputs,
                TRIGGER,
                user=user,
                parent_run_id=self.parent_run_id,
            )
            return run.id

    async def wait_run(self, run_id: str) -> ChildRun:
        # While it waits, the parent gives its executor slot to others:
        # parents holding every slot while their children wait for one would
        # wait forever.
        async with (
            self.system.bus.subscribe(run_id) as events,
            self.system.executor.lend_slot(self.parent_run_id),
        ):
            try:
                return await self._wait(run_id, events)
            except asyncio.CancelledError:
                # A cancelled parent takes the child it waits for with it.
                with contextlib.suppress(Exception):
                    await asyncio.shield(cancel_run(self.system, run_id))
                raise

    async def _wait(self, run_id: str, events: Subscription) -> ChildRun:
        loop = asyncio.get_running_loop()
        while True:
            outcome = await asyncio.to_thread(self._outcome, run_id)
            if outcome is not None:
                return outcome

            recheck_at = loop.time() + RECHECK_SECONDS
            while (left := recheck_at - loop.time()) > 0:
                event = await events.get(timeout=left)
                if event is None or _is_end(event):
                    break

    def _outcome(self, run_id: str) -> ChildRun | None:
        with self.system.db.reading() as session:
            run = get_run(session, run_id)
            if run.state not in states.FINISHED:
                return None
            return ChildRun(
                run_id=run.id, state=run.state, outputs=run.outputs, error=run.error
            )


def _ancestors(session: Session, run_id: str, limit: int) -> int:
    """How many runs `run_id` descends from, counting no further than `limit`."""
    count = 0
    parent = session.scalar(select(Run.parent_run_id).where(Run.id == run_id))
    while parent is not None and count <= limit:
        count += 1
        parent = session.scalar(select(Run.parent_run_id).where(Run.id == parent))
    return count


def _is_end(event: dict[str, Any]) -> bool:
    return event.get("kind") == "state" and event.get("state") in states.FINISHED
