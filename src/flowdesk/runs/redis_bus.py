"""The event bus of the distributed mode: run events travel over Redis pub/sub
so that a run executed by a worker streams live to a page served by any web
process.

Each event goes to the watchers in this process at once, as with `EventBus`,
and to Redis on the channel `flowdesk:run:<run id>` through one publishing
thread, so that a slow or unreachable Redis never holds up a run. Each process
keeps one pub/sub connection, subscribed to the channels of the runs it has
watchers for, and fans what arrives out to them; it reconnects with a growing
pause when Redis goes away. While it is cut off, `live` is False and events
from other processes are missed: watchers read the store instead (every event
is stored by the runner anyway).

The same connection carries cancel requests on `flowdesk:cancel`, for the
worker that holds the run to act on at once. They are a shortcut: the request
is stored with the run as well, and the worker finds it there with its next
heartbeat when Redis was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.retry import Retry

from flowdesk.runs.events import EventBus, RunEventPayload, Subscription

logger = logging.getLogger(__name__)

RUN_CHANNEL_PREFIX = "flowdesk:run:"
CANCEL_CHANNEL = "flowdesk:cancel"

CONNECT_TIMEOUT_SECONDS = 2.0
# Pauses between attempts to reach Redis again: doubling, up to the maximum.
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0
# A subscriber waits at most this long for Redis to confirm its subscription;
# past it the watcher still gets the events of this process and the store.
SUBSCRIBE_WAIT_SECONDS = 1.0
# A quiet connection is pinged this often, and given up after two silences.
IDLE_SECONDS = 10.0
# Events waiting for the publishing thread; past this many (Redis is slow or
# gone) new ones are dropped, and watchers elsewhere read them from the store.
OUTBOX_LIMIT = 10_000
PUBLISH_BATCH = 200
# After a failed publish, events are dropped for this long rather than each
# waiting for a connection that is likely to fail too.
PUBLISH_PAUSE_SECONDS = 1.0

CancelHandler = Callable[[str], None]


def run_channel(run_id: str) -> str:
    return RUN_CHANNEL_PREFIX + run_id


def redis_location(url: str) -> str:
    """The broker's host and port for a log line, without any password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def no_retries() -> Retry:
    # flowdesk decides itself when to try again; a retry inside the client
    # would only hold up the caller.
    return Retry(NoBackoff(), 0)


class RedisEventBus(EventBus):
    """`EventBus` with the watchers of every process on one Redis server."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        # Marks what this process published, which comes back from Redis too.
        self.origin = uuid.uuid4().hex
        self._outbox: queue.Queue[tuple[str, str] | None] = queue.Queue(OUTBOX_LIMIT)
        self._publisher: threading.Thread | None = None
        self._publisher_lock = threading.Lock()
        self._publish_paused_until = 0.0
        self._publish_failing = False

        self._reader: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._connected = False
        self._loss_reported = False
        self._wanted: Counter[str] = Counter()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._cancel_handlers: list[CancelHandler] = []
        self._chores: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> bool:
        return self._connected and not self._publish_failing

    # Publishing (any thread).

    def publish(self, run_id: str, event: RunEventPayload) -> None:
        super().publish(run_id, event)
        self._send(run_channel(run_id), {"origin": self.origin, "event": event})

    def request_cancel(self, run_id: str) -> None:
        """Ask whichever worker holds `run_id` to cancel it."""
        self._send(CANCEL_CHANNEL, {"origin": self.origin, "run_id": run_id})

    def _send(self, channel: str, message: dict[str, Any]) -> None:
        self._start_publisher()
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        try:
            self._outbox.put_nowait((channel, data))
        except queue.Full:
            logger.debug("the Redis outbox is full; dropped a message for %s", channel)

    def _start_publisher(self) -> None:
        if self._publisher is not None:
            return
        with self._publisher_lock:
            if self._publisher is None:
                self._publisher = threading.Thread(
                    target=self._publish_forever, name="flowdesk-bus", daemon=True
                )
                self._publisher.start()

    def _publish_forever(self) -> None:
        client = redis.Redis.from_url(
            self.url,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            retry=no_retries(),
        )
        try:
            closing = False
            while not closing:
                batch, closing = self._next_batch()
                if batch and time.monotonic() >= self._publish_paused_until:
                    self._publish_batch(client, batch)
        finally:
            client.close()

    def _next_batch(self) -> tuple[list[tuple[str, str]], bool]:
        """What waits in the outbox (waiting for something to arrive), and
        whether the bus is closing."""
        batch: list[tuple[str, str]] = []
        item = self._outbox.get()
        while item is not None:
            batch.append(item)
            if len(batch) == PUBLISH_BATCH:
                return batch, False
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _publish_batch(self, client: redis.Redis, batch: list[tuple[str, str]]) -> None:
        try:
            with client.pipeline(transaction=False) as pipe:
                for channel, data in batch:
                    pipe.publish(channel, data)
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
            if not self._publish_failing:
                logger.warning(
                    "cannot publish run events to Redis at %s (%s); watchers in "
                    "other processes read them from the database until it is back",
                    redis_location(self.url),
                    exc,
                )
            self._publish_failing = True
            return
        if self._publish_failing:
            logger.info("publishing run events to Redis again")
        self._publish_failing = False

    # Subscribing (on the bus's loop).

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        super().bind(loop)
        loop.call_soon_threadsafe(self._start_reader)

    def on_cancel(self, handler: CancelHandler) -> None:
        """Call `handler(run_id)` on the bus's loop for each cancel request."""
        self._cancel_handlers.append(handler)
        self._start_reader()

    @asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[Subscription]:
        self._start_reader()
        channel = run_channel(run_id)
        async with super().subscribe(run_id) as subscription:
            await self._listen(channel)
            try:
                yield subscription
            finally:
                self._stop_listening(channel)

    async def _listen(self, channel: str) -> None:
        self._wanted[channel] += 1
        if self._wanted[channel] == 1:
            self._confirmed[channel] = asyncio.Event()
            pubsub = self._pubsub
            if pubsub is not None:
                try:
                    await pubsub.subscribe(channel)
                except (redis.RedisError, OSError):
                    # The reader notices too, and subscribes again on reconnecting.
                    logger.debug("could not subscribe to %s", channel, exc_info=True)
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and self._connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_WAIT_SECONDS)

    def _stop_listening(self, channel: str) -> None:
        self._wanted[channel] -= 1
        if self._wanted[channel] > 0:
            return
        del self._wanted[channel]
        self._confirmed.pop(channel, None)
        if self._pubsub is not None:
            # Not awaited here: the watcher may be leaving because it was
            # cancelled (its page closed), and the reply does not matter.
            chore = asyncio.get_running_loop().create_task(self._unsubscribe(channel))
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)

    async def _unsubscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        # A new watcher may have come in the meantime.
        if pubsub is None or channel in self._wanted:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            await pubsub.unsubscribe(channel)

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            loop = asyncio.get_running_loop()
            self._reader = loop.create_task(self._read_forever(), name="flowdesk-bus")

    async def _read_forever(self) -> None:
        pause = RECONNECT_FIRST_SECONDS
        while True:
            client = redis.asyncio.Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                retry=no_retries(),
            )
            pubsub = client.pubsub()
            try:
                first = [CANCEL_CHANNEL, *self._wanted]
                await pubsub.subscribe(*first)
                self._pubsub = pubsub
                # Watchers that came while that was under way found no
                # connection to subscribe on.
                late = [channel for channel in self._wanted if channel not in first]
                if late:
                    await pubsub.subscribe(*late)
                await self._pump(pubsub)
            except (redis.RedisError, OSError) as exc:
                if not self._loss_reported:
                    self._loss_reported = True
                    logger.warning(
                        "lost Redis at %s for run events (%s); reconnecting",
                        redis_location(self.url),
                        exc,
                    )
            except Exception:
                # Whatever went wrong, watchers elsewhere need the reader back.
                logger.exception("the reader of run events failed; restarting it")
            finally:
                was_connected = self._connected
                self._pubsub = None
                self._connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            if was_connected:
                pause = RECONNECT_FIRST_SECONDS  # it worked until now: try soon
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX_SECONDS)

    async def _pump(self, pubsub: PubSub) -> None:
        """Hand out what arrives until the connection fails."""
        silent = 0
        while True:
            message = await pubsub.get_message(timeout=IDLE_SECONDS)
            if message is None:
                silent += 1
                if silent > 1:
                    raise redis.ConnectionError("Redis stopped answering pings")
                await pubsub.ping()
                continue
            silent = 0
            kind = message["type"]
            channel = _text(message.get("channel"))
            if kind == "subscribe":
                self._confirm(channel)
            elif kind == "message":
                self._receive(channel, _text(message["data"]))

    def _confirm(self, channel: str) -> None:
        if channel == CANCEL_CHANNEL:
            if self._loss_reported:
                logger.info("reconnected to Redis for run events")
            self._loss_reported = False
            self._connected = True
        confirmed = self._confirmed.get(channel)
        if confirmed is not None:
            confirmed.set()

    def _receive(self, channel: str, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("ignored a message on %s that is not JSON", channel)
            return
        if not isinstance(message, dict) or message.get("origin") == self.origin:
            return
        if channel == CANCEL_CHANNEL:
            run_id = message.get("run_id")
            if isinstance(run_id, str):
                for handler in self._cancel_handlers:
                    handler(run_id)
        elif channel.startswith(RUN_CHANNEL_PREFIX):
            event = message.get("event")
            if isinstance(event, dict):
                # Watchers only: this is not ours to send to Redis again.
                super().publish(channel.removeprefix(RUN_CHANNEL_PREFIX), event)

    async def close(self) -> None:
        """Stop reading and publishing; what is still in the outbox goes first,
        if Redis takes it within a moment."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        publisher = self._publisher
        if publisher is not None:
            await asyncio.to_thread(self._stop_publisher, publisher)

    def _stop_publisher(self, publisher: threading.Thread) -> None:
        with contextlib.suppress(queue.Full):
            self._outbox.put(None, timeout=1)
        publisher.join(timeout=CONNECT_TIMEOUT_SECONDS + 1)
        self._publisher = None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""
