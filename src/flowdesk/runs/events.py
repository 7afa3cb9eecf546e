"""The in-process event bus: state changes and log lines of runs, pushed to live
pages as they happen. Publishing is safe from any thread; subscribers are
asyncio consumers on the bus's loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# A watcher slower than this many events is dropped rather than let memory grow;
# its page reconnects and catches up from the stored log.
SUBSCRIBER_BACKLOG = 10_000

RunEventPayload = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    run_id: str
    queue: asyncio.Queue[RunEventPayload | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG)
    )
    overflowed: bool = False

    async def __aiter__(self) -> AsyncIterator[RunEventPayload]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event

    async def get(self, timeout: float | None = None) -> RunEventPayload | None:
        """The next event, or None when the timeout passes or the bus closed."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            # Not wait_for, which wraps the wait in a task of its own: a state
            # change seen by a thousand watchers would make a thousand tasks.
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None


class EventBus:
    """Fan-out of run events to the watchers of each run."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, run_id: str, event: RunEventPayload) -> None:
        loop = self._loop
        if loop is None or not self._subscribers.get(run_id):
            return
        if _running_loop() is loop:
            self._deliver(run_id, event)
        else:
            loop.call_soon_threadsafe(self._deliver, run_id, event)

    def _deliver(self, run_id: str, event: RunEventPayload) -> None:
        for subscription in tuple(self._subscribers.get(run_id, ())):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("dropping a slow watcher of run %s", run_id)
                subscription.overflowed = True
                self._remove(subscription)
                subscription.queue.get_nowait()
                subscription.queue.put_nowait(None)

    @asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[Subscription]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        subscription = Subscription(run_id)
        with self._lock:
            self._subscribers.setdefault(run_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            self._remove(subscription)

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            watchers = self._subscribers.get(subscription.run_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscribers[subscription.run_id]

    def watcher_count(self, run_id: str) -> int:
        return len(self._subscribers.get(run_id, ()))

    @property
    def live(self) -> bool:
        """Whether every published event reaches the watchers now. A bus shared
        between processes is not while cut off; watchers then read the store."""
        return True

    async def close(self) -> None:
        """Let go of what the bus holds outside this process (nothing here)."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
