"""Editing flows as the browser editor does: new flows from the template, saving
text, settings written into the definition, versions, diffs and the overview."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from flowdesk.db.models import Flow, FlowVersion
from flowdesk.errors import DefinitionError
from flowdesk.flows import editing
from flowdesk.flows.definition import (
    definition_from_data,
    dump_definition,
    parse_definition,
)
from flowdesk.flows.service import apply_definition, current_version
from flowdesk.runs.service import create_run
from flowdesk.system import System
from tests.support.stored_flows import apply_flow

ORDER_REPORT = """\
# Counts an order. This comment is part of the text, not the definition.
id: order-report
name: Order report
location: Sales/Reports
tags: [sales, weekly]
description: Summarises a customer's open orders.
interactive:
  enabled: true
  input_schema:
    type: object
    required: [customer]
    properties:
      customer: {type: string, title: Customer name}
      items: {type: integer, minimum: 1, default: 1}
  allowed_triggers: [link_click]
  link_sharing: true
schedule:
  cron: "0 7 * * 1-5"
  timezone: Europe/Berlin
  inputs: {customer: ACME}
  enabled: false
steps:
  - set: {total: "{{ inputs.items * 2 }}"}
  - name: Express?
    if: "{{ inputs.items > 5 }}"
    then:
      - log: Big order
    else:
      - for_each: "{{ [1, 2] }}"
        as: n
        do:
          - log: "{{ n }}"
  - html: "<p>{{ total }}</p>"
"""


@pytest.fixture
def stored(system: System) -> System:
    apply_flow(system, ORDER_REPORT)
    return system


def stored_version(system: System, flow_id: str = "order-report") -> FlowVersion:
    with system.db.reading() as session:
        return current_version(session, flow_id)


def settings_of(system: System, flow_id: str = "order-report") -> editing.SettingsForm:
    with system.db.reading() as session:
        return editing.settings_view(session, flow_id).form


def save_settings(system: System, form: editing.SettingsForm) -> str:
    with system.db.transaction() as session:
        return editing.apply_settings(session, "order-report", form, "dev").change


def without(data: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `data` with the values at `paths` removed."""
    trimmed = copy.deepcopy(data)
    for path in paths:
        holder = trimmed
        for key in path[:-1]:
            holder = holder[key]
        holder.pop(path[-1])
    return trimmed


# New flows


def test_create_flow_stores_a_valid_template_under_the_typed_id(
    system: System,
) -> None:
    with system.db.transaction() as session:
        outcome = editing.create_flow(session, "weekly-sync", "", "dev")

    version = stored_version(system, "weekly-sync")
    assert (outcome.change, outcome.version) == ("created", 1)
    assert version.author == "dev"
    assert version.definition["name"] == "Weekly sync"
    assert parse_definition(version.source).id == "weekly-sync"


def test_create_flow_writes_odd_names_so_that_they_read_back(system: System) -> None:
    with system.db.transaction() as session:
        editing.create_flow(session, "odd", 'yes: "quoted" # not a comment', "dev")

    version = stored_version(system, "odd")
    assert version.definition["name"] == 'yes: "quoted" # not a comment'


def test_create_flow_refuses_an_id_in_use(stored: System) -> None:
    with (
        pytest.raises(DefinitionError, match="'order-report' already exists"),
        stored.db.transaction() as session,
    ):
        editing.create_flow(session, "order-report", "Another", "dev")


def test_create_flow_refuses_an_id_that_is_no_slug(system: System) -> None:
    with (
        pytest.raises(DefinitionError, match="must be a lowercase slug") as raised,
        system.db.transaction() as session,
    ):
        editing.create_flow(session, "Weekly Sync", "", "dev")

    assert raised.value.problems[0].path == "id"


# Saving text


def test_save_source_stores_the_text_as_the_next_version(stored: System) -> None:
    text = ORDER_REPORT.replace("name: Order report", "name: Order summary")

    with stored.db.transaction() as session:
        outcome = editing.save_source(session, "order-report", text, "dev")

    version = stored_version(stored)
    assert (outcome.change, outcome.version) == ("updated", 2)
    assert (version.source, version.author) == (text, "dev")
    with stored.db.reading() as session:
        assert session.get_one(Flow, "order-report").name == "Order summary"


def test_save_source_keeps_a_change_of_comments_only(stored: System) -> None:
    text = ORDER_REPORT.replace("# Counts an order.", "# Counts a customer's order.")

    with stored.db.transaction() as session:
        outcome = editing.save_source(session, "order-report", text, "dev")

    assert outcome.version == 2
    assert stored_version(stored).source == text


def test_save_source_of_the_same_text_makes_no_version(stored: System) -> None:
    with stored.db.transaction() as session:
        outcome = editing.save_source(session, "order-report", ORDER_REPORT, "dev")

    assert (outcome.change, outcome.version) == ("unchanged", 1)


def test_save_source_reads_browser_line_endings(stored: System) -> None:
    with stored.db.transaction() as session:
        outcome = editing.save_source(
            session, "order-report", ORDER_REPORT.replace("\n", "\r\n"), "dev"
        )

    assert outcome.change == "unchanged"


def test_save_source_refuses_invalid_text_with_lines(stored: System) -> None:
    text = ORDER_REPORT.replace("  - html:", "  - htm:")

    with (
        pytest.raises(DefinitionError) as raised,
        stored.db.transaction() as session,
    ):
        editing.save_source(session, "order-report", text, "dev")

    problem = raised.value.problems[0]
    assert "unknown step kind 'htm'" in problem.message
    assert problem.line == text.splitlines().index('  - htm: "<p>{{ total }}</p>"') + 1
    assert stored_version(stored).number == 1


def test_save_source_refuses_another_flows_id_at_its_line(stored: System) -> None:
    text = ORDER_REPORT.replace("id: order-report", "id: order-summary")

    with (
        pytest.raises(DefinitionError, match="does not match this flow's id") as raised,
        stored.db.transaction() as session,
    ):
        editing.save_source(session, "order-report", text, "dev")

    assert raised.value.problems[0].line == 2


# The outline


def test_outline_of_shows_kinds_names_and_nesting() -> None:
    definition = parse_definition(ORDER_REPORT)

    outline = editing.outline_of(definition.steps)

    assert [step.kind for step in outline] == ["set", "if", "html"]
    branch = outline[1]
    assert (branch.name, branch.path) == ("Express?", "steps[1]")
    assert [b.key for b in branch.branches] == ["then", "else"]
    loop = branch.branches[1].steps[0]
    assert loop.kind == "for_each"
    assert loop.branches[0].steps[0].path == "steps[1].else[0].do[0]"


# Settings


def test_settings_form_shows_the_stored_settings(stored: System) -> None:
    form = settings_of(stored)

    assert form.tags == "sales, weekly"
    assert form.cron == "0 7 * * 1-5" and form.schedule_enabled is False
    assert form.interactive_enabled and form.link_click and form.link_sharing
    assert '"required": [\n    "customer"\n  ]' in form.input_schema


def test_apply_settings_unchanged_makes_no_version(stored: System) -> None:
    assert save_settings(stored, settings_of(stored)) == "unchanged"


def test_apply_settings_disabling_interactive_changes_nothing_else(
    stored: System,
) -> None:
    before = stored_version(stored).definition

    save_settings(stored, replace(settings_of(stored), interactive_enabled=False))

    after = stored_version(stored)
    assert after.number == 2 and after.author == "dev"
    assert after.definition["interactive"]["enabled"] is False
    enabled = ("interactive", "enabled")
    assert without(after.definition, enabled) == without(before, enabled)
    with stored.db.reading() as session:
        assert session.get_one(Flow, "order-report").interactive is False


def test_apply_settings_round_trips_through_export_and_apply(stored: System) -> None:
    form = replace(
        settings_of(stored),
        name="Order summary",
        tags="sales, daily",
        cron="30 6 * * *",
        schedule_enabled=True,
        misfire="once",
        link_click=False,
        groups="finance, sales",
        input_schema='{"type": "object", "properties": {"client": {"type": "string"}}}',
        schedule_inputs='{"client": "ACME"}',
    )
    save_settings(stored, form)

    exported = dump_definition(definition_from_data(stored_version(stored).definition))
    definition = parse_definition(exported, "exported.yaml")
    with stored.db.transaction() as session:
        outcome = apply_definition(session, definition, exported)

    assert outcome.change == "unchanged"
    assert definition.interactive.allowed_triggers == ()
    assert definition.interactive.groups == ("finance", "sales")
    assert definition.schedule is not None and definition.schedule.misfire == "once"
    assert settings_of(stored) == replace(
        form,
        input_schema=editing.settings_form_of(definition).input_schema,
        schedule_inputs='{\n  "client": "ACME"\n}',
    )


def test_apply_settings_keeps_comments_and_layout_outside_the_changed_keys(
    system: System,
) -> None:
    source = ORDER_REPORT.replace(
        "steps:\n", "# The steps, top to bottom.\nsteps:  # keep me\n"
    ).replace("  - html:", "  # Render last.\n  - html:")
    apply_flow(system, source)

    save_settings(system, replace(settings_of(system), name="Order summary"))

    text = stored_version(system).source
    assert "name: Order summary\n" in text
    assert text.replace("name: Order summary", "name: Order report") == source


def test_apply_settings_adds_a_schedule_above_the_steps_heading(
    system: System,
) -> None:
    source = ORDER_REPORT.split("schedule:")[0] + (
        "# What it does.\nsteps:\n  - log: hi  # a step\n"
    )
    apply_flow(system, source)

    form = replace(
        settings_of(system), cron="0 6 * * *", schedule_inputs='{"customer": "A"}'
    )
    save_settings(system, form)

    version = stored_version(system)
    assert version.definition["schedule"]["cron"] == "0 6 * * *"
    head, tail = version.source.split("# What it does.\n")
    assert "schedule:" in head and tail == "steps:\n  - log: hi  # a step\n"


def test_apply_settings_writes_a_json_flow_out_in_full(system: System) -> None:
    data = parse_definition(ORDER_REPORT).data
    apply_flow(system, json.dumps({k: v for k, v in data.items() if v is not None}))

    save_settings(system, replace(settings_of(system), name="Order summary"))

    version = stored_version(system)
    assert version.definition["name"] == "Order summary"
    assert parse_definition(version.source).data == version.definition


def test_apply_settings_without_cron_removes_the_schedule(stored: System) -> None:
    save_settings(stored, replace(settings_of(stored), cron="  "))

    assert stored_version(stored).definition["schedule"] is None


def test_apply_settings_refuses_schema_json_errors_with_line_and_column(
    stored: System,
) -> None:
    text = '{\n  "type": "object"\n  "properties": {}\n}'

    with pytest.raises(DefinitionError) as raised:
        save_settings(stored, replace(settings_of(stored), input_schema=text))

    problem = raised.value.problems[0]
    assert "not valid JSON" in problem.message and "line 3, column 3" in problem.message
    assert editing.settings_field(problem) == "input_schema"
    assert stored_version(stored).number == 1


def test_apply_settings_refuses_an_invalid_schema(stored: System) -> None:
    with pytest.raises(DefinitionError) as raised:
        save_settings(
            stored, replace(settings_of(stored), input_schema='{"type": "strin"}')
        )

    fields = editing.problems_by_field(raised.value.problems)
    assert any("did you mean 'string'" in message for message in fields["input_schema"])


def test_apply_settings_names_the_field_of_other_problems(stored: System) -> None:
    form = replace(settings_of(stored), name=" ", timezone="Europe/Berln")

    with pytest.raises(DefinitionError) as raised:
        save_settings(stored, form)

    fields = editing.problems_by_field(raised.value.problems)
    assert set(fields) == {"name", "timezone"}
    assert "Europe/Berlin" in fields["timezone"][0]


def test_apply_settings_checks_schedule_inputs_against_the_schema(
    stored: System,
) -> None:
    form = replace(settings_of(stored), schedule_inputs='{"items": "many"}')

    with pytest.raises(DefinitionError) as raised:
        save_settings(stored, form)

    assert set(editing.problems_by_field(raised.value.problems)) == {"schedule_inputs"}


# The Input Schema editor's checks


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"type": "object",}', 1, 19),
        ('{\n  "type": "object",\n  "properties": {"a": }\n}', 3, 23),
    ],
    ids=["trailing-comma", "missing-value"],
)
def test_check_input_schema_locates_json_syntax_errors(
    text: str, line: int, column: int
) -> None:
    schema, problems = editing.check_input_schema(text)

    assert schema is None
    assert (problems[0].line, problems[0].column) == (line, column)
    assert f"line {line}, column {column}" in problems[0].message


def test_check_input_schema_finds_schema_errors_at_their_line() -> None:
    text = (
        '{\n  "type": "object",\n  "properties": {\n    "a": {"minimum": "x"}\n  }\n}'
    )

    _schema, problems = editing.check_input_schema(text)

    assert [(p.line, p.path) for p in problems] == [(4, "properties.a.minimum")]


def test_check_input_schema_takes_blank_and_true_as_no_input() -> None:
    assert editing.check_input_schema("  ") == (True, [])
    assert editing.check_input_schema("true") == (True, [])


def test_preview_input_schema_builds_the_launch_form() -> None:
    preview = editing.preview_input_schema(
        '{"type": "object", "properties": {"customer": {"title": "Customer"}}}'
    )

    assert preview.problems == [] and preview.form is not None
    assert [field.label for field in preview.form.fields] == ["Customer"]


def test_preview_schedule_gives_five_times_in_the_zone() -> None:
    after = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Friday before DST starts

    preview = editing.preview_schedule("30 2 * * *", "Europe/Berlin", after)

    stamps = [time.strftime("%d %H:%M %Z") for time in preview.times]
    assert stamps == [
        "28 02:30 CET",
        "29 03:00 CEST",  # 02:30 does not exist that night
        "30 02:30 CEST",
        "31 02:30 CEST",
        "01 02:30 CEST",
    ]


def test_preview_schedule_explains_a_bad_cron() -> None:
    preview = editing.preview_schedule("0 7 * *", "UTC")

    assert preview.times == []
    assert preview.problem is not None and "has 4 fields" in preview.problem


# Versions


def test_diff_sources_numbers_added_and_removed_lines() -> None:
    old = "a\nb\nc\n"
    new = "a\nB\nc\nd\n"

    rows = editing.diff_sources(old, new)

    assert [(r.kind, r.text, r.old_number, r.new_number) for r in rows] == [
        ("hunk", "@@ -1,3 +1,4 @@", None, None),
        ("context", "a", 1, 1),
        ("removed", "b", 2, None),
        ("added", "B", None, 2),
        ("context", "c", 3, 3),
        ("added", "d", None, 4),
    ]
    assert editing.diff_sources(old, old) == []


def test_restore_version_stores_the_old_text_as_a_new_version(stored: System) -> None:
    changed = ORDER_REPORT.replace("name: Order report", "name: Changed")
    with stored.db.transaction() as session:
        editing.save_source(session, "order-report", changed, "dev")

    with stored.db.transaction() as session:
        outcome = editing.restore_version(session, "order-report", 1, "dev")

    version = stored_version(stored)
    assert (outcome.change, version.number) == ("updated", 3)
    assert version.source == ORDER_REPORT
    with stored.db.reading() as session:
        numbers = [v.number for v in editing.version_history(session, "order-report")]
    assert numbers == [3, 2, 1]


# The overview


@pytest.mark.postgres
def test_flow_overview_groups_by_location_with_the_latest_run(
    any_system: System,
) -> None:
    stored = any_system
    apply_flow(stored, ORDER_REPORT)
    apply_flow(stored, "id: top\nname: Top\nsteps: []\n")
    with stored.db.transaction() as session:
        first = create_run(session, "order-report", {"customer": "A"}, "api")
        first.created_at = datetime(2026, 1, 1, tzinfo=UTC)
        first.state = "failed"
        latest = create_run(session, "order-report", {"customer": "B"}, "api")
        latest.state = "succeeded"

    with stored.db.reading() as session:
        folders = editing.flow_overview(session)

    assert [(f.location, [r.flow.id for r in f.rows]) for f in folders] == [
        ("", ["top"]),
        ("Sales/Reports", ["order-report"]),
    ]
    row = folders[1].rows[0]
    assert row.last_state == "succeeded"
    assert folders[0].rows[0].last_state is None


def test_flow_overview_reads_every_flow_in_one_query(stored: System) -> None:
    for number in range(5):
        apply_flow(stored, f"id: flow-{number}\nname: Flow {number}\nsteps: []\n")
        with stored.db.transaction() as session:
            create_run(session, f"flow-{number}", {}, "api")

    with count_queries(stored) as statements, stored.db.reading() as session:
        folders = editing.flow_overview(session)

    assert sum(len(folder.rows) for folder in folders) == 6
    assert len([sql for sql in statements if sql.startswith("SELECT")]) == 1


def test_flow_overview_filters_by_tag_and_location(stored: System) -> None:
    apply_flow(stored, "id: top\nname: Top\nsteps: []\n")

    with stored.db.reading() as session:
        by_tag = editing.flow_overview(session, "WEEKLY")
        by_folder = editing.flow_overview(session, "sales/")

    assert [f.rows[0].flow.id for f in by_tag] == ["order-report"]
    assert [f.rows[0].flow.id for f in by_folder] == ["order-report"]


@contextmanager
def count_queries(system: System) -> Iterator[list[str]]:
    """The SQL statements a block sends, for spotting one query per row."""
    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    event.listen(system.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(system.db.engine, "before_cursor_execute", record)


def test_apply_settings_sets_and_clears_retry_interrupted(stored: System) -> None:
    assert settings_of(stored).retry_interrupted == "0"

    save_settings(stored, replace(settings_of(stored), retry_interrupted="2"))

    version = stored_version(stored)
    assert version.definition["retry_interrupted"] == 2
    assert "retry_interrupted: 2\n" in version.source
    assert settings_of(stored).retry_interrupted == "2"

    save_settings(stored, replace(settings_of(stored), retry_interrupted="0"))

    version = stored_version(stored)
    assert "retry_interrupted" not in version.definition
    assert "retry_interrupted" not in version.source


def test_apply_settings_refuses_an_unknown_retry_choice(stored: System) -> None:
    with pytest.raises(DefinitionError) as raised:
        save_settings(stored, replace(settings_of(stored), retry_interrupted="9"))

    (problem,) = raised.value.problems
    assert editing.settings_field(problem) == "retry_interrupted"
    assert "got '9'" in problem.message
