"""The local executor's concurrency limit: extra runs wait as `queued` and start
the moment a slot frees, without polling."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from flowdesk.runs import states
from flowdesk.runs.service import start_run
from flowdesk.system import System
from tests.runs.conftest import finished_state, stored_run, wait_for_state
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow


async def test_executor_third_run_waits_for_a_free_slot(
    running_system: System,
) -> None:
    assert running_system.executor.max_concurrent == 2
    apply_flow(running_system, SLEEPY_FLOW)

    first = start_run(running_system, "sleepy", {"seconds": 0.5}, "form")
    second = start_run(running_system, "sleepy", {"seconds": 1.0}, "form")
    third = start_run(running_system, "sleepy", {"seconds": 0}, "form")
    await wait_for_state(running_system, first.id, states.RUNNING)
    await wait_for_state(running_system, second.id, states.RUNNING)
    await asyncio.sleep(0.1)

    waiting, _events = stored_run(running_system, third.id)
    assert waiting.state == states.QUEUED
    assert waiting.started_at is None

    for run in (first, second, third):
        assert await finished_state(running_system, run.id) == states.SUCCEEDED
    done_first, _events = stored_run(running_system, first.id)
    done_second, _events = stored_run(running_system, second.id)
    done_third, _events = stored_run(running_system, third.id)
    assert done_third.state == states.SUCCEEDED
    assert done_first.finished_at is not None and done_third.started_at is not None
    # It started when the first run ended, long before the second did.
    gap = done_third.started_at - done_first.finished_at
    assert timedelta(0) <= gap < timedelta(milliseconds=300)
    assert done_second.finished_at is not None
    assert done_third.started_at < done_second.finished_at


async def test_executor_run_starts_without_delay(running_system: System) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    run = start_run(running_system, "sleepy", {"seconds": 0}, "form")
    await running_system.executor.wait(run.id)

    stored, _events = stored_run(running_system, run.id)
    assert stored.started_at is not None
    assert stored.started_at - stored.created_at < timedelta(milliseconds=300)


async def test_executor_many_runs_all_finish_within_the_limit(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    runs = [
        start_run(running_system, "sleepy", {"seconds": 0.05}, "api") for _ in range(8)
    ]
    finals = [await finished_state(running_system, run.id) for run in runs]

    assert finals == [states.SUCCEEDED] * 8
    spans = []
    for run in runs:
        stored, _events = stored_run(running_system, run.id)
        assert stored.started_at is not None and stored.finished_at is not None
        spans.append((stored.started_at, stored.finished_at))
    # Never more than two at once: at any run's start, at most one other runs.
    for start, _end in spans:
        overlapping = [s for s, e in spans if s <= start < e]
        assert len(overlapping) <= 2
