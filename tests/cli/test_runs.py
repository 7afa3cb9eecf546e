"""`flowdesk runs list` and `flowdesk runs show`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke, write_flow

RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")

GREETER = """\
id: greeter
name: Greeter
interactive:
  enabled: true
  input_schema:
    type: object
    properties:
      name: {type: string, default: World}
steps:
  - log: Hello {{ inputs.name }}
  - set: {greeting: "Hello {{ inputs.name }}"}
  - html: <p>{{ greeting }}</p>
"""


@pytest.fixture
def history(flowdesk: Invoke, tmp_path: Path) -> Invoke:
    write_flow(tmp_path / "flows", "greeter.yaml", GREETER)
    write_flow(
        tmp_path / "flows",
        "other.yaml",
        GREETER.replace("greeter", "other").replace("Greeter", "Other"),
    )
    flowdesk("flows", "apply", str(tmp_path / "flows"))
    for name in ("Ada", "Grace", "Linus"):
        assert flowdesk("run", "greeter", "-i", f"name={name}").exit_code == 0
    assert flowdesk("run", "other").exit_code == 0
    return flowdesk


def test_runs_list_shows_newest_first_with_whole_ids(history: Invoke) -> None:
    result = history("runs", "list")

    assert result.exit_code == 0
    rows = [line for line in result.stdout.splitlines() if RUN_ID.search(line)]
    assert len(rows) == 4
    assert "other" in rows[0]
    assert all("cli" in row and "succeeded" in row for row in rows)


def test_runs_list_filters_by_flow_and_limits(history: Invoke) -> None:
    result = history("runs", "list", "--flow", "greeter", "--limit", "2")

    rows = [line for line in result.stdout.splitlines() if RUN_ID.search(line)]
    assert len(rows) == 2
    assert all("greeter" in row for row in rows)


def test_runs_show_prints_inputs_log_outputs_and_result(history: Invoke) -> None:
    listed = history("runs", "list", "--flow", "greeter", "--limit", "1")
    match = RUN_ID.search(listed.stdout)
    assert match is not None

    result = history("runs", "show", match.group())

    assert result.exit_code == 0
    assert f"Run {match.group()} of greeter" in result.stdout
    assert "state: succeeded" in result.stdout
    assert '"name": "Linus"' in result.stdout
    assert "Hello Linus" in result.stdout
    assert '"greeting": "Hello Linus"' in result.stdout
    assert result.stdout.rstrip().endswith("Hello Linus")


def test_runs_show_of_an_unknown_run_is_one_line(flowdesk: Invoke) -> None:
    result = flowdesk("runs", "show", "0" * 32)

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: There is no run with the id '{'0' * 32}'."


def test_runs_list_refuses_a_limit_out_of_range(flowdesk: Invoke) -> None:
    result = flowdesk("runs", "list", "--limit", "0")

    assert result.exit_code == 2
    assert "--limit" in result.stderr
