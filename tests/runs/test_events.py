"""The event bus: a watcher of a run hears every event, in order, and hears of
the end only once the outputs are stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowdesk.runs import states
from flowdesk.runs.events import EventBus
from flowdesk.runs.runner import FLUSH_DELAY_SECONDS
from flowdesk.runs.service import create_run
from flowdesk.system import System
from tests.runs.conftest import stored_run
from tests.support.stored_flows import apply_flow

CHATTY = """
    id: chatty
    name: Chatty
    steps:
      - status: Counting...
        progress: 0
      - for_each: "{{ range(40) | list }}"
        as: n
        do:
          - log: line {{ n }}
          - if: "{{ n == 20 }}"
            then:
              - status: Halfway
                progress: 50
              - sleep: 1
      - set: {total: 40}
      - html: <p>{{ total }} lines</p>
    outputs: [total]
"""


async def test_events_watcher_sees_every_event_and_the_end_after_storage(
    running_system: System,
) -> None:
    apply_flow(running_system, CHATTY)
    with running_system.db.transaction() as session:
        run_id = create_run(session, "chatty", {}, "form").id

    heard: list[dict[str, Any]] = []
    stored_at_end: tuple[str, Any, Any] | None = None
    async with running_system.bus.subscribe(run_id) as events:
        running_system.executor.submit(run_id)
        async for event in events:
            heard.append(event)
            if event["kind"] == "state" and event["state"] in states.FINISHED:
                # Read at once, before anything else can run on the loop.
                run, _stored = stored_run(running_system, run_id)
                stored_at_end = (run.state, run.outputs, run.html)
                break

    assert stored_at_end == (states.SUCCEEDED, {"total": 40}, "<p>40 lines</p>")
    _run, stored_events = stored_run(running_system, run_id)
    # The queued event was stored before anyone could watch; all later ones
    # were heard, in order, exactly as stored.
    assert [event["seq"] for event in heard] == [e.seq for e in stored_events[1:]]
    assert [(event["kind"], event["message"]) for event in heard] == [
        (e.kind, e.message) for e in stored_events[1:]
    ]
    assert [event["message"] for event in heard if event["kind"] == "log"] == [
        f"line {n}" for n in range(40)
    ]
    assert heard[0]["state"] == states.RUNNING


async def test_events_log_is_stored_while_the_run_goes_on(
    running_system: System,
) -> None:
    apply_flow(running_system, CHATTY)
    with running_system.db.transaction() as session:
        run_id = create_run(session, "chatty", {}, "form").id

    async with running_system.bus.subscribe(run_id) as events:
        running_system.executor.submit(run_id)
        async for event in events:
            if event["kind"] == "status" and event["message"] == "Halfway":
                break
        # The run now sleeps for a second; the batch of log lines reaches the
        # database within the flush delay, long before the run ends.
        deadline = asyncio.get_running_loop().time() + FLUSH_DELAY_SECONDS + 0.6
        while True:
            run, stored = stored_run(running_system, run_id)
            logged = [event.message for event in stored]
            if "line 20" in logged or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)

    assert run.state == states.RUNNING
    assert "line 20" in logged
    assert run.status_message == "Halfway"
    assert run.progress == 50


async def test_events_bus_keeps_runs_apart() -> None:
    bus = EventBus()
    async with bus.subscribe("one") as one, bus.subscribe("two") as two:
        bus.publish("one", {"seq": 1, "message": "for one"})
        bus.publish("two", {"seq": 1, "message": "for two"})

        assert await one.get(timeout=1) == {"seq": 1, "message": "for one"}
        assert await two.get(timeout=1) == {"seq": 1, "message": "for two"}
        assert await one.get(timeout=0.05) is None
    assert bus.watcher_count("one") == 0


async def test_events_bus_accepts_events_from_other_threads() -> None:
    bus = EventBus()
    async with bus.subscribe("run") as watcher:
        await asyncio.to_thread(bus.publish, "run", {"seq": 7})

        assert await watcher.get(timeout=1) == {"seq": 7}


async def test_events_bus_drops_a_watcher_that_falls_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flowdesk.runs.events.SUBSCRIBER_BACKLOG", 3)
    bus = EventBus()
    async with bus.subscribe("run") as watcher:
        for seq in range(5):
            bus.publish("run", {"seq": seq})

        # Its stream ends (the page reconnects and reads the stored log)
        # instead of the backlog growing without bound.
        heard = [event async for event in watcher]
        assert bus.watcher_count("run") == 0

    assert watcher.overflowed
    assert len(heard) < 5
