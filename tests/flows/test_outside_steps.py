"""Checking the steps that reach outside (`http`, `python`, `run_flow`), `try`
and `on_error` when a flow file is loaded: each problem on its own line."""

from __future__ import annotations

import textwrap

import pytest

from flowdesk.errors import DefinitionError, Problem
from flowdesk.flows.definition import parse_definition


def problems_in(steps: str) -> list[Problem]:
    text = "id: demo\nname: Demo\nsteps:\n" + textwrap.indent(
        textwrap.dedent(steps), "  "
    )
    with pytest.raises(DefinitionError) as error:
        parse_definition(text, "demo.yaml")
    return error.value.problems


def test_steps_outside_load_when_written_well() -> None:
    definition = parse_definition(
        textwrap.dedent(
            """\
            id: demo
            name: Demo
            steps:
              - try:
                  - http: https://api.example/orders
                    method: post
                    json: {customer: "{{ inputs.customer }}"}
                    timeout: 5
                    allow_status: [409]
                    save_as: created
                catch:
                  - log: "{{ error.message }}"
              - python: |
                  return len(created["body"])
                timeout: 2
                memory_mb: 128
                save_as: size
                on_error: continue
              - run_flow: other-flow
                inputs: {size: "{{ size }}"}
                wait: false
            """
        )
    )

    assert [next(iter(step)) for step in definition.steps] == [
        "try",
        "python",
        "run_flow",
    ]


@pytest.mark.parametrize(
    ("steps", "line", "message"),
    [
        (
            "- http: https://x.example\n  json: {}\n  body: text\n",
            6,
            "the step sends one body, but has json and body; keep one",
        ),
        (
            "- http: https://x.example\n  method: POST\n  retries: 3\n",
            6,
            "a repeated POST could do its work twice",
        ),
        (
            "- http: /orders\n",
            4,
            "a relative URL needs a connection",
        ),
        (
            "- http: https://x.example\n  method: FETCH\n",
            5,
            "method must be one of GET, HEAD, POST",
        ),
        (
            "- http: https://x.example\n  allow_status: [99]\n",
            5,
            "allow_status must be a list of HTTP statuses",
        ),
        (
            "- python: |\n    x = 1\n    if x\n",
            4,
            "the python code has a syntax error on line 2",
        ),
        (
            "- python: return 1\n  memory_mb: 8\n",
            5,
            "memory_mb must be a number of megabytes (32 or more), got 8",
        ),
        (
            "- run_flow: Other Flow\n",
            4,
            "run_flow must be the id of a flow, such as 'order-report'",
        ),
        (
            "- run_flow: other\n  wait: later\n",
            5,
            "wait must be true or false, got 'later'",
        ),
        (
            "- log: hi\n  on_error: ignore\n",
            5,
            "on_error must be 'continue' (go on with the next step",
        ),
        (
            "- try:\n    - log: hi\n",
            4,
            "the 'try' step is missing 'catch' (a list of steps)",
        ),
        (
            "- python: return 1\n  save_as: inputs\n",
            5,
            "save_as 'inputs' is reserved",
        ),
    ],
)
def test_steps_outside_report_problems_on_their_line(
    steps: str, line: int, message: str
) -> None:
    [problem] = problems_in(steps)

    assert problem.line == line
    assert message in problem.message


def test_steps_inside_try_report_their_own_path() -> None:
    [problem] = problems_in("- try:\n    - bogus: 1\n  catch: []\n")

    assert problem.path == "steps[0].try[0]"
    assert problem.line == 5
