"""The Celery executor's sending side: a broker that is away holds up nobody and
loses no run, and the sweep's sending again does not pile up copies of a run
that is already on its way."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from flowdesk.runs import celery_executor, states
from flowdesk.runs.celery_app import QUEUE
from flowdesk.runs.recovery import redispatch_queued
from flowdesk.runs.service import get_run, start_run
from flowdesk.system import System, open_system
from tests.distributed.conftest import celery_settings, fresh_database
from tests.support.redis import RedisServer
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(redis_binary: str) -> AsyncIterator[RedisServer]:
    """A Redis of this test's own, not started yet: the broker is away."""
    server = RedisServer(redis_binary)
    yield server
    server.remove()


@pytest.fixture
async def celery_system(
    tmp_path: Path,
    postgres_url: str,
    broker: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[System]:
    # Sent again at the next try rather than after the pause a real outage gets.
    monkeypatch.setattr(celery_executor, "SEND_PAUSE_SECONDS", 0.0)
    # A database of its own: the sweep sends every queued run it finds.
    database_url = fresh_database(postgres_url)
    system = open_system(celery_settings(tmp_path / "data", database_url, broker.url))
    apply_flow(system, SLEEPY_FLOW)
    await system.executor.start()
    yield system
    await system.executor.stop()
    system.db.dispose()


def state_of(system: System, run_id: str) -> str:
    with system.db.reading() as session:
        return get_run(session, run_id).state


def queued_tasks(broker: RedisServer) -> int:
    client = redis.Redis.from_url(broker.url)
    try:
        return int(client.llen(QUEUE))
    finally:
        client.close()


def wait_for_tasks(broker: RedisServer, count: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while queued_tasks(broker) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} tasks reached the broker")
        time.sleep(0.02)


async def test_celery_executor_broker_away_start_returns_at_once_and_run_stays_queued(
    celery_system: System, broker: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=celery_executor.__name__)

    started = time.monotonic()
    run = start_run(celery_system, "sleepy", {}, "api")
    took = time.monotonic() - started
    time.sleep(0.5)  # the sending thread tries meanwhile, and fails

    assert took < 0.2
    assert state_of(celery_system, run.id) == states.QUEUED
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert run.id in warning.getMessage()
    assert f"127.0.0.1:{broker.port}" in warning.getMessage()


async def test_celery_executor_run_the_broker_missed_is_sent_once_it_is_back(
    celery_system: System, broker: RedisServer
) -> None:
    run = start_run(celery_system, "sleepy", {}, "api")
    time.sleep(0.3)
    broker.start()

    redispatch_queued(celery_system)
    wait_for_tasks(broker, 1)
    # The task is waiting for a worker: the sweep leaves it at one copy.
    redispatch_queued(celery_system)
    redispatch_queued(celery_system)
    time.sleep(0.3)

    assert queued_tasks(broker) == 1
    assert state_of(celery_system, run.id) == states.QUEUED


async def test_celery_executor_runs_lost_with_an_empty_restart_are_sent_again(
    celery_system: System, broker: RedisServer
) -> None:
    broker.start()
    runs = [start_run(celery_system, "sleepy", {}, "api") for _ in range(2)]
    wait_for_tasks(broker, 2)

    broker.stop()  # no persistence: the tasks and their marks are gone
    broker.start()
    redispatch_queued(celery_system)

    wait_for_tasks(broker, 2)
    assert all(state_of(celery_system, run.id) == states.QUEUED for run in runs)
