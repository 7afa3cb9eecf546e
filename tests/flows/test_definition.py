"""Loading, checking, normalising and writing flow definitions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from flowdesk.errors import DefinitionError, Problem
from flowdesk.flows.definition import (
    FORMAT_SCHEMA,
    MAX_INPUT_SCHEMA_DEPTH,
    MAX_INPUT_SCHEMA_NODES,
    FlowDefinition,
    InteractiveSettings,
    ScheduleSettings,
    definition_from_data,
    dump_definition,
    find_flow_files,
    load_file,
    parse_definition,
)
from flowdesk.flows.steps import COMMON_KEYS, RESERVED_NAMES, STEP_KINDS

ORDER_REPORT = dedent(
    """\
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
          items: {type: integer, title: Number of items, minimum: 1, default: 1}
          express: {type: boolean, title: Express delivery}
      allowed_triggers: [link_click]
      link_sharing: true
      groups: []

    schedule:
      cron: "0 7 * * 1-5"
      timezone: Europe/Berlin
      inputs: {customer: ACME}
      enabled: true

    steps:
      - set: {total: "{{ inputs.items * 2 }}"}
      - status: Checking the order of {{ inputs.customer }}...
      - if: "{{ inputs.express }}"
        then:
          - log: Express delivery requested
        else:
          - log: Standard delivery
      - for_each: "{{ [3, 7, 2, 9] }}"
        as: n
        do:
          - set: {last: "{{ n * 2 }}"}
      - html: |
          <h1>Order for {{ inputs.customer }}</h1>
          <p>{{ total }} units</p>
    """
)

MINIMAL = "id: tiny\nname: Tiny\nsteps:\n  - log: hi\n"


def problems_of(text: str, filename: str = "flow.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(dedent(text), filename)
    return caught.value.problems


def only_problem(text: str, filename: str = "flow.yaml") -> Problem:
    problems = problems_of(text, filename)
    assert len(problems) == 1, problems
    return problems[0]


def with_steps(steps: str) -> str:
    """A valid flow around the given `steps:` block (which starts on line 4)."""
    return "id: demo\nname: Demo\nsteps:\n" + dedent(steps)


# Reading valid flows


def test_parse_definition_reads_the_design_example() -> None:
    definition = parse_definition(ORDER_REPORT, "order-report.yaml")

    assert definition.id == "order-report"
    assert definition.location == "Sales/Reports"
    assert definition.tags == ("sales", "weekly")
    assert definition.interactive.enabled is True
    assert definition.interactive.allowed_triggers == ("link_click",)
    assert definition.interactive.link_sharing is True
    assert definition.input_schema["required"] == ["customer"]  # type: ignore[index]
    assert definition.schedule == ScheduleSettings(
        cron="0 7 * * 1-5", timezone="Europe/Berlin", inputs={"customer": "ACME"}
    )
    assert [next(iter(step)) for step in definition.steps] == [
        "set",
        "status",
        "if",
        "for_each",
        "html",
    ]
    assert definition.outputs is None


def test_parse_definition_fills_in_defaults() -> None:
    definition = parse_definition(MINIMAL)

    assert definition.location == ""
    assert definition.tags == ()
    assert definition.description == ""
    assert definition.interactive == InteractiveSettings()
    assert definition.input_schema is True
    assert definition.schedule is None
    assert definition.data["interactive"] == {
        "enabled": False,
        "input_schema": True,
        "allowed_triggers": [],
        "link_sharing": False,
        "groups": [],
    }
    assert definition.data["schedule"] is None


def test_parse_definition_keeps_steps_as_written() -> None:
    definition = parse_definition(ORDER_REPORT)

    assert definition.steps[2] == {
        "if": "{{ inputs.express }}",
        "then": [{"log": "Express delivery requested"}],
        "else": [{"log": "Standard delivery"}],
    }
    assert definition.data["steps"] is definition.steps


def test_parse_definition_normalises_location_and_tags() -> None:
    definition = parse_definition(
        MINIMAL + "location: ' Sales / Reports '\ntags: [' sales', sales, weekly]\n"
    )

    assert definition.location == "Sales/Reports"
    assert definition.tags == ("sales", "weekly")


def test_parse_definition_reads_dates_as_text() -> None:
    definition = parse_definition(
        with_steps("  - set: {day: 2024-05-01}\n  - log: '{{ day }}'\n")
    )

    assert definition.steps[0] == {"set": {"day": "2024-05-01"}}


def test_parse_definition_reads_merge_keys() -> None:
    definition = parse_definition(
        with_steps(
            """\
              - if: true
                then: &greet
                  - log: hello
                else: *greet
            """
        )
    )

    assert definition.steps[0]["else"] == [{"log": "hello"}]


@pytest.mark.parametrize("cron", ["@daily", "@hourly", "*/15 * * * *", "0 7 * * 1-5"])
def test_parse_definition_accepts_cron_forms(cron: str) -> None:
    definition = parse_definition(MINIMAL + f"schedule: {{cron: '{cron}'}}\n")

    assert definition.schedule is not None
    assert definition.schedule.cron == cron


# Problems, each with its file, line and path


def test_parse_definition_reports_yaml_syntax_error_with_its_line() -> None:
    problem = only_problem("id: x\nname: y\nsteps:\n  - log: [unclosed\n")

    assert problem.file == "flow.yaml"
    assert problem.line == 5
    assert problem.message.startswith("the text is not valid YAML")


def test_parse_definition_reports_a_document_that_is_not_a_mapping() -> None:
    problem = only_problem("- log: hello\n")

    assert problem.line == 1
    assert "must be a mapping with the keys id, name and steps" in problem.message
    assert "got a list" in problem.message


def test_parse_definition_reports_empty_text() -> None:
    problem = only_problem("# nothing yet\n")

    assert "the file is empty" in problem.message


def test_parse_definition_reports_several_documents() -> None:
    problem = only_problem(MINIMAL + "---\n" + MINIMAL)

    assert problem.line == 5
    assert "single document" in problem.message


def test_parse_definition_reports_unknown_step_kind_with_suggestion() -> None:
    problem = only_problem(
        with_steps(
            """\
              - log: first
              - sett: {total: 1}
            """
        )
    )

    assert problem.line == 5
    assert problem.path == "steps[1]"
    assert problem.message == (
        "unknown step kind 'sett'; expected one of: set, log, status, if, for_each, "
        "sleep, fail, html, http, python, run_flow, try (did you mean 'set'?)"
    )


def test_parse_definition_reports_wrong_field_type() -> None:
    problem = only_problem(
        """\
        id: demo
        name: Demo
        interactive:
          enabled: true
          link_sharing: sometimes
        steps: []
        """
    )

    assert (problem.line, problem.path) == (5, "interactive.link_sharing")
    assert problem.message == "link_sharing must be true or false, got 'sometimes'"


def test_parse_definition_suggests_quotes_for_text_read_as_number() -> None:
    problem = only_problem("id: demo\nname: 2024\nsteps: []\n")

    assert problem.line == 2
    assert problem.message == (
        "name must be text, got 2024; put it in quotes to make it text"
    )


def test_parse_definition_reports_unknown_key_on_its_own_line() -> None:
    problem = only_problem(
        """\
        id: demo
        name: Demo
        shedule:
          cron: "@daily"
        steps: []
        """
    )

    assert (problem.line, problem.path) == (3, "")
    assert problem.message.startswith("unknown key 'shedule'; expected one of: id,")
    assert problem.message.endswith("(did you mean 'schedule'?)")


def test_parse_definition_reports_unknown_key_in_a_step() -> None:
    problem = only_problem(
        with_steps(
            """\
              - if: "{{ inputs.ok }}"
                thn:
                  - log: yes
            """
        )
    )

    assert (problem.line, problem.path) == (5, "steps[0]")
    assert problem.message == (
        "unknown key 'thn' in the 'if' step; its keys are: if, then, else, name, "
        "on_error (did you mean 'then'?)"
    )


def test_parse_definition_reports_missing_required_key() -> None:
    problems = problems_of("id: demo\nsteps: []\n")

    assert [(p.line, p.message) for p in problems] == [
        (1, "the flow is missing the required key 'name'")
    ]


def test_parse_definition_reports_missing_companion_key() -> None:
    problem = only_problem(with_steps("  - if: true\n"))

    assert (problem.line, problem.path) == (4, "steps[0]")
    assert problem.message == "the 'if' step is missing 'then' (a list of steps)"


@pytest.mark.parametrize(
    ("field", "path", "message"),
    [
        (
            "{type: strin}",
            "interactive.input_schema.properties.customer.type",
            "type 'strin' is not one of the accepted values: array, boolean, "
            "integer, null, number, object, string (did you mean 'string'?)",
        ),
        (
            '{type: integer, minimum: "x"}',
            "interactive.input_schema.properties.customer.minimum",
            "minimum must be a number, got 'x'",
        ),
        (
            "{type: string, pattern: '(unclosed'}",
            "interactive.input_schema.properties.customer.pattern",
            "pattern '(unclosed' is not a valid regular expression",
        ),
    ],
)
def test_parse_definition_reports_invalid_input_schema(
    field: str, path: str, message: str
) -> None:
    problem = only_problem(
        f"""\
        id: demo
        name: Demo
        interactive:
          input_schema:
            type: object
            properties:
              customer: {field}
        steps: []
        """
    )

    assert (problem.line, problem.path, problem.message) == (7, path, message)


def test_parse_definition_requires_an_object_input_schema() -> None:
    problem = only_problem(
        """\
        id: demo
        name: Demo
        interactive:
          input_schema:
            type: string
        steps: []
        """
    )

    assert (problem.line, problem.path) == (5, "interactive.input_schema.type")
    assert "must be 'object'" in problem.message


def test_parse_definition_refuses_input_schema_false() -> None:
    problem = only_problem(MINIMAL + "interactive: {input_schema: false}\n")

    assert problem.path == "interactive.input_schema"
    assert "could never start" in problem.message


def test_parse_definition_refuses_a_deeply_nested_input_schema() -> None:
    nested: dict[str, object] = {"type": "object"}
    for _ in range(MAX_INPUT_SCHEMA_DEPTH):
        nested = {"type": "object", "properties": {"inner": nested}}
    text = json.dumps(
        {
            "id": "deep",
            "name": "Deep",
            "steps": [],
            "interactive": {"input_schema": nested},
        }
    )

    problem = only_problem(text, "deep.json")

    assert problem.path == "interactive.input_schema"
    assert f"nested more than {MAX_INPUT_SCHEMA_DEPTH} levels" in problem.message


def test_parse_definition_refuses_a_huge_input_schema() -> None:
    properties = {
        f"field_{n}": {"type": "string", "title": "x" * 200} for n in range(2000)
    }
    schema = {"type": "object", "properties": properties}
    text = json.dumps(
        {
            "id": "big",
            "name": "Big",
            "steps": [],
            "interactive": {"input_schema": schema},
        }
    )

    problem = only_problem(text, "big.json")

    assert problem.path == "interactive.input_schema"
    assert "more than the limit of 262144" in problem.message


def test_parse_definition_refuses_an_input_schema_of_too_many_parts() -> None:
    # Small in bytes, but every field is a subschema the meta-schema check and
    # the form builder would walk.
    properties = {f"f{n}": {} for n in range(MAX_INPUT_SCHEMA_NODES + 1)}
    text = json.dumps(
        {
            "id": "wide",
            "name": "Wide",
            "steps": [],
            "interactive": {"input_schema": {"properties": properties}},
        }
    )

    problem = only_problem(text, "wide.json")

    assert problem.path == "interactive.input_schema"
    assert f"more than {MAX_INPUT_SCHEMA_NODES} mappings" in problem.message


def test_parse_definition_reports_reserved_names() -> None:
    problems = problems_of(
        with_steps(
            """\
              - set: {inputs: 1}
              - for_each: "{{ [1, 2] }}"
                as: run
                do: []
            """
        )
        + "outputs: [total, secrets]\n"
    )

    assert [(p.line, p.path) for p in problems] == [
        (4, "steps[0]"),
        (6, "steps[1]"),
        (8, "outputs[1]"),
    ]
    assert "the name 'inputs' is reserved" in problems[0].message
    assert "the loop name 'run' is reserved" in problems[1].message
    assert "'secrets' must be a name" in problems[2].message


def test_parse_definition_reports_names_that_are_not_identifiers() -> None:
    problem = only_problem(with_steps("  - set: {2nd-total: 1}\n"))

    assert problem.line == 4
    assert problem.message.startswith("the name '2nd-total' is not a usable name")


def test_parse_definition_reports_bad_id_with_example() -> None:
    problem = only_problem("id: Order Report\nname: Demo\nsteps: []\n")

    assert (problem.line, problem.path) == (1, "id")
    assert problem.message == (
        "id 'Order Report' must be a lowercase slug (letters, digits, '-'), "
        "e.g. 'order-report'"
    )


def test_parse_definition_reports_duplicate_key_on_the_second_line() -> None:
    problem = only_problem(
        """\
        id: demo
        name: Demo
        steps: []
        name: Other
        """
    )

    assert problem.line == 4
    assert problem.message == (
        "the key 'name' appears twice in this mapping (first on line 2); "
        "remove one of them"
    )


def test_parse_definition_reports_nested_step_path() -> None:
    problem = only_problem(
        with_steps(
            """\
              - log: one
              - log: two
              - if: "{{ inputs.express }}"
                then:
                  - sleep: -1
            """
        )
    )

    assert (problem.file, problem.line, problem.path) == (
        "flow.yaml",
        8,
        "steps[2].then[0]",
    )
    assert problem.message.startswith("sleep must be a number of seconds (0 or more)")
    assert str(problem).startswith("flow.yaml:8: steps[2].then[0]: sleep must be")


def test_parse_definition_reports_step_that_is_not_a_mapping() -> None:
    problem = only_problem(with_steps("  - log hello\n"))

    assert (problem.line, problem.path) == (4, "steps[0]")
    assert "a step must be a mapping" in problem.message


def test_parse_definition_reports_step_with_two_kinds() -> None:
    problem = only_problem(with_steps("  - log: a\n    fail: b\n"))

    assert problem.path == "steps[0]"
    assert "2 step kinds ('log', 'fail')" in problem.message


def test_parse_definition_reports_template_syntax_error() -> None:
    problem = only_problem(
        with_steps(
            """\
              - log: fine
              - html: |
                  <h1>Report</h1>
                  <p>{{ total + }}</p>
            """
        )
    )

    assert (problem.line, problem.path) == (5, "steps[1]")
    assert problem.message.startswith("html has a template error (line 2 of the text)")


def test_parse_definition_explains_an_unquoted_expression() -> None:
    problems = problems_of(with_steps("  - log: {{ total }}\n"))

    assert problems[0].line == 4
    assert 'put it in quotes: "{{ ... }}"' in problems[0].message


def test_parse_definition_refuses_plain_text_as_condition() -> None:
    problem = only_problem(with_steps("  - if: inputs.express\n    then: []\n"))

    assert "if must be an expression like '{{ inputs.express }}'" in problem.message


def test_parse_definition_reports_bad_schedule() -> None:
    problems = problems_of(
        """\
        id: demo
        name: Demo
        interactive:
          input_schema:
            type: object
            required: [customer]
            properties:
              customer: {type: string}
        schedule:
          cron: "0 7 * *"
          timezone: Europe/Berlinn
          inputs: {customer: 5}
          misfire: later
        steps: []
        """
    )

    assert [(p.line, p.path) for p in problems] == [
        (10, "schedule.cron"),
        (11, "schedule.timezone"),
        (12, "schedule.inputs.customer"),
        (13, "schedule.misfire"),
    ]
    cron, timezone, inputs, misfire = (p.message for p in problems)
    assert "The cron expression '0 7 * *' has 4 fields" in cron
    assert "(did you mean 'Europe/Berlin'?)" in timezone
    assert inputs == "customer must be text, got 5; put it in quotes to make it text"
    assert misfire == "misfire 'later' is not one of the accepted values: skip, once"


def test_parse_definition_reports_schedule_inputs_missing_a_required_field() -> None:
    problem = only_problem(
        """\
        id: demo
        name: Demo
        interactive:
          input_schema: {type: object, required: [customer]}
        schedule: {cron: "@daily"}
        steps: []
        """
    )

    assert problem.path == "schedule.inputs"
    assert problem.message == "inputs is missing the required key 'customer'"


@pytest.mark.parametrize("location", ["/Sales", "Sales/", "Sales//Reports"])
def test_parse_definition_reports_bad_location(location: str) -> None:
    problem = only_problem(MINIMAL + f"location: '{location}'\n")

    assert (problem.line, problem.path) == (5, "location")
    assert "must be a folder path like 'Sales/Reports'" in problem.message


def test_parse_definition_reports_keys_read_as_booleans() -> None:
    problem = only_problem(with_steps("  - set: {on: 1}\n"))

    assert problem.line == 4
    assert "the key 'on' is read as a bool" in problem.message


def test_parse_definition_collects_every_problem_in_line_order() -> None:
    problems = problems_of(
        """\
        id: Bad Id
        name: Demo
        tags: [ok, 5]
        steps:
          - logg: x
          - sleep: soon
        """
    )

    assert [p.line for p in problems] == [1, 3, 5, 6]


def test_parse_definition_lists_at_most_a_hundred_problems() -> None:
    problems = problems_of(with_steps("  - logg: x\n" * 150))

    assert len(problems) == 101
    assert problems[-1].message == "... and 50 more problems"


def test_parse_definition_refuses_alias_bombs() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 7)]
    problem = only_problem("\n".join(lines) + "\n")

    assert "more than 200000 values" in problem.message


# JSON


def test_parse_definition_reads_json_with_lines() -> None:
    text = (
        '{\n  "id": "demo",\n  "name": "Demo",\n  "steps": [\n    {"logg": 1}\n  ]\n}'
    )

    problem = only_problem(text, "demo.json")

    assert (problem.file, problem.line, problem.path) == ("demo.json", 5, "steps[0]")


def test_parse_definition_reads_json_indented_with_tabs() -> None:
    text = '{\n\t"id": "demo",\n\t"name": 5,\n\t"steps": []\n}'

    problem = only_problem(text, "demo.json")

    assert problem.line == 3


def test_parse_definition_reads_json_numbers_as_json_does() -> None:
    text = '{"id": "demo", "name": "Demo", "steps": [{"sleep": 1e1}]}'

    assert parse_definition(text, "demo.json").steps == [{"sleep": 10.0}]


def test_parse_definition_reports_json_syntax_error_with_its_line() -> None:
    problem = only_problem('{\n  "id": "demo",\n  "name": "Demo",,\n}', "demo.json")

    assert problem.line == 3
    assert problem.message.startswith("the text is not valid JSON")


def test_parse_definition_reports_duplicate_json_key() -> None:
    problem = only_problem(
        '{"id": "demo",\n "name": "Demo",\n "steps": [],\n "id": "other"}', "d.json"
    )

    assert problem.line == 4
    assert "the key 'id' appears twice" in problem.message


def test_parse_definition_reads_json_and_yaml_alike() -> None:
    from_yaml = parse_definition(ORDER_REPORT, "order-report.yaml")
    text = json.dumps({k: v for k, v in from_yaml.data.items() if v is not None})

    assert parse_definition(text, "order-report.json") == from_yaml
    assert parse_definition(text) == from_yaml  # recognised without the suffix


# Digest, stored data and dumping


def test_digest_is_unchanged_for_reformatted_yaml() -> None:
    reformatted = dedent(
        """\
        # Same flow: flow style, other key order, defaults written out.
        steps: [{log: hi}]
        name: "Tiny"
        id: tiny
        location: ""
        tags: []
        interactive: {enabled: false, input_schema: true, groups: []}
        """
    )

    assert parse_definition(reformatted).digest() == parse_definition(MINIMAL).digest()


def test_digest_changes_with_meaning() -> None:
    changed = MINIMAL.replace("log: hi", "log: ho")

    assert parse_definition(changed).digest() != parse_definition(MINIMAL).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", parse_definition(MINIMAL).digest())


def test_definition_from_data_builds_an_equal_definition() -> None:
    definition = parse_definition(ORDER_REPORT)
    stored = json.loads(json.dumps(definition.data, sort_keys=True))

    rebuilt = definition_from_data(stored)

    assert rebuilt == definition
    assert rebuilt.digest() == definition.digest()


def test_dump_definition_round_trips_the_design_example() -> None:
    definition = parse_definition(ORDER_REPORT)

    assert parse_definition(dump_definition(definition)) == definition


def test_dump_definition_writes_keys_in_design_order() -> None:
    stored = json.loads(json.dumps(parse_definition(ORDER_REPORT).data, sort_keys=True))

    text = dump_definition(definition_from_data(stored))

    top_keys = [
        line.split(":")[0] for line in text.splitlines() if re.match(r"\w", line)
    ]
    assert top_keys == [
        "id",
        "name",
        "location",
        "tags",
        "description",
        "interactive",
        "schedule",
        "steps",
    ]
    assert "- if: '{{ inputs.express }}'\n  then:\n" in text
    assert "html: |\n" in text


_words = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "Zs"), whitelist_characters="-_.,:!?'\"#&*"
    ),
    min_size=1,
    max_size=20,
).filter(lambda word: word.strip() != "")
_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in RESERVED_NAMES
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _words,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3)
    ),
    max_leaves=6,
)
_steps = st.lists(
    st.one_of(
        st.builds(lambda text: {"log": text}, _words | st.just("line one\nline two\n")),
        st.builds(lambda name, value: {"set": {name: value}}, _names, _values),
        st.builds(lambda seconds: {"sleep": seconds}, st.integers(0, 5)),
    ),
    max_size=4,
)
_documents = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True),
        "name": _words,
        "steps": _steps,
    },
    optional={
        "location": st.lists(_words.map(str.strip), max_size=3).map("/".join),
        "tags": st.lists(_words.map(str.strip), max_size=3),
        "description": _words,
        "outputs": st.lists(_names, max_size=2),
    },
)


@settings(max_examples=60, deadline=None)
@given(_documents)
def test_dump_definition_round_trips_generated_definitions(
    document: dict[str, object],
) -> None:
    definition = parse_definition(json.dumps(document), "generated.json")

    assert parse_definition(dump_definition(definition)) == definition


# Files and folders


def test_find_flow_files_searches_folders(tmp_path: Path) -> None:
    (tmp_path / "sales" / "reports").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ("sales/reports/b.yaml", "sales/a.yml", "c.json", "notes.txt"):
        (tmp_path / name).write_text(MINIMAL)
    (tmp_path / ".hidden" / "d.yaml").write_text(MINIMAL)
    single = tmp_path / "single.flow"
    single.write_text(MINIMAL)

    found = find_flow_files([tmp_path, single])

    assert found == sorted(
        [
            tmp_path / "c.json",
            tmp_path / "sales" / "a.yml",
            tmp_path / "sales" / "reports" / "b.yaml",
            single,
        ]
    )


def test_find_flow_files_names_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(DefinitionError) as caught:
        find_flow_files([tmp_path, missing])

    assert caught.value.problems == [Problem("no such file or folder", str(missing))]


def test_load_file_names_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(with_steps("  - logg: hi\n"))

    with pytest.raises(DefinitionError) as caught:
        load_file(path)

    assert str(caught.value).startswith(f"{path}:4: steps[0]: unknown step kind")


def test_load_file_reports_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Größe\n".encode("latin-1"))

    with pytest.raises(DefinitionError) as caught:
        load_file(path)

    assert "not UTF-8" in caught.value.problems[0].message


# The published schema


def test_format_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(FORMAT_SCHEMA)

    assert FORMAT_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_format_schema_accepts_the_design_example() -> None:
    document = parse_definition(ORDER_REPORT).data
    document = {key: value for key, value in document.items() if value is not None}

    assert list(Draft202012Validator(FORMAT_SCHEMA).iter_errors(document)) == []


def test_format_schema_agrees_with_the_step_table() -> None:
    definitions = FORMAT_SCHEMA["$defs"]
    step_refs = [option["$ref"] for option in definitions["step"]["anyOf"]]

    assert step_refs == [f"#/$defs/{kind}-step" for kind in STEP_KINDS]
    for name, kind in STEP_KINDS.items():
        block = definitions[f"{name}-step"]
        assert set(block["properties"]) == {name, *kind.keys, *COMMON_KEYS}, name
        required = [key for key, spec in kind.keys.items() if spec.required]
        assert block["required"] == [name, *required], name
    assert set(definitions["identifier"]["not"]["enum"]) == RESERVED_NAMES


def test_flow_definition_is_frozen() -> None:
    definition = parse_definition(MINIMAL)

    with pytest.raises(AttributeError):
        definition.name = "Other"  # type: ignore[misc]
    assert isinstance(definition, FlowDefinition)


# Retrying interrupted runs


def test_parse_definition_reads_retry_interrupted() -> None:
    definition = parse_definition(
        MINIMAL.replace("steps:", "retry_interrupted: 2\nsteps:")
    )

    assert definition.retry_interrupted == 2
    assert definition.data["retry_interrupted"] == 2
    assert parse_definition(dump_definition(definition)) == definition


def test_parse_definition_leaves_retry_interrupted_out_of_the_data_when_zero() -> None:
    # Flows stored before the key existed keep their digest.
    explicit = parse_definition(
        MINIMAL.replace("steps:", "retry_interrupted: 0\nsteps:")
    )

    assert explicit.retry_interrupted == 0
    assert "retry_interrupted" not in explicit.data
    assert explicit.digest() == parse_definition(MINIMAL).digest()
    assert "retry_interrupted" not in dump_definition(explicit)


def test_definition_from_data_reads_data_stored_without_retry_interrupted() -> None:
    stored = {**parse_definition(MINIMAL).data}
    stored.pop("retry_interrupted", None)

    assert definition_from_data(stored).retry_interrupted == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("6", "retry_interrupted must be at most 5, got 6"),
        ("-1", "retry_interrupted must be at least 0, got -1"),
        ("twice", "retry_interrupted must be a whole number, got 'twice'"),
        ("true", "retry_interrupted must be a whole number, got true"),
        ("1.5", "retry_interrupted must be a whole number, got 1.5"),
    ],
)
def test_parse_definition_reports_a_bad_retry_interrupted(
    value: str, message: str
) -> None:
    problem = only_problem(
        f"""\
        id: demo
        name: Demo
        retry_interrupted: {value}
        steps: []
        """
    )

    assert (problem.file, problem.line, problem.path) == (
        "flow.yaml",
        3,
        "retry_interrupted",
    )
    assert problem.message == message


def test_dump_definition_writes_retry_interrupted_after_the_schedule() -> None:
    text = ORDER_REPORT.replace("steps:", "retry_interrupted: 1\n\nsteps:", 1)

    dumped = dump_definition(parse_definition(text))

    top_keys = [
        line.split(":")[0] for line in dumped.splitlines() if line[:1].isalpha()
    ]
    assert top_keys[-3:] == ["schedule", "retry_interrupted", "steps"]


def test_format_schema_describes_retry_interrupted() -> None:
    published = FORMAT_SCHEMA["properties"]["retry_interrupted"]

    assert (published["type"], published["minimum"], published["maximum"]) == (
        "integer",
        0,
        5,
    )
    assert published["default"] == 0
