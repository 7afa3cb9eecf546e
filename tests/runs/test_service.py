"""Creating and reading runs on SQLite and PostgreSQL: validation before any
run exists, stored values that come back as written, and keyset pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from flowdesk.auth.users import create_user
from flowdesk.db.models import Run, RunEvent
from flowdesk.db.types import utcnow
from flowdesk.errors import FlowdeskError, InputError, NotFound
from flowdesk.runs import states
from flowdesk.runs.service import (
    cancel_queued,
    create_run,
    get_run,
    list_runs,
    run_events,
)
from flowdesk.system import System
from tests.support.stored_flows import apply_flow

pytestmark = pytest.mark.postgres

ORDER_FLOW = """
    id: order
    name: Order
    interactive:
      enabled: true
      input_schema:
        type: object
        required: [customer]
        properties:
          customer: {type: string}
          items: {type: integer, minimum: 1, default: 1}
          lines: {type: array}
    steps:
      - log: ordering
"""


@pytest.fixture
def order_system(any_system: System) -> System:
    apply_flow(any_system, ORDER_FLOW)
    return any_system


def count_runs(system: System) -> int:
    with system.db.reading() as session:
        return session.scalar(select(func.count()).select_from(Run)) or 0


def add_run(system: System, inputs: dict[str, object] | None = None) -> str:
    with system.db.transaction() as session:
        run = create_run(session, "order", inputs or {"customer": "ACME"}, "api")
    return run.id


def test_service_create_run_stores_a_queued_run_with_its_first_event(
    order_system: System,
) -> None:
    run_id = add_run(order_system, {"customer": "ACME", "items": 3})

    with order_system.db.reading() as session:
        run = get_run(session, run_id)
        events = run_events(session, run_id)
        assert run.state == states.QUEUED
        assert run.status_message == states.DEFAULT_MESSAGES[states.QUEUED]
        assert run.trigger == "api"
        assert run.inputs == {"customer": "ACME", "items": 3}
        assert run.version.number == 1
        assert [(e.seq, e.kind, e.data) for e in events] == [
            (1, "state", {"state": "queued"})
        ]


def test_service_create_run_fills_in_schema_defaults(order_system: System) -> None:
    run_id = add_run(order_system, {"customer": "ACME"})

    with order_system.db.reading() as session:
        assert get_run(session, run_id).inputs["items"] == 1


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        pytest.param({}, "customer", id="missing-required"),
        pytest.param({"customer": "ACME", "items": 0}, "items", id="below-minimum"),
        pytest.param({"customer": "ACME", "items": "five"}, "items", id="wrong-type"),
    ],
)
def test_service_create_run_refuses_bad_inputs_before_any_run_exists(
    order_system: System, inputs: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError) as refused, order_system.db.transaction() as s:
        create_run(s, "order", inputs, "form")

    assert field in {error.field for error in refused.value.errors} or any(
        field in error.message for error in refused.value.errors
    )
    assert count_runs(order_system) == 0


def test_service_create_run_of_unknown_flow_is_not_found(any_system: System) -> None:
    with (
        pytest.raises(NotFound, match="no-such-flow"),
        any_system.db.transaction() as s,
    ):
        create_run(s, "no-such-flow", {}, "form")


def test_service_create_run_refuses_an_unknown_trigger(order_system: System) -> None:
    with (
        pytest.raises(FlowdeskError, match="'webhook'"),
        order_system.db.transaction() as session,
    ):
        create_run(session, "order", {"customer": "ACME"}, "webhook")
    assert count_runs(order_system) == 0


def test_service_run_and_events_round_trip(order_system: System) -> None:
    inputs = {
        "customer": "Müller & Söhne «GmbH» 東京",
        "items": 2,
        "lines": [{"sku": "A-1", "price": 9.5, "gift": True, "note": None}, [1, 2]],
    }
    run_id = add_run(order_system, inputs)
    finished = utcnow() + timedelta(seconds=3)
    outputs = {"total": 19.0, "names": ["a", "b"], "nested": {"ok": False}}
    with order_system.db.transaction() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                state=states.SUCCEEDED,
                outputs=outputs,
                html="<h1>Done</h1>",
                finished_at=finished,
            )
        )
        session.add(
            RunEvent(
                run_id=run_id,
                seq=2,
                kind="status",
                message="Halfway",
                data={"progress": 50.0},
                created_at=finished,
            )
        )

    with order_system.db.reading() as session:
        run = get_run(session, run_id)
        events = run_events(session, run_id)
        assert run.inputs == inputs
        assert run.outputs == outputs
        assert run.html == "<h1>Done</h1>"
        assert run.finished_at == finished
        assert run.created_at.utcoffset() == timedelta(0)
        assert run.finished_at is not None and run.finished_at.utcoffset() == timedelta(
            0
        )
        assert [e.seq for e in events] == [1, 2]
        assert events[1].data == {"progress": 50.0}
        assert events[1].created_at == finished
        assert run_events(session, run_id, after_seq=1) == [events[1]]


def test_service_get_run_of_unknown_id_is_not_found(any_system: System) -> None:
    with pytest.raises(NotFound, match="nope"), any_system.db.reading() as session:
        get_run(session, "nope")


def test_service_cancel_queued_run(order_system: System) -> None:
    run_id = add_run(order_system)

    with order_system.db.transaction() as session:
        event = cancel_queued(session, run_id)
        assert event is not None
    with order_system.db.transaction() as session:
        assert cancel_queued(session, run_id) is None

    with order_system.db.reading() as session:
        run = get_run(session, run_id)
        assert run.state == states.CANCELLED
        assert run.status_message == states.DEFAULT_MESSAGES[states.CANCELLED]
        assert run.finished_at is not None
        assert [e.data for e in run_events(session, run_id)] == [
            {"state": "queued"},
            {"state": "cancelled"},
        ]


def make_history(system: System, count: int, tie_every: int = 3) -> list[str]:
    """`count` runs whose creation times come in groups of `tie_every` equal
    stamps; returns their ids newest first, the order pages must follow."""
    run_ids = [add_run(system) for _ in range(count)]
    base = utcnow() - timedelta(days=1)
    with system.db.transaction() as session:
        for index, run_id in enumerate(run_ids):
            stamp = base + timedelta(seconds=index // tie_every)
            session.execute(
                update(Run).where(Run.id == run_id).values(created_at=stamp)
            )
        rows = session.execute(select(Run.created_at, Run.id)).all()
    return [run_id for _, run_id in sorted(rows, reverse=True)]


def all_pages(system: System, limit: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        with system.db.reading() as session:
            page = list_runs(session, cursor=cursor, limit=limit, **filters)  # type: ignore[arg-type]
        pages.append([run.id for run in page.runs])
        if page.next_cursor is None:
            return pages
        # The cursor goes into links unencoded.
        assert all(char.isalnum() or char in "-._~" for char in page.next_cursor)
        cursor = page.next_cursor


def test_service_list_runs_pages_newest_first_without_gaps_or_repeats(
    order_system: System,
) -> None:
    expected = make_history(order_system, 23)

    pages = all_pages(order_system, limit=5)

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [run_id for page in pages for run_id in page] == expected


def test_service_list_runs_splits_same_time_runs_across_pages(
    order_system: System,
) -> None:
    # Ten runs created in the same instant, pages of three: the cursor must
    # tell them apart by id.
    expected = make_history(order_system, 10, tie_every=10)

    pages = all_pages(order_system, limit=3)

    assert [run_id for page in pages for run_id in page] == expected


def test_service_list_runs_exact_page_has_no_empty_next_page(
    order_system: System,
) -> None:
    make_history(order_system, 6)

    assert [len(page) for page in all_pages(order_system, limit=3)] == [3, 3]


def test_service_list_runs_filters_by_flow_and_user(order_system: System) -> None:
    apply_flow(order_system, ORDER_FLOW.replace("id: order", "id: other"))
    with order_system.db.transaction() as session:
        user = create_user(session, "alice", "alice-password", ["flow:run"])
        mine = create_run(session, "order", {"customer": "A"}, "form", user=user).id
        create_run(session, "order", {"customer": "B"}, "form")
        other = create_run(session, "other", {"customer": "C"}, "form").id
        user_id = user.id

    assert all_pages(order_system, 10, flow_id="other") == [[other]]
    assert all_pages(order_system, 10, flow_id="order", user_id=user_id) == [[mine]]


def test_service_list_runs_refuses_a_made_up_cursor(order_system: System) -> None:
    with (
        pytest.raises(FlowdeskError, match="not-a-cursor"),
        order_system.db.reading() as session,
    ):
        list_runs(session, cursor="not-a-cursor")
