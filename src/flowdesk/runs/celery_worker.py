"""`flowdesk worker`: a Celery worker that executes runs with the same runner as
`flowdesk serve`.

Celery's thread pool receives the tasks; each task hands its run id to one
asyncio loop in a thread of its own, where a `WorkerExecutor` (the local
executor, heartbeat and all) executes the run, and blocks until the run has
ended. The task is acknowledged then, so a worker killed mid-run leaves its
task to be delivered again, which the claim turns into a no-op; the run itself
is marked interrupted (or queued again, for a flow with `retry_interrupted`)
by the recovery sweep of a web or scheduler process once its heartbeat stops.

Runs started by a run (`run_flow`) execute in the same worker, next to their
parent, without a round trip through the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from celery import Celery
from celery.signals import setup_logging
from sqlalchemy import event

from flowdesk.errors import ConfigError
from flowdesk.memory import freeze_start_up_objects
from flowdesk.runs.celery_app import QUEUE, TASK_NAME, make_celery
from flowdesk.runs.celery_executor import BROKER_ERRORS, DispatchMarks
from flowdesk.runs.executor import LocalExecutor
from flowdesk.runs.redis_bus import RedisEventBus, redis_location
from flowdesk.system import System

logger = logging.getLogger(__name__)

T = TypeVar("T")

STOP_SECONDS = 15.0


class WorkerExecutor(LocalExecutor):
    """The local executor of a worker: it also acts on cancel requests from
    other processes and passes on those for runs it does not hold. Requests
    come over the bus at once, and from the database with the heartbeat when
    the bus is away."""

    def __init__(self, system: System, bus: RedisEventBus, concurrency: int) -> None:
        super().__init__(system, concurrency)
        self.bus = bus

    async def start(self) -> None:
        await super().start()
        self.bus.on_cancel(self._on_cancel_request)

    def _on_cancel_request(self, run_id: str) -> None:
        if self.holds(run_id):
            asyncio.get_running_loop().create_task(super().cancel(run_id))

    async def cancel(self, run_id: str) -> bool:
        if self.holds(run_id):
            return await super().cancel(run_id)
        self.bus.request_cancel(run_id)
        return True


class WorkerRuntime:
    """The asyncio side of a worker process: its loop thread and executor."""

    def __init__(self, system: System, concurrency: int) -> None:
        bus = system.bus
        if not isinstance(bus, RedisEventBus) or system.settings.broker_url is None:
            raise ConfigError(
                "flowdesk worker needs FLOWDESK_EXECUTOR=celery and "
                "FLOWDESK_BROKER_URL; with the local executor, flowdesk serve "
                "executes the runs itself"
            )
        self.system = system
        _end_stalled_transactions(system)
        self.executor = WorkerExecutor(system, bus, concurrency)
        system.executor = self.executor
        self._marks = DispatchMarks(system.settings.broker_url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="flowdesk-runs", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self._call(self.executor.start())

    def execute(self, run_id: str) -> str | None:
        """Execute `run_id` if it is still queued, blocking until it ends;
        its final state, or None when another worker had it already."""
        # The task has arrived, so the run is no longer on its way: should it
        # still be queued after this (its claim failed), the sweep sends it again.
        with contextlib.suppress(*BROKER_ERRORS):
            self._marks.forget(run_id)
        return self._call(self._execute(run_id))

    async def _execute(self, run_id: str) -> str | None:
        if self.executor.holds(run_id):
            # Delivered again while it runs here (a long run outlives the
            # broker's visibility timeout): the first task waits for it already,
            # and this one is not to hold a second thread for as long.
            return None
        self.executor.submit(run_id)
        return await self.executor.wait(run_id)

    def stop(self) -> None:
        """Cancel what still runs (each run records that), then stop the loop."""
        try:
            self._call(self.executor.stop(), timeout=STOP_SECONDS)
        except Exception:
            logger.exception("the worker could not stop its runs cleanly")
        self._marks.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_SECONDS)

    def _call(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)


def _end_stalled_transactions(system: System) -> None:
    """Have PostgreSQL end a transaction of this worker that stays idle as long
    as a run takes to go stale. A worker frozen inside one (a paused machine)
    would otherwise keep its run's row locked, and the run could never be
    marked interrupted."""
    engine = system.db.engine
    if engine.dialect.name != "postgresql":
        return
    limit_ms = int(system.settings.stale_run_seconds * 1000)

    def connect_with_limit(
        _dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]
    ) -> None:
        option = f"-c idle_in_transaction_session_timeout={limit_ms}"
        cparams["options"] = f"{cparams.get('options', '')} {option}".strip()

    event.listen(engine, "do_connect", connect_with_limit)
    engine.dispose()  # the connections made before (migrations) lack it


def celery_worker_app(runtime: WorkerRuntime) -> Celery:
    """The Celery app with the task that executes runs in `runtime`."""
    app = make_celery(runtime.system.settings)

    @app.task(name=TASK_NAME, ignore_result=True)  # type: ignore[untyped-decorator]
    def execute_run_task(run_id: str) -> None:
        runtime.execute(run_id)

    return app


def run_worker(system: System, concurrency: int | None = None) -> int:
    """Execute runs from the broker until SIGTERM (which lets the runs in hand
    end first) or SIGQUIT; returns the exit code."""
    slots = concurrency or system.settings.max_concurrent_runs
    runtime = WorkerRuntime(system, slots)
    app = celery_worker_app(runtime)
    # flowdesk configured logging at start-up; Celery is not to redo it.
    setup_logging.connect(_keep_logging, weak=False)
    for noisy in ("celery.app.trace", "celery.worker.strategy"):
        # Each run logs its start and end already; Celery's own line per task
        # would say the same again.
        logging.getLogger(noisy).setLevel(logging.WARNING)

    runtime.start()
    try:
        worker = app.Worker(
            hostname=f"flowdesk-{os.getpid()}@{socket.gethostname()}",
            pool_cls="threads",
            concurrency=slots,
            queues=[QUEUE],
            quiet=True,
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
            optimization="fair",
        )
        logger.info(
            "worker %s started: %s runs at a time, broker %s",
            system.owner,
            slots,
            redis_location(system.settings.broker_url or ""),
        )
        freeze_start_up_objects()
        worker.start()
        exit_code: int = worker.exitcode or 0
    finally:
        runtime.stop()
        logger.info("worker %s stopped", system.owner)
    return exit_code


def _keep_logging(**_kwargs: Any) -> None:
    pass
