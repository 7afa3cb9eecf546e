"""`flowdesk run`: a run in the terminal, its log, outputs and HTML result as
text, and an exit code that says how it ended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flowdesk.db.models import Run
from flowdesk.settings import Settings
from flowdesk.system import open_system
from tests.cli.conftest import Invoke, write_flow

ORDER = """\
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
      express: {type: boolean, default: false}
      tags: {type: array, items: {type: string}}
steps:
  - log: Order for {{ inputs.customer }}
  - set:
      total: "{{ inputs.items * 2 }}"
      express: "{{ inputs.express }}"
      tags: "{{ inputs.get('tags', []) }}"
  - html: |
      <h1>Order for {{ inputs.customer }}</h1>
      <p>{{ total }} units</p>
"""

FAILING = """\
id: doomed
name: Doomed
steps:
  - log: Trying
  - fail: The supplier file has no price column.
"""


@pytest.fixture
def flows(flowdesk: Invoke, tmp_path: Path) -> Invoke:
    folder = tmp_path / "flows"
    write_flow(folder, "order.yaml", ORDER)
    write_flow(folder, "doomed.yaml", FAILING)
    assert flowdesk("flows", "apply", str(folder)).exit_code == 0
    return flowdesk


def outputs_of(stdout: str) -> dict[str, object]:
    """The JSON printed after the "Outputs" heading."""
    text = stdout.split("Outputs\n", 1)[1].split("\nResult\n", 1)[0]
    return json.loads(text)  # type: ignore[no-any-return]


def count_runs(data_dir: Path) -> int:
    system = open_system(Settings(data_dir=data_dir))
    with system.db.reading() as session:
        count = session.scalar(select(func.count()).select_from(Run)) or 0
    system.db.dispose()
    return count


def test_run_success_prints_log_outputs_and_result_as_text(flows: Invoke) -> None:
    result = flows(
        "run", "order", "--input", "customer=ACME GmbH", "--input", "items=5"
    )

    assert result.exit_code == 0
    assert "Order for ACME GmbH" in result.stdout
    assert "succeeded: The flow completed successfully." in result.stdout
    assert outputs_of(result.stdout) == {"total": 10, "express": False, "tags": []}
    result_text = result.stdout.split("Result\n", 1)[1]
    assert result_text.splitlines() == ["Order for ACME GmbH", "10 units"]
    assert "<h1>" not in result.stdout


def test_run_converts_inputs_by_the_schema(flows: Invoke) -> None:
    result = flows(
        "run",
        "order",
        "-i",
        "customer=ACME",
        "-i",
        "express=yes",
        "-i",
        "tags=a,b",
        "-i",
        "unknown=ignored",
    )

    assert result.exit_code == 0
    assert outputs_of(result.stdout) == {
        "total": 2,
        "express": True,
        "tags": ["a", "b"],
    }


def test_run_takes_json_input(flows: Invoke) -> None:
    result = flows("run", "order", "--json", '{"customer": "ACME", "items": 4}')

    assert result.exit_code == 0
    assert outputs_of(result.stdout)["total"] == 8


def test_run_failing_flow_exits_1_with_its_message(flows: Invoke) -> None:
    result = flows("run", "doomed")

    assert result.exit_code == 1
    assert "Trying" in result.stdout
    assert "failed: The supplier file has no price column." in result.stdout


def test_run_refuses_bad_input_before_a_run_exists(
    flows: Invoke, data_dir: Path
) -> None:
    before = count_runs(data_dir)

    result = flows("run", "order", "--input", "items=five")

    assert result.exit_code == 1
    assert "customer" in result.stderr
    assert "items" in result.stderr
    assert count_runs(data_dir) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--input", "customer"], "key=value", id="input-without-equals"),
        pytest.param(["--json", "{broken"], "--json", id="json-not-parsing"),
        pytest.param(["--json", "[1, 2]"], "--json", id="json-not-object"),
    ],
)
def test_run_explains_malformed_input_in_one_line(
    flows: Invoke, arguments: list[str], message: str
) -> None:
    result = flows("run", "order", *arguments)

    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_of_an_unknown_flow_says_so(flowdesk: Invoke) -> None:
    result = flowdesk("run", "ghost")

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: There is no flow with the id 'ghost'."


def test_run_records_a_cli_run(flows: Invoke) -> None:
    flows("run", "order", "-i", "customer=ACME")

    listed = flows("runs", "list")

    row = next(line for line in listed.stdout.splitlines() if "order" in line)
    assert "cli" in row and "succeeded" in row
