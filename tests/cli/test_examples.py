"""Every bundled example flow, run with `flowdesk run`, does what its file says:
each succeeds with a readable result, except the one that fails on purpose."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from flowdesk.flows.definition import bundled_examples, load_file
from tests.cli.conftest import Invoke


@dataclass(frozen=True)
class Example:
    flow_id: str
    inputs: tuple[str, ...]
    exit_code: int
    expected: tuple[str, ...]  # text the terminal must show


EXAMPLES = [
    Example(
        "hello-world",
        (),
        0,
        ("Hello from flowdesk, run ", "started by a cli trigger", "Français"),
    ),
    Example(
        "order-report",
        ("customer=ACME GmbH", "items=5", "express=yes"),
        0,
        ("Express delivery requested", "Order for ACME GmbH", "10 units"),
    ),
    Example(
        "employee-onboarding",
        (
            "full_name=Ada Lovelace",
            "email=ada@example.com",
            "start_date=2026-01-05",
            "department=Engineering",
            "equipment=Laptop,Monitor",
            "remote=true",
        ),
        0,
        (
            "Ordering Monitor",
            "Welcome, Ada Lovelace",
            "Laptop, Monitor",
            "Courier to the home address",
        ),
    ),
    Example(
        "event-registration",
        (
            "name=Grace Hopper",
            "email=grace@example.com",
            "sessions=Keynote",
            "sessions=Customer panel",
            "guests=2",
            "address.city=Berlin",
        ),
        0,
        (
            "Reserved 3 seat(s) in Customer panel",
            "See you at the customer day, Grace Hopper!",
            "Your badge goes to Berlin.",
        ),
    ),
    Example(
        "expense-claim",
        (
            "employee=Linus",
            "trip.destination=Paris",
            "trip.departure=2026-02-01",
            "lines.0.description=Train",
            "lines.0.amount=120.5",
            "lines.1.description=Hotel",
            "lines.1.amount=480",
            "lines.1.has_receipt=false",
        ),
        0,
        (
            "No receipt for Hotel",
            '"total": 600.5',
            '"approver": "Finance department"',
            "To be approved by: Finance department",
        ),
    ),
    Example(
        "system-health-check",
        ("pause=0", "environment=production"),
        0,
        ("storage answered", "Health of production", "mail: OK"),
    ),
    Example(
        # Without the connection its comment describes, the report says what
        # went wrong instead of failing.
        "api-report",
        ("samples=1",),
        0,
        (
            "The API could not be reached: there is no connection named "
            "'flowdesk-local'",
            "API report: /healthz",
            '"calls": 0',
        ),
    ),
    Example(
        "failing-import",
        (),
        1,
        (
            "The file has the columns sku, name, currency",
            "failed: The supplier file has no 'price' column, so no prices were "
            "imported.",
        ),
    ),
]


def test_examples_each_bundled_flow_has_a_case_here() -> None:
    bundled = {load_file(path).id for path in bundled_examples()}

    assert bundled == {example.flow_id for example in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.flow_id)
def test_examples_run_as_described(flowdesk: Invoke, example: Example) -> None:
    folder = str(bundled_examples()[0].parent)
    assert flowdesk("flows", "apply", folder).exit_code == 0
    arguments = [part for value in example.inputs for part in ("--input", value)]

    result = flowdesk("run", example.flow_id, *arguments)

    assert result.exit_code == example.exit_code, result.output
    for text in example.expected:
        assert text in result.stdout
    if example.exit_code == 0:
        assert "succeeded: The flow completed successfully." in result.stdout
