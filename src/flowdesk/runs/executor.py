"""The local executor: runs flows as asyncio tasks inside this process, at
most `max_concurrent_runs` at a time; the rest wait as `queued`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import update

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


class LocalExecutor:
    def __init__(self, system: System, max_concurrent: int) -> None:
        self.system = system
        self.max_concurrent = max_concurrent
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: dict[str, asyncio.Task[str | None]] = {}
        self._running: set[str] = set()
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_concurrent)
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

    def holds(self, run_id: str) -> bool:
        return run_id in self._tasks

    def _spawn(self, run_id: str) -> None:
        if run_id in self._tasks:
            return
        assert self._loop is not None
        task = self._loop.create_task(self._execute(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(run_id, None))

    async def _execute(self, run_id: str) -> str | None:
        from flowdesk.runs.runner import execute_run

        assert self._slots is not None
        async with self._slots:
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

    async def cancel(self, run_id: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None:
            return False
        task.cancel()
        # Wait (without being cancelled with it) until the run has recorded
        # its end, so that the caller reads the final state.
        await asyncio.wait({task}, timeout=10)
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
            # Shielded: a cancelled run must still take a slot back, since its
            # `async with` gives one up when it ends.
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
                    await asyncio.to_thread(self._store_heartbeat, tuple(self._running))
                except Exception:
                    logger.exception("could not record the heartbeat of runs")

    def _store_heartbeat(self, run_ids: tuple[str, ...]) -> None:
        with self.system.db.transaction() as session:
            session.execute(
                update(Run)
                .where(Run.id.in_(run_ids), Run.state == states.RUNNING)
                .values(heartbeat_at=utcnow())
            )

    async def stop(self) -> None:
        """Cancel whatever still runs; each run records that it was cancelled."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        shutdown_shared_pool()
        await close_shared_client()
        # Last: the runs cancelled above have announced their end on it.
        await self.system.bus.close()
