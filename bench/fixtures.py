"""The flows the benchmark launches and the stored history it pages through.

Every flow is written as a flow file and applied the way a user would apply it;
only the past runs are put straight into the database, because making 100,000
runs through the server would take longer than everything else measured."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ONE_STEP = "bench-one-step"
PYTHON_STEPS = "bench-python-steps"
SET_STEPS = "bench-set-steps"
BIG_FORM = "bench-big-form"
HISTORY = "bench-history"
WAITING = "bench-waiting"

PYTHON_STEP_COUNT = 40
SET_STEP_COUNT = 10_000
BIG_FORM_FIELDS = 200

# The body of each python step: fibonacci(10) the slow, recursive way, as in
# the peers' "light sequential steps" benchmark.
FIBONACCI_BODY = """\
def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)
return fibonacci(10)
"""

# SQLite's text form of a datetime as SQLAlchemy stores it (naive UTC).
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _interactive(schema: dict[str, Any] | bool = True) -> dict[str, Any]:
    return {"enabled": True, "input_schema": schema}


def _one_step_flow() -> dict[str, Any]:
    # The same parameterised one-step flow is served by the Prefect peer.
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "title": "N", "default": 1}},
    }
    return {
        "id": ONE_STEP,
        "name": "Bench: one step",
        "interactive": _interactive(schema),
        "steps": [{"set": {"doubled": "{{ inputs.n * 2 }}"}}],
    }


def _python_steps_flow() -> dict[str, Any]:
    steps = [
        {"python": FIBONACCI_BODY, "save_as": f"fib_{index}"}
        for index in range(PYTHON_STEP_COUNT)
    ]
    return {
        "id": PYTHON_STEPS,
        "name": f"Bench: {PYTHON_STEP_COUNT} python steps",
        "interactive": _interactive(),
        "outputs": [f"fib_{PYTHON_STEP_COUNT - 1}"],
        "steps": steps,
    }


def _set_steps_flow() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"set": {"counter": 0}}]
    steps += [{"set": {"counter": "{{ counter + 1 }}"}}] * (SET_STEP_COUNT - 1)
    return {
        "id": SET_STEPS,
        "name": f"Bench: {SET_STEP_COUNT} set steps",
        "interactive": _interactive(),
        "steps": steps,
    }


def big_form_schema(fields: int = BIG_FORM_FIELDS) -> dict[str, Any]:
    """A flat schema of `fields` properties of every simple kind, each with a
    title and a hint, as a long real form would have."""
    kinds: list[dict[str, Any]] = [
        {"type": "string"},
        {"type": "integer", "minimum": 0, "default": 1},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "string", "enum": ["low", "medium", "high"]},
        {"type": "string", "format": "date"},
    ]
    properties = {}
    for index in range(fields):
        spec = dict(kinds[index % len(kinds)])
        spec["title"] = f"Field number {index}"
        spec["description"] = f"The value of field {index}, as the form asks for it."
        properties[f"field_{index}"] = spec
    return {"type": "object", "required": ["field_0"], "properties": properties}


def _big_form_flow() -> dict[str, Any]:
    return {
        "id": BIG_FORM,
        "name": f"Bench: {BIG_FORM_FIELDS}-field form",
        "interactive": _interactive(big_form_schema()),
        "steps": [{"log": "{{ inputs.field_0 }}"}],
    }


def _history_flow() -> dict[str, Any]:
    return {
        "id": HISTORY,
        "name": "Bench: long history",
        "interactive": _interactive(),
        "steps": [{"log": "one of many"}],
    }


def _waiting_flow() -> dict[str, Any]:
    # Runs until the benchmark cancels it: the state change the watchers see.
    return {
        "id": WAITING,
        "name": "Bench: waits to be cancelled",
        "interactive": _interactive(),
        "steps": [{"status": "Waiting"}, {"sleep": 600}],
    }


def write_flow_files(folder: Path) -> list[Path]:
    """Write the benchmark's flows as JSON flow files; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    flows = [
        _one_step_flow(),
        _python_steps_flow(),
        _set_steps_flow(),
        _big_form_flow(),
        _history_flow(),
        _waiting_flow(),
    ]
    paths = []
    for flow in flows:
        path = folder / f"{flow['id']}.json"
        path.write_text(json.dumps(flow, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


_ENDS = {
    False: ("succeeded", "The flow completed successfully."),
    True: ("failed", "The step failed on purpose."),
}


def insert_history(database: Path, flow_id: str, user_id: int, count: int) -> None:
    """Store `count` finished runs of `flow_id`, one a minute into the past,
    in one transaction of one prepared statement."""
    connection = sqlite3.connect(database)
    try:
        (version_id,) = connection.execute(
            "SELECT current_version_id FROM flows WHERE id = ?", (flow_id,)
        ).fetchone()
        with connection:
            connection.executemany(
                "INSERT INTO runs (id, flow_id, version_id, state, trigger, user_id,"
                " inputs, status_message, outputs, created_at, started_at,"
                " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _history_rows(flow_id, version_id, user_id, count),
            )
    finally:
        connection.close()


def _history_rows(
    flow_id: str, version_id: int, user_id: int, count: int
) -> Iterator[tuple[Any, ...]]:
    newest = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    for index in range(count):
        created = newest - timedelta(minutes=index)
        started = created + timedelta(milliseconds=2)
        finished = started + timedelta(milliseconds=5 + index % 50)
        # One run in seventeen failed, so the page shows both kinds of badge.
        state, message = _ENDS[index % 17 == 0]
        yield (
            uuid.uuid4().hex,
            flow_id,
            version_id,
            state,
            "form",
            user_id,
            "{}",
            message,
            "{}",
            created.strftime(SQLITE_TIME_FORMAT),
            started.strftime(SQLITE_TIME_FORMAT),
            finished.strftime(SQLITE_TIME_FORMAT),
        )
