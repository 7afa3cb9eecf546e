"""`flowdesk secrets ...` and `flowdesk connections ...`, and that no command's
output ever shows a secret's value: not `run`, `runs show` or `flows export`."""

from __future__ import annotations

import re
from pathlib import Path

from flowdesk.secrets.store import load_secrets
from flowdesk.settings import Settings
from flowdesk.system import open_system
from tests.cli.conftest import Invoke, write_flow

VALUE = "v4lue-that-stays-hidden"

USES_SECRET = """\
id: uses-secret
name: Uses a secret
steps:
  - log: "Signing in with {{ secrets.API_TOKEN }}"
  - set: {header: "Bearer {{ secrets.API_TOKEN }}"}
  - html: "<p>{{ secrets.API_TOKEN }}</p>"
"""


def stored_secrets(data_dir: Path) -> dict[str, str]:
    system = open_system(Settings(data_dir=data_dir))
    with system.db.reading() as session:
        values = load_secrets(session, system.settings)
    system.db.dispose()
    return values


def test_secrets_set_with_value_then_list_names_only(
    flowdesk: Invoke, data_dir: Path
) -> None:
    created = flowdesk("secrets", "set", "API_TOKEN", "--value", VALUE)
    changed = flowdesk("secrets", "set", "API_TOKEN", "--value", VALUE + "2")
    listed = flowdesk("secrets", "list")

    assert created.exit_code == 0
    assert created.stdout.strip() == "Secret API_TOKEN created."
    assert changed.stdout.strip() == "Secret API_TOKEN changed."
    assert "API_TOKEN" in listed.stdout
    assert VALUE not in created.output + changed.output + listed.output
    assert stored_secrets(data_dir) == {"API_TOKEN": VALUE + "2"}


def test_secrets_set_reads_the_value_from_standard_input(
    flowdesk: Invoke, data_dir: Path
) -> None:
    result = flowdesk("secrets", "set", "FROM_STDIN", input=VALUE + "\n")

    assert result.exit_code == 0
    assert VALUE not in result.output
    assert stored_secrets(data_dir) == {"FROM_STDIN": VALUE}


def test_secrets_set_refuses_a_bad_name_in_one_line(flowdesk: Invoke) -> None:
    result = flowdesk("secrets", "set", "api-token", "--value", VALUE)

    assert result.exit_code == 1
    assert result.output.startswith("error: A secret's name must be letters")
    assert VALUE not in result.output


def test_secrets_delete(flowdesk: Invoke, data_dir: Path) -> None:
    flowdesk("secrets", "set", "OLD", "--value", VALUE)
    flowdesk(
        "connections",
        "set",
        "api",
        "--base-url",
        "https://api.example",
        "--auth",
        "bearer",
        "--secret",
        "OLD",
    )

    deleted = flowdesk("secrets", "delete", "OLD")
    again = flowdesk("secrets", "delete", "OLD")

    assert deleted.exit_code == 0
    assert "Secret OLD deleted." in deleted.stdout
    assert "the connection(s) api still use it" in deleted.output
    assert again.exit_code == 1
    assert "There is no secret named 'OLD'." in again.output
    assert stored_secrets(data_dir) == {}


def test_run_export_and_runs_show_never_print_the_value(
    flowdesk: Invoke, tmp_path: Path
) -> None:
    flowdesk("secrets", "set", "API_TOKEN", "--value", VALUE)
    flowdesk(
        "flows", "apply", str(write_flow(tmp_path / "flows", "f.yaml", USES_SECRET))
    )

    ran = flowdesk("run", "uses-secret")
    exported = flowdesk("flows", "export", "uses-secret")
    run_id = re.search(r"\b[0-9a-f]{32}\b", flowdesk("runs", "list").stdout)
    assert run_id is not None
    shown = flowdesk("runs", "show", run_id.group(0))

    assert ran.exit_code == 0, ran.output
    assert "Signing in with ***" in ran.output
    assert "Bearer ***" in ran.output
    assert "{{ secrets.API_TOKEN }}" in exported.stdout
    assert "***" in shown.output
    for result in (ran, exported, shown):
        assert VALUE not in result.output


def test_connections_set_list_and_delete(flowdesk: Invoke) -> None:
    created = flowdesk(
        "connections",
        "set",
        "shop",
        "--base-url",
        "https://shop.example/api",
        "--header",
        "Accept=application/json",
        "--auth",
        "api_key",
        "--in",
        "query",
        "--param-name",
        "key",
        "--secret",
        "SHOP_KEY",
    )
    listed = flowdesk("connections", "list")
    deleted = flowdesk("connections", "delete", "shop")
    empty = flowdesk("connections", "list")

    assert created.exit_code == 0
    assert "Connection shop created." in created.stdout
    assert "the secret SHOP_KEY is not set yet" in created.output
    assert "https://shop.example/api" in listed.stdout
    assert "api_key in query key" in listed.stdout
    assert "Connection shop deleted." in deleted.stdout
    assert "No connections yet" in empty.stdout


def test_connections_set_refuses_incomplete_auth(flowdesk: Invoke) -> None:
    result = flowdesk(
        "connections",
        "set",
        "shop",
        "--base-url",
        "https://x.example",
        "--auth",
        "basic",
        "--secret",
        "PW",
    )

    assert result.exit_code == 1
    assert "error: --username: Basic authentication needs a user name." in result.output


def test_connections_set_names_the_option_of_each_problem(flowdesk: Invoke) -> None:
    result = flowdesk(
        "connections",
        "set",
        "shop",
        "--base-url",
        "shop.example",
        "--header",
        "Accept: text/csv",
        "--header",
        "Bad Header=1",
        "--auth",
        "bearer",
        "--username",
        "robot",
    )

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.partition(": ")[2].partition(":")[0] for line in lines] == [
        "--base-url",
        "--header",
        "--secret",
        "--username",
    ]
    assert "got 'shop.example'" in lines[0]
    assert "'Bad Header' is not a valid HTTP header name" in lines[1]
    assert (
        "used only by basic authentication, and this connection's is bearer"
        in (lines[3])
    )
    assert "No connections yet" in flowdesk("connections", "list").stdout
