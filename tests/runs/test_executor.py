"""The local executor's concurrency limit: extra runs wait as `queued` and start
the moment a slot frees, without polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from flowdesk.errors import InputError
from flowdesk.runs import states
from flowdesk.runs.executor import LocalExecutor
from flowdesk.runs.recovery import fail_interrupted
from flowdesk.runs.runner import ClaimedRun
from flowdesk.runs.service import ANSWER_WAIT_SECONDS, start_run, start_run_answered
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
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


async def test_executor_run_with_a_free_slot_is_claimed_as_it_is_created(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    run = start_run(running_system, "sleepy", {"seconds": 0.3}, "form")

    # Committed `running` and owned by this process before start_run returned.
    stored, events = stored_run(running_system, run.id)
    assert run.state == stored.state == states.RUNNING
    assert stored.owner == running_system.owner
    assert stored.heartbeat_at is not None
    assert [(event.seq, (event.data or {}).get("state")) for event in events] == [
        (1, states.QUEUED),
        (2, states.RUNNING),
    ]
    assert await finished_state(running_system, run.id) == states.SUCCEEDED
    _stored, events = stored_run(running_system, run.id)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert (events[-1].data or {}).get("state") == states.SUCCEEDED


async def test_executor_run_without_a_free_slot_is_created_queued(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    busy = [start_run(running_system, "sleepy", {"seconds": 0.3}, "form")]
    busy.append(start_run(running_system, "sleepy", {"seconds": 0.3}, "form"))

    waiting = start_run(running_system, "sleepy", {"seconds": 0}, "form")

    assert waiting.state == states.QUEUED
    for run in (*busy, waiting):
        assert await finished_state(running_system, run.id) == states.SUCCEEDED


async def test_executor_invalid_run_gives_its_reserved_slot_back(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    for _attempt in range(3):
        with pytest.raises(InputError):
            start_run(running_system, "sleepy", {"seconds": "soon"}, "form")
    await asyncio.sleep(0)  # a slot given back from another thread comes later

    runs = [
        start_run(running_system, "sleepy", {"seconds": 0}, "form") for _ in range(2)
    ]

    assert [run.state for run in runs] == [states.RUNNING, states.RUNNING]
    for run in runs:
        assert await finished_state(running_system, run.id) == states.SUCCEEDED


async def test_executor_claimed_run_cancelled_before_it_began_records_its_end(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    run = start_run(running_system, "sleepy", {"seconds": 30}, "form")
    # On the loop at once: its task has not taken a step yet.
    assert await running_system.executor.cancel(run.id) is True

    stored, _events = stored_run(running_system, run.id)
    assert stored.state == states.CANCELLED
    second = start_run(running_system, "sleepy", {"seconds": 0}, "form")
    third = start_run(running_system, "sleepy", {"seconds": 0}, "form")
    assert (second.state, third.state) == (states.RUNNING, states.RUNNING)


async def test_executor_claimed_run_on_its_way_to_the_loop_is_not_taken_for_dead(
    running_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    executor = running_system.executor
    assert isinstance(executor, LocalExecutor)
    hand_over = executor.run_claimed
    swept: list[list[str]] = []

    def sweep_first(claimed: ClaimedRun, *, wait: float | None) -> Callable[[], None]:
        # The recovery sweep of this process, between the creating commit and
        # the run's task reaching the event loop.
        swept.append(fail_interrupted(running_system))
        return hand_over(claimed, wait=wait)

    monkeypatch.setattr(executor, "run_claimed", sweep_first)
    run = start_run(running_system, "sleepy", {"seconds": 0}, "form")

    assert swept == [[]]
    assert await finished_state(running_system, run.id) == states.SUCCEEDED


async def test_run_started_for_a_page_begins_when_told(running_system: System) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    started = start_run_answered(running_system, "sleepy", {"seconds": 0}, "form")
    stored, _events = stored_run(running_system, started.run.id)
    assert stored.state == states.RUNNING  # claimed at creation, held here
    assert running_system.executor.holds(started.run.id)

    started.begin()
    started.begin()  # once is all it takes; again does nothing

    assert await finished_state(running_system, started.run.id) == states.SUCCEEDED
    _stored, events = stored_run(running_system, started.run.id)
    assert [event.data for event in events if event.kind == "state"][:2] == [
        {"state": states.QUEUED},
        {"state": states.RUNNING},
    ]


async def test_run_started_for_a_page_begins_on_its_own_if_never_told(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)

    started = start_run_answered(running_system, "sleepy", {"seconds": 0}, "form")
    await asyncio.sleep(ANSWER_WAIT_SECONDS * 4)

    assert await finished_state(running_system, started.run.id) == states.SUCCEEDED


async def test_stopping_cancels_a_run_waiting_to_begin(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", load_examples=False)
    system = open_system(settings)
    await system.executor.start()
    try:
        apply_flow(system, SLEEPY_FLOW)
        started = start_run_answered(system, "sleepy", {"seconds": 5}, "form")
        await system.executor.stop()

        stored, _events = stored_run(system, started.run.id)
        assert stored.state == states.CANCELLED
    finally:
        system.db.dispose()
