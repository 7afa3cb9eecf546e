"""The Celery executor: web processes and the scheduler hand run ids to the
workers over the broker instead of executing runs themselves.

Nothing is lost when the broker is away: a run is committed as `queued` before
it is sent, a send that fails leaves it so, and the recovery sweep sends every
queued run again that has waited a few seconds. So that the sweep does not
flood the queue with a run that is merely waiting for a free worker, each send
leaves a dispatch mark in Redis, which the worker removes when the task
arrives: a run with a mark is known to be on its way and is not sent again. A
Redis that restarts empty loses the marks with the tasks, so exactly the lost
runs are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import redis
from kombu.exceptions import KombuError

from flowdesk.db.models import Run
from flowdesk.runs import states
from flowdesk.runs.celery_app import (
    TASK_NAME,
    VISIBILITY_TIMEOUT_SECONDS,
    make_celery,
)
from flowdesk.runs.redis_bus import (
    CONNECT_TIMEOUT_SECONDS,
    RedisEventBus,
    no_retries,
    redis_location,
)

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

DISPATCH_MARK_PREFIX = "flowdesk:dispatched:"
# Past this a marked run that is still queued is sent again: its task may have
# been lost while its mark survived (a worker that froze with it). A run that
# merely waits in a long queue gets a harmless second task as often.
DISPATCH_MARK_SECONDS = VISIBILITY_TIMEOUT_SECONDS
# After a failed send, runs are left to the sweep for this long rather than
# each waiting for a broker that is likely still away.
SEND_PAUSE_SECONDS = 2.0
# How long `cancel` waits for the worker to record the run's end.
CANCEL_WAIT_SECONDS = 10.0
CANCEL_RECHECK_SECONDS = 1.0

BROKER_ERRORS = (redis.RedisError, KombuError, OSError)


class DispatchMarks:
    """The Redis keys that say a run's task is waiting in the broker."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            retry=no_retries(),
        )

    def mark(self, run_id: str) -> bool:
        """Mark `run_id` as sent; False when it was marked already."""
        key = DISPATCH_MARK_PREFIX + run_id
        return bool(self._client.set(key, "1", nx=True, ex=DISPATCH_MARK_SECONDS))

    def forget(self, run_id: str) -> None:
        self._client.delete(DISPATCH_MARK_PREFIX + run_id)

    def close(self) -> None:
        self._client.close()


class CeleryExecutor:
    """Sends each submitted run to the Celery workers, from one sending thread
    so that no caller waits for the broker."""

    def __init__(self, system: System) -> None:
        settings = system.settings
        if settings.broker_url is None or not isinstance(system.bus, RedisEventBus):
            raise ValueError("the Celery executor needs a broker and the Redis bus")
        self.system = system
        self.bus: RedisEventBus = system.bus
        self._broker = redis_location(settings.broker_url)
        self._celery = make_celery(settings, sending_only=True)
        self._marks = DispatchMarks(settings.broker_url)
        self._outbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._sender_lock = threading.Lock()
        self._paused_until = 0.0
        self._failing = False

    async def start(self) -> None:
        self.bus.bind(asyncio.get_running_loop())
        self._start_sender()

    def submit(self, run_id: str) -> None:
        """Have a worker execute the committed queued run `run_id`; returns at
        once from any thread. A run the broker does not take stays queued."""
        self._start_sender()
        self._outbox.put(run_id)

    def holds(self, run_id: str) -> bool:
        return False  # runs execute in the workers, never here

    async def wait(self, run_id: str) -> str | None:
        return None  # as for a run this executor does not hold

    @asynccontextmanager
    async def lend_slot(self, run_id: str) -> AsyncIterator[None]:
        yield  # no run executes here, so none has a slot to lend

    async def cancel(self, run_id: str) -> bool:
        """Ask the worker that holds `run_id` to cancel it, and wait a while for
        the run to record its end; True if it did. The request goes over the
        bus; `service.cancel_run` has stored it in the database too, which the
        worker reads with its next heartbeat should the bus be away."""
        async with self.bus.subscribe(run_id) as events:
            self.bus.request_cancel(run_id)
            logger.info("asked the workers to cancel run %s", run_id)
            loop = asyncio.get_running_loop()
            give_up_at = loop.time() + CANCEL_WAIT_SECONDS
            # The bus brings the end at once; the database covers a bus that
            # is cut off.
            while not await asyncio.to_thread(self._finished, run_id):
                left = give_up_at - loop.time()
                if left <= 0:
                    logger.warning(
                        "run %s did not stop within %ss of the cancel request",
                        run_id,
                        CANCEL_WAIT_SECONDS,
                    )
                    return False
                event = await events.get(min(left, CANCEL_RECHECK_SECONDS))
                if event is not None and _is_end(event):
                    break
        return True

    def _finished(self, run_id: str) -> bool:
        with self.system.db.reading() as session:
            run = session.get(Run, run_id)
            return run is None or run.state in states.FINISHED

    async def stop(self) -> None:
        sender = self._sender
        if sender is not None:
            self._outbox.put(None)
            await asyncio.to_thread(sender.join, CONNECT_TIMEOUT_SECONDS * 2)
            self._sender = None
        self._marks.close()
        await self.bus.close()

    # The sending thread.

    def _start_sender(self) -> None:
        if self._sender is not None:
            return
        with self._sender_lock:
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_forever, name="flowdesk-dispatch", daemon=True
                )
                self._sender.start()

    def _send_forever(self) -> None:
        while (run_id := self._outbox.get()) is not None:
            if time.monotonic() < self._paused_until:
                continue  # still queued in the database; the sweep sends it
            try:
                self._send(run_id)
            except BROKER_ERRORS as exc:
                self._broker_failed(run_id, exc)
                continue
            except Exception:
                # Not the broker's doing; the thread goes on regardless.
                logger.exception("could not hand run %s to the workers", run_id)
                continue
            if self._failing:
                logger.info("the broker at %s takes runs again", self._broker)
            self._failing = False

    def _broker_failed(self, run_id: str, exc: Exception) -> None:
        self._paused_until = time.monotonic() + SEND_PAUSE_SECONDS
        if not self._failing:
            logger.warning(
                "cannot hand run %s to the workers: the broker at %s does not "
                "answer (%s); queued runs are sent again once it does",
                run_id,
                self._broker,
                exc,
            )
        self._failing = True

    def _send(self, run_id: str) -> None:
        if not self._marks.mark(run_id):
            logger.debug("run %s is on its way to a worker already", run_id)
            return
        try:
            self._celery.send_task(TASK_NAME, args=[run_id], retry=False)
        except BaseException:
            # Without its mark the next sweep sends the run again.
            with contextlib.suppress(*BROKER_ERRORS):
                self._marks.forget(run_id)
            raise
        logger.debug("run %s sent to the workers", run_id)


def _is_end(event: dict[str, object]) -> bool:
    return event.get("kind") == "state" and event.get("state") in states.FINISHED
