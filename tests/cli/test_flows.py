"""`flowdesk flows apply`, `flows list` and `flows export`."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import Invoke, write_flow

HELLO = """\
id: hello
name: Hello
location: Getting Started
tags: [demo]
interactive:
  enabled: true
steps:
  - log: Hello
"""

REPORT = """\
id: report
name: Report
location: Sales/Reports
steps:
  - set: {total: 3}
"""

BROKEN = """\
id: broken
name: Broken
steps:
  - log: fine
  - sleep: "{{ 1 + }}"
"""


def test_flows_apply_files_prints_what_was_created(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    hello = write_flow(tmp_path / "flows", "hello.yaml", HELLO)
    report = write_flow(tmp_path / "flows", "report.yml", REPORT)

    result = flowdesk("flows", "apply", str(hello), str(report))

    assert result.exit_code == 0
    assert "hello: created (version 1)" in result.stdout
    assert "report: created (version 1)" in result.stdout


def test_flows_apply_folder_reports_updated_and_unchanged(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    write_flow(folder, "hello.yaml", HELLO)
    write_flow(folder / "sales", "report.yaml", REPORT)
    write_flow(folder, "notes.txt", "not a flow")
    flowdesk("flows", "apply", str(folder))

    write_flow(folder / "sales", "report.yaml", REPORT.replace("3", "4"))
    result = flowdesk("flows", "apply", str(folder))

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "hello: unchanged",
        "report: updated (version 2)",
    ]


def test_flows_apply_bad_file_names_file_and_line_and_applies_nothing(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    write_flow(folder, "a-hello.yaml", HELLO)
    broken = write_flow(folder, "b-broken.yaml", BROKEN)

    result = flowdesk("flows", "apply", str(folder))

    assert result.exit_code == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{broken}:5: ")
    assert "steps[1]" in first
    listed = flowdesk("flows", "list").stdout
    assert "hello" not in listed


def test_flows_apply_unreadable_yaml_points_at_the_line(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    bad = write_flow(tmp_path, "bad.yaml", "id: x\nname: [unclosed\nsteps: []\n")

    result = flowdesk("flows", "apply", str(bad))

    assert result.exit_code == 1
    assert re.match(rf"{re.escape(str(bad))}:\d+: ", result.stderr)


def test_flows_apply_missing_path_is_one_clear_line(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    result = flowdesk("flows", "apply", str(tmp_path / "nowhere.yaml"))

    assert result.exit_code == 1
    assert str(tmp_path / "nowhere.yaml") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_flows_apply_empty_folder_says_nothing_was_found(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()

    result = flowdesk("flows", "apply", str(tmp_path / "empty"))

    assert result.exit_code == 1
    assert "No flow files" in result.stderr


def test_flows_list_shows_flows_with_location_and_settings(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    flowdesk("flows", "apply", str(write_flow(tmp_path, "hello.yaml", HELLO)))
    flowdesk("flows", "apply", str(write_flow(tmp_path, "report.yaml", REPORT)))

    result = flowdesk("flows", "list")

    assert result.exit_code == 0
    hello = next(line for line in result.stdout.splitlines() if "hello" in line)
    report = next(line for line in result.stdout.splitlines() if "report" in line)
    assert "Getting Started" in hello and "demo" in hello and "yes" in hello
    assert "Sales/Reports" in report and "no" in report


def test_flows_export_applies_back_as_unchanged(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    flowdesk("flows", "apply", str(write_flow(tmp_path, "report.yaml", REPORT)))

    exported = flowdesk("flows", "export", "report")
    again = write_flow(tmp_path / "again", "report.yaml", exported.stdout)
    result = flowdesk("flows", "apply", str(again))

    assert exported.exit_code == 0
    assert "id: report" in exported.stdout
    assert result.stdout.strip() == "report: unchanged"


def test_flows_export_of_an_unknown_flow_is_one_line(flowdesk: Invoke) -> None:
    result = flowdesk("flows", "export", "ghost")

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: There is no flow with the id 'ghost'."
