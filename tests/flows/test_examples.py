"""The example flows shipped with flowdesk, loaded on a fresh server's first start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from flowdesk.flows.definition import (
    FORMAT_SCHEMA,
    FlowDefinition,
    bundled_examples,
    dump_definition,
    load_file,
    parse_definition,
)
from flowdesk.flows.steps import STEP_KINDS

EXAMPLES = bundled_examples()


def all_examples() -> list[FlowDefinition]:
    return [load_file(path) for path in EXAMPLES]


def walk_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        kind = next(k for k in step if k in STEP_KINDS)
        if kind == "try":  # the one kind whose own value is a list of steps
            yield from walk_steps(step["try"])
        for key, spec in STEP_KINDS[kind].keys.items():
            if spec.holds_steps:
                yield from walk_steps(step.get(key, []))


def walk_schemas(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from walk_schemas(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from walk_schemas(item)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_bundled_example_loads_and_round_trips(path: Path) -> None:
    definition = load_file(path)

    assert path.stem == definition.id
    assert definition.interactive.enabled
    assert definition.location and definition.tags and definition.description
    assert parse_definition(dump_definition(definition)) == definition


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_bundled_example_passes_the_published_schema(path: Path) -> None:
    # What an editor with the schema would show: no complaints.
    document = yaml.safe_load(path.read_text(encoding="utf-8"))

    assert list(Draft202012Validator(FORMAT_SCHEMA).iter_errors(document)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_bundled_example_defaults_fit_their_fields(path: Path) -> None:
    schema = load_file(path).input_schema

    for field in walk_schemas(schema):
        if "default" in field:
            without_default = {k: v for k, v in field.items() if k != "default"}
            validator = Draft202012Validator(
                without_default, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            assert list(validator.iter_errors(field["default"])) == [], field


def test_bundled_examples_are_at_least_six_with_unique_ids() -> None:
    ids = [definition.id for definition in all_examples()]

    assert len(ids) >= 6
    assert len(set(ids)) == len(ids)


def test_bundled_examples_use_every_core_step_kind() -> None:
    used = {
        next(key for key in step if key in STEP_KINDS)
        for definition in all_examples()
        for step in walk_steps(definition.steps)
    }

    assert used == set(STEP_KINDS)


def test_bundled_examples_show_every_input_type() -> None:
    fields = [
        field
        for definition in all_examples()
        for field in walk_schemas(definition.input_schema)
    ]

    def has(predicate: Any) -> bool:
        return any(predicate(field) for field in fields)

    for kind in ("string", "integer", "number", "boolean", "array", "object"):
        assert has(lambda f, kind=kind: f.get("type") == kind), kind
    for format_name in ("date", "email", "uri", "textarea"):
        assert has(lambda f, name=format_name: f.get("format") == name), format_name
    assert has(lambda f: f.get("type") == "string" and "enum" in f)
    assert has(
        lambda f: "oneOf" in f and all({"const", "title"} <= set(o) for o in f["oneOf"])
    )
    assert has(
        lambda f: (
            f.get("items", {}).get("type") == "string" and not f["items"].get("enum")
        )
    )
    assert has(lambda f: "enum" in f.get("items", {}))
    assert has(lambda f: f.get("items", {}).get("type") == "object")
    assert has(
        lambda f: (
            f.get("type") == "object"
            and any(p.get("type") == "object" for p in f.get("properties", {}).values())
        )
    )


def test_bundled_examples_show_the_special_cases() -> None:
    examples = {definition.id: definition for definition in all_examples()}
    steps = {flow_id: list(walk_steps(d.steps)) for flow_id, d in examples.items()}

    without_input = [d.id for d in examples.values() if d.input_schema is True]
    assert {"hello-world", "failing-import"} <= set(without_input)
    assert any("fail" in step for step in steps["failing-import"])
    assert any("progress" in step for step in steps["system-health-check"])
    assert any("sleep" in step for step in steps["system-health-check"])
    assert examples["expense-claim"].outputs == [
        "total",
        "approver",
        "missing_receipts",
    ]


def test_order_report_example_is_the_design_example() -> None:
    definition = next(d for d in all_examples() if d.id == "order-report")

    assert definition.location == "Sales/Reports"
    assert definition.interactive.allowed_triggers == ("link_click",)
    assert definition.interactive.link_sharing
    assert definition.schedule is not None
    assert definition.schedule.enabled is False  # a fresh install starts no runs
    assert definition.input_schema == {
        "type": "object",
        "required": ["customer"],
        "properties": {
            "customer": {"type": "string", "title": "Customer name"},
            "items": {
                "type": "integer",
                "title": "Number of items",
                "minimum": 1,
                "default": 1,
            },
            "express": {"type": "boolean", "title": "Express delivery"},
        },
    }
    assert [next(iter(step)) for step in definition.steps] == [
        "set",
        "status",
        "if",
        "for_each",
        "html",
    ]
