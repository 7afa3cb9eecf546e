"""The local executor: runs flows as asyncio tasks inside this process, at
most `max_concurrent_runs` at a time; the rest wait as `queued`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from flowdesk.db.models import Run
from flowdesk.db.types import utcnow
from flowdesk.engine.steps.http import close_shared_client
from flowdesk.runs import states
from flowdesk.workers.pool import (
    configure_shared_pool,
    protected_paths,
    shutdown_shared_pool,
)

if TYPE_CHECKING:
    from flowdesk.runs.runner import ClaimedRun, RunExecution
    from flowdesk.system import System

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


def heartbeat_seconds(stale_run_seconds: float) -> float:
    """How often runs beat: every 5 s, or more often when a run is declared
    dead sooner, so that a few missed beats never pass for a death."""
    return min(HEARTBEAT_SECONDS, stale_run_seconds / 4)


class Executor(Protocol):
    def submit(self, run_id: str) -> None: ...

    async def cancel(self, run_id: str) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def holds(self, run_id: str) -> bool: ...

    def lend_slot(self, run_id: str) -> AbstractAsyncContextManager[None]: ...

    async def wait(self, run_id: str) -> str | None: ...


class RunSlots:
    """At most `size` runs at a time. A slot is awaited and given back on the
    event loop, and may also be taken without waiting from any thread: a run
    is then claimed in the transaction that creates it (`runs.service`).

    An asyncio.Semaphore would do for the loop alone, but it cannot be taken
    from the request's worker thread."""

    def __init__(self, size: int) -> None:
        self._free = size
        # Guards `_free` and the waiters' count against `take_now` in other
        # threads; waiters are only ever added and woken on the loop.
        self._lock = threading.Lock()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        """Take a free slot if there is one nobody waits for; any thread."""
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            return False

    async def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                handed = waiter.done() and not waiter.cancelled()
                if not handed:
                    self._waiters.remove(waiter)
            if handed:
                self.release()  # handed over just before the cancel: pass it on
            raise

    def release(self) -> None:
        """Give a slot back, to the first waiter if any; on the loop only."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
            self._free += 1


class LocalExecutor:
    def __init__(self, system: System, max_concurrent: int) -> None:
        self.system = system
        self.max_concurrent = max_concurrent
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: RunSlots | None = None
        self._tasks: dict[str, asyncio.Task[str | None]] = {}
        self._running: set[str] = set()
        # Ends being recorded for claimed runs cancelled before they began.
        self._endings: dict[str, asyncio.Task[str]] = {}
        # Runs claimed at creation whose task is not on the loop yet (`holds`).
        self._claiming: set[str] = set()
        # Of those, the ones waiting for their caller's go (`run_claimed`).
        self._waiting: dict[str, Callable[[], None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots = RunSlots(self.max_concurrent)
        self.system.bus.bind(self._loop)
        self._heartbeat = self._loop.create_task(self._beat())
        settings = self.system.settings
        # The pool itself starts with the first python step.
        configure_shared_pool(
            settings.python_workers,
            settings.python_memory_mb,
            sandbox_mode=settings.python_sandbox,
            # Kept out of the sandbox's allowed paths, even when nested in one.
            protected=protected_paths(
                settings.data_dir, settings.resolved_database_url
            ),
        )

    def submit(self, run_id: str) -> None:
        """Hand over a committed queued run; safe to call from any thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the executor was not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(run_id)
        else:
            loop.call_soon_threadsafe(self._spawn, run_id)

    def take_slot_now(self) -> bool:
        """Reserve a slot for a run about to be created and claimed at once
        (`run_claimed`); False when every slot is busy. Any thread."""
        return self._slots is not None and self._slots.take_now()

    def hold_claimed(self, run_id: str) -> None:
        """Count `run_id` as held from now on, before its claim commits: the
        recovery sweep skips held runs, and must not take one claimed here
        for a run left by a dead process while its task is on its way."""
        self._claiming.add(run_id)

    def give_slot_back(self, run_id: str | None = None) -> None:
        """Undo `take_slot_now` (and `hold_claimed`) when the run was not
        created after all."""
        if run_id is not None:
            self._claiming.discard(run_id)
        loop = self._loop
        assert loop is not None and self._slots is not None
        if _running_loop() is loop:
            self._slots.release()
        else:
            loop.call_soon_threadsafe(self._slots.release)

    def run_claimed(
        self, claimed: ClaimedRun, *, wait: float | None = None
    ) -> Callable[[], None]:
        """Run a committed run that was claimed, in the slot reserved for it,
        in the transaction that created it; safe to call from any thread.

        With `wait`, the run begins when the returned function is called (on
        the loop), or `wait` seconds from now should nobody call it: a page's
        request answers first, then its run takes the loop."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the executor was not started")
        begun = False

        def begin() -> None:  # on the loop only, so `begun` needs no lock
            nonlocal begun
            if not begun:
                begun = True
                self._waiting.pop(claimed.run_id, None)
                self._spawn_claimed(claimed)

        if wait is not None:
            self._waiting[claimed.run_id] = begin
            loop.call_soon_threadsafe(loop.call_later, wait, begin)
        elif _running_loop() is loop:
            begin()
        else:
            loop.call_soon_threadsafe(begin)
        return begin

    def holds(self, run_id: str) -> bool:
        # `_claiming` first: `_spawn_claimed` adds the task before it lets go
        # of the run there, so a caller in another thread sees one or the other.
        return run_id in self._claiming or run_id in self._tasks

    def _spawn(self, run_id: str) -> None:
        if run_id in self._tasks:
            return
        assert self._loop is not None
        task = self._loop.create_task(self._execute(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(run_id, None))

    def _spawn_claimed(self, claimed: ClaimedRun) -> None:
        from flowdesk.runs.runner import RunExecution

        assert self._loop is not None
        run_id = claimed.run_id
        execution = RunExecution(self.system, claimed)
        # In `_running` from now on, so that the heartbeat covers it at once.
        self._running.add(run_id)
        task = self._loop.create_task(
            self._execute_claimed(execution), name=f"run-{run_id}"
        )
        self._tasks[run_id] = task
        self._claiming.discard(run_id)
        task.add_done_callback(lambda done: self._claimed_done(execution, done))

    async def _execute_claimed(self, execution: RunExecution) -> str | None:
        run_id = execution.claimed.run_id
        try:
            return await execution.run()
        except asyncio.CancelledError:
            return states.CANCELLED
        except Exception:
            logger.exception("the executor could not run %s", run_id)
            return None
        finally:
            self._running.discard(run_id)
            assert self._slots is not None
            self._slots.release()

    def _claimed_done(self, execution: RunExecution, _task: asyncio.Task[Any]) -> None:
        run_id = execution.claimed.run_id
        self._tasks.pop(run_id, None)
        if run_id not in self._running:
            return  # `_execute_claimed` ran and gave the slot back
        # Cancelled before it began (the executor stopping at once): the run
        # is claimed in the database, so its slot and its end are seen to here.
        self._running.discard(run_id)
        assert self._slots is not None and self._loop is not None
        self._slots.release()
        ending = self._loop.create_task(execution.finish_cancelled())
        self._endings[run_id] = ending
        ending.add_done_callback(_log_failure)
        ending.add_done_callback(lambda _ending: self._endings.pop(run_id, None))

    async def _ended(self, run_id: str, task: asyncio.Task[Any]) -> None:
        """Wait until a cancelled run's end is recorded: by its task, or by the
        task `_claimed_done` starts for a claimed run cancelled before it began."""
        await asyncio.wait({task}, timeout=10)
        ending = self._endings.get(run_id)
        if ending is not None:
            await asyncio.wait({ending}, timeout=10)

    async def _execute(self, run_id: str) -> str | None:
        from flowdesk.runs.runner import execute_run

        assert self._slots is not None
        await self._slots.acquire()
        self._running.add(run_id)
        try:
            return await execute_run(self.system, run_id)
        except asyncio.CancelledError:
            return states.CANCELLED
        except Exception:
            logger.exception("the executor could not run %s", run_id)
            return None
        finally:
            self._running.discard(run_id)
            self._slots.release()

    async def cancel(self, run_id: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None:
            return False
        # Asked once already (by the event bus and the heartbeat both, say): a
        # second cancel would break off the recording of the end under way.
        if not task.cancelling():
            task.cancel()
        # Wait (without being cancelled with it) until the run has recorded
        # its end, so that the caller reads the final state.
        await self._ended(run_id, task)
        logger.info("run %s cancelled", run_id)
        return True

    @asynccontextmanager
    async def lend_slot(self, run_id: str) -> AsyncIterator[None]:
        """Let other runs have `run_id`'s slot while it waits for a run it
        started: parents holding every slot while their children wait for one
        would wait forever."""
        slots = self._slots
        if slots is None or run_id not in self._running:
            yield
            return
        slots.release()
        try:
            yield
        finally:
            # Shielded: a cancelled run must still take a slot back, since it
            # gives one up when it ends.
            await asyncio.shield(slots.acquire())

    async def wait(self, run_id: str) -> str | None:
        """The final state of a run this executor holds (None if it holds none)."""
        task = self._tasks.get(run_id)
        return await task if task is not None else None

    async def _beat(self) -> None:
        # Other processes judge whether a running run is still alive by this.
        while True:
            await asyncio.sleep(
                heartbeat_seconds(self.system.settings.stale_run_seconds)
            )
            if self._running:
                try:
                    to_stop = await asyncio.to_thread(
                        self._store_heartbeat, tuple(self._running)
                    )
                except Exception:
                    logger.exception("could not record the heartbeat of runs")
                    continue
                self._stop_runs(to_stop)

    def _store_heartbeat(self, run_ids: tuple[str, ...]) -> list[str]:
        """Record that `run_ids` are alive; returns those of them to stop here:
        asked to cancel (see `service.cancel_run`), or taken over by another
        process while this one seemed dead."""
        with self.system.db.transaction() as session:
            beating = session.execute(
                update(Run)
                .where(
                    Run.id.in_(run_ids),
                    Run.state == states.RUNNING,
                    Run.owner == self.system.owner,
                )
                .values(heartbeat_at=utcnow())
                .returning(Run.id, Run.cancel_requested_at)
                .execution_options(synchronize_session=False)
            ).all()
            to_stop = [run_id for run_id, asked in beating if asked is not None]
            ours = {run_id for run_id, _asked in beating}
            lost = [run_id for run_id in run_ids if run_id not in ours]
            if lost:
                # Running under another owner: recovery took this process for
                # dead and another one executes the run's next attempt, which
                # this copy would only repeat. (A run still queued, or ours by
                # now, is merely being claimed here.)
                to_stop += session.scalars(
                    select(Run.id).where(
                        Run.id.in_(lost),
                        Run.state == states.RUNNING,
                        Run.owner != self.system.owner,
                    )
                )
        return to_stop

    def _stop_runs(self, run_ids: list[str]) -> None:
        # The request stored in the database reaches this process even when
        # the event bus that normally brings a cancel at once is away.
        for run_id in run_ids:
            task = self._tasks.get(run_id)
            if task is not None and not task.cancelling():
                logger.info("run %s is to stop here; cancelling it", run_id)
                task.cancel()

    async def stop(self) -> None:
        """Cancel whatever still runs; each run records that it was cancelled."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        # Begun so as to be cancelled below, and recorded as such.
        for begin in list(self._waiting.values()):
            begin()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._endings:
            await asyncio.wait(list(self._endings.values()), timeout=10)
        shutdown_shared_pool()
        await close_shared_client()
        # Last: the runs cancelled above have announced their end on it.
        await self.system.bus.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _log_failure(task: asyncio.Task[str]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not record a run's cancel", exc_info=task.exception())
