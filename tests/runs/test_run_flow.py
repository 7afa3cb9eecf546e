"""`run_flow` through the runner: child runs linked to their parent, waiting or
not, failures, input checks, the depth limit and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from flowdesk.db.models import Run, User
from flowdesk.runs import states
from flowdesk.runs.service import cancel_run, start_run
from flowdesk.secrets.store import secret_box, set_secret
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.runs.conftest import stored_run, wait_for_state
from tests.support.interactive import add_user
from tests.support.stored_flows import apply_flow

CHILD = """
    id: child
    name: Child
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [n]
        properties:
          n: {type: integer}
    steps:
      - if: "{{ inputs.n < 0 }}"
        then:
          - fail: "n must not be negative, got {{ inputs.n }}"
      - set: {doubled: "{{ inputs.n * 2 }}"}
"""

PARENT = """
    id: parent
    name: Parent
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          n: {type: integer, default: 21}
    steps:
      - run_flow: child
        inputs: {n: "{{ inputs.n }}"}
        save_as: result
      - set: {answer: "{{ result.outputs.doubled }}"}
"""

SLEEPY_CHILD = """
    id: sleepy-child
    name: Sleepy child
    steps:
      - sleep: 5
"""

RECURSIVE = """
    id: recursive
    name: Recursive
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          level: {type: integer, default: 0}
    steps:
      - run_flow: recursive
        inputs: {level: "{{ inputs.level + 1 }}"}
        save_as: deeper
"""


def runs_of(system: System, flow_id: str) -> list[Run]:
    with system.db.reading() as session:
        query = select(Run).where(Run.flow_id == flow_id).order_by(Run.created_at)
        return list(session.scalars(query))


async def test_run_flow_waits_for_the_child_and_saves_its_outputs(
    running_system: System,
) -> None:
    apply_flow(running_system, CHILD)
    apply_flow(running_system, PARENT)
    add_user(running_system, "ada")
    with running_system.db.reading() as session:
        ada = session.scalars(select(User).where(User.username == "ada")).one()

    parent = start_run(running_system, "parent", {}, "form", user=ada)
    assert await running_system.executor.wait(parent.id) == states.SUCCEEDED

    stored, events = stored_run(running_system, parent.id)
    [child] = runs_of(running_system, "child")
    assert stored.outputs is not None
    assert stored.outputs["answer"] == 42
    assert stored.outputs["result"] == {
        "state": "succeeded",
        "outputs": {"doubled": 42},
        "run_id": child.id,
    }
    # The run page links them through parent_run_id; the child is the parent
    # user's, so that they can open it.
    assert child.parent_run_id == parent.id
    assert child.trigger == "flow"
    assert child.user_id == ada.id
    [started] = [e for e in events if e.message.startswith("Started the flow")]
    assert started.message == f"Started the flow 'child' as run {child.id}"
    # What tells a live parent page to show the child's link.
    assert started.data is not None and started.data["child_run_id"] == child.id


async def test_run_flow_without_waiting_saves_only_the_run_id(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_CHILD)
    apply_flow(
        running_system,
        """
        id: starter
        name: Starter
        steps:
          - run_flow: sleepy-child
            wait: false
            save_as: started
        """,
    )

    parent = start_run(running_system, "starter", {}, "api")
    assert await running_system.executor.wait(parent.id) == states.SUCCEEDED

    [child] = runs_of(running_system, "sleepy-child")
    stored, _events = stored_run(running_system, parent.id)
    assert stored.outputs == {"started": {"run_id": child.id}}
    assert child.parent_run_id == parent.id
    await wait_for_state(running_system, child.id, states.RUNNING)


async def test_run_flow_failed_child_fails_the_step(running_system: System) -> None:
    apply_flow(running_system, CHILD)
    apply_flow(running_system, PARENT)

    parent = start_run(running_system, "parent", {"n": -1}, "api")
    assert await running_system.executor.wait(parent.id) == states.FAILED

    stored, _events = stored_run(running_system, parent.id)
    [child] = runs_of(running_system, "child")
    assert stored.error_step == "steps[0]"
    assert stored.error == (
        f"the flow 'child' (run {child.id}) failed: n must not be negative, got -1"
    )


async def test_run_flow_failed_child_with_on_error_continue(
    running_system: System,
) -> None:
    apply_flow(running_system, CHILD)
    apply_flow(
        running_system,
        """
        id: tolerant
        name: Tolerant
        steps:
          - run_flow: child
            inputs: {n: -5}
            save_as: result
            on_error: continue
          - set: {child_state: "{{ result.state }}", why: "{{ result.error }}"}
        """,
    )

    parent = start_run(running_system, "tolerant", {}, "api")
    assert await running_system.executor.wait(parent.id) == states.SUCCEEDED

    stored, _events = stored_run(running_system, parent.id)
    assert stored.outputs is not None
    assert stored.outputs["child_state"] == "failed"
    assert stored.outputs["why"] == "n must not be negative, got -5"
    assert "the flow 'child'" in stored.outputs["error"]["message"]


async def test_run_flow_checks_the_inputs_against_the_child_schema(
    running_system: System,
) -> None:
    apply_flow(running_system, CHILD)
    apply_flow(
        running_system,
        """
        id: careless
        name: Careless
        steps:
          - run_flow: child
            inputs: {n: lots}
        """,
    )

    parent = start_run(running_system, "careless", {}, "api")
    assert await running_system.executor.wait(parent.id) == states.FAILED

    stored, _events = stored_run(running_system, parent.id)
    assert stored.error is not None
    assert stored.error.startswith("could not start the flow 'child': n: ")
    assert runs_of(running_system, "child") == []


async def test_run_flow_unknown_flow_fails_naming_it(running_system: System) -> None:
    apply_flow(
        running_system,
        """
        id: lost
        name: Lost
        steps:
          - run_flow: no-such-flow
        """,
    )

    parent = start_run(running_system, "lost", {}, "api")
    assert await running_system.executor.wait(parent.id) == states.FAILED

    stored, _events = stored_run(running_system, parent.id)
    assert stored.error is not None
    assert "could not start the flow 'no-such-flow'" in stored.error


async def test_run_flow_refuses_to_put_a_secret_into_inputs(
    running_system: System,
) -> None:
    apply_flow(running_system, CHILD)
    apply_flow(
        running_system,
        """
        id: leaky
        name: Leaky
        steps:
          - run_flow: child
            inputs: {n: 1, note: "{{ secrets.TOKEN }}"}
        """,
    )
    with running_system.db.transaction() as session:
        set_secret(session, secret_box(running_system.settings), "TOKEN", "tok-12345")

    parent = start_run(running_system, "leaky", {}, "api")
    assert await running_system.executor.wait(parent.id) == states.FAILED

    stored, _events = stored_run(running_system, parent.id)
    assert stored.error is not None
    assert "the inputs hold the value of a secret" in stored.error
    assert runs_of(running_system, "child") == []


@pytest.fixture
async def shallow_system(tmp_path: Path) -> AsyncIterator[System]:
    """Sub-flows may nest three deep; two runs at a time, fewer than a chain of
    waiting parents needs, which the executor's slot lending makes up for."""
    settings = Settings(
        data_dir=tmp_path / "data",
        load_examples=False,
        max_concurrent_runs=2,
        max_run_depth=3,
    )
    system = open_system(settings)
    await system.executor.start()
    yield system
    await system.executor.stop()
    system.db.dispose()


async def test_run_flow_recursion_stops_at_the_depth_limit(
    shallow_system: System,
) -> None:
    apply_flow(shallow_system, RECURSIVE)

    top = start_run(shallow_system, "recursive", {}, "api")
    final = await asyncio.wait_for(shallow_system.executor.wait(top.id), 10)

    assert final == states.FAILED
    chain = runs_of(shallow_system, "recursive")
    assert len(chain) == 4  # the top run and three levels below it
    assert all(run.state == states.FAILED for run in chain)
    deepest = chain[-1]
    assert deepest.error is not None
    assert "flows may start flows only 3 levels deep" in deepest.error
    assert "does a flow start itself?" in deepest.error
    stored, _events = stored_run(shallow_system, top.id)
    assert stored.error is not None
    assert "flows may start flows only 3 levels deep" in stored.error


async def test_run_flow_cancelling_the_parent_cancels_the_child(
    running_system: System,
) -> None:
    apply_flow(running_system, SLEEPY_CHILD)
    apply_flow(
        running_system,
        """
        id: waiter
        name: Waiter
        steps:
          - run_flow: sleepy-child
        """,
    )

    parent = start_run(running_system, "waiter", {}, "api")
    await wait_for_state(running_system, parent.id, states.RUNNING)
    for _ in range(200):
        children = runs_of(running_system, "sleepy-child")
        if children and children[0].state == states.RUNNING:
            break
        await asyncio.sleep(0.01)

    assert await cancel_run(running_system, parent.id)

    [child] = runs_of(running_system, "sleepy-child")
    assert child.state == states.CANCELLED
    stored, _events = stored_run(running_system, parent.id)
    assert stored.state == states.CANCELLED
