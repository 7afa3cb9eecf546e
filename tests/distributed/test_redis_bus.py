"""The Redis event bus: events and cancel requests cross from one process's bus
to another's, a bus without Redis still serves its own watchers, and one that
loses Redis picks up again when it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from flowdesk.runs.redis_bus import RedisEventBus
from tests.support.postgres import free_port
from tests.support.redis import RedisServer

pytestmark = pytest.mark.slow


def event(seq: int, kind: str = "log", **data: object) -> dict[str, object]:
    return {"seq": seq, "kind": kind, "message": f"event {seq}", **data}


@pytest.fixture
async def buses(redis_url: str) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    """Two buses on one Redis, as two processes have."""
    pair = (RedisEventBus(redis_url), RedisEventBus(redis_url))
    loop = asyncio.get_running_loop()
    for bus in pair:
        bus.bind(loop)
    await wait_until(lambda: all(bus.live for bus in pair), "both buses are live")
    yield pair
    for bus in pair:
        await bus.close()


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def test_redis_bus_event_reaches_the_watchers_of_another_bus(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    publisher, watcher = buses

    async with (
        watcher.subscribe("run-1") as watched,
        watcher.subscribe("run-2") as other,
    ):
        publisher.publish("run-1", event(1))
        publisher.publish("run-1", event(2, "state", state="succeeded"))

        assert await watched.get(5) == event(1)
        assert await watched.get(5) == event(2, "state", state="succeeded")
        assert await other.get(0.3) is None


async def test_redis_bus_own_event_reaches_its_watcher_once(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    bus, _other = buses

    async with bus.subscribe("run-1") as watched:
        bus.publish("run-1", event(1))

        assert await watched.get(5) == event(1)
        # Redis sends it back as well; the bus knows it for its own.
        assert await watched.get(0.5) is None


async def test_redis_bus_watcher_that_left_gets_nothing_more(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    publisher, watcher = buses
    async with watcher.subscribe("run-1") as first:
        publisher.publish("run-1", event(1))
        assert await first.get(5) == event(1)

    async with watcher.subscribe("run-1") as second:
        publisher.publish("run-1", event(2))

        assert await second.get(5) == event(2)
    assert first.queue.empty()


async def test_redis_bus_cancel_request_reaches_the_other_bus(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    requester, worker = buses
    requested: asyncio.Queue[str] = asyncio.Queue()
    worker.on_cancel(requested.put_nowait)

    requester.request_cancel("run-9")

    assert await asyncio.wait_for(requested.get(), 5) == "run-9"


async def test_redis_bus_without_redis_still_serves_its_own_watchers() -> None:
    bus = RedisEventBus(f"redis://127.0.0.1:{free_port()}/0")
    bus.bind(asyncio.get_running_loop())
    try:
        started = time.monotonic()
        async with bus.subscribe("run-1") as watched:
            subscribed_after = time.monotonic() - started
            bus.publish("run-1", event(1))

            assert await watched.get(1) == event(1)
        assert subscribed_after < 0.5
        assert not bus.live
    finally:
        await bus.close()


async def test_redis_bus_picks_up_again_after_redis_restarts(
    redis_binary: str,
) -> None:
    server = RedisServer(redis_binary).start()
    publisher, watcher = RedisEventBus(server.url), RedisEventBus(server.url)
    for bus in (publisher, watcher):
        bus.bind(asyncio.get_running_loop())
    try:
        async with watcher.subscribe("run-1") as watched:
            await wait_until(lambda: watcher.live, "the watching bus is live")

            server.stop()
            await wait_until(lambda: not watcher.live, "the bus notices Redis is gone")
            server.start()
            await wait_until(lambda: watcher.live, "the bus is live again")
            await wait_until(lambda: publisher.live, "the publisher is live again")
            publisher.publish("run-1", event(7))

            assert await watched.get(5) == event(7)
    finally:
        for bus in (publisher, watcher):
            await bus.close()
        server.remove()
