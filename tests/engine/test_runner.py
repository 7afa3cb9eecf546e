"""Compiling and executing whole flows: outputs, limits, isolation, reporting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from flowdesk.engine import (
    Execution,
    Limits,
    Step,
    StepCompiler,
    compile_flow,
    register_step,
)
from flowdesk.engine.expressions import Value
from flowdesk.errors import DefinitionError, StepFailed

if TYPE_CHECKING:
    from tests.engine.conftest import RecordingReporter, RunFlow

ORDER_FLOW: list[dict[str, Any]] = [
    {"set": {"total": "{{ inputs.items * 2 }}"}},
    {"status": "Checking the order of {{ inputs.customer }}...", "progress": 10},
    {
        "if": "{{ inputs.express }}",
        "then": [{"log": "Express delivery requested"}],
        "else": [{"log": "Standard delivery"}],
    },
    {
        "for_each": "{{ [3, 7, 2, 9] }}",
        "as": "n",
        "do": [{"set": {"last": "{{ n * 2 }}"}}],
    },
    {"status": "Done", "progress": 100},
    {"html": "<h1>Order for {{ inputs.customer }}</h1>\n<p>{{ total }} units</p>"},
]


async def test_runner_design_example_end_to_end(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        ORDER_FLOW, {"customer": "ACME", "items": 2, "express": True}
    )

    assert result.outputs == {"total": 4, "n": 9, "last": 18}
    assert result.html == "<h1>Order for ACME</h1>\n<p>4 units</p>"
    assert [event for event in reporter.events if event[0] != "step"] == [
        ("status", "Checking the order of ACME...", 10.0),
        ("log", "Express delivery requested", "steps[2].then[0]"),
        ("status", "Done", 100.0),
    ]


async def test_runner_reports_each_step_before_it_runs(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    await run_flow(ORDER_FLOW, {"customer": "ACME", "items": 2, "express": False})

    started = reporter.of("step")
    assert started[:4] == [
        ("steps[0]", "set"),
        ("steps[1]", "status"),
        ("steps[2]", "if"),
        ("steps[2].else[0]", "log"),
    ]
    assert started.count(("steps[3].do[0]", "set")) == 4
    assert started[-1] == ("steps[5]", "html")
    # the status of steps[1] comes after steps[1] started, before steps[2] did
    position = reporter.events.index(("status", "Checking the order of ACME...", 10.0))
    assert reporter.events[position - 1] == ("step", "steps[1]", "status")


async def test_runner_outputs_listed_only(run_flow: RunFlow) -> None:
    result = await run_flow(
        [{"set": {"a": 1, "b": 2, "c": "{{ (1, 2) }}"}}], outputs=["c", "a"]
    )

    assert result.outputs == {"c": [1, 2], "a": 1}


async def test_runner_outputs_exclude_reserved(run_flow: RunFlow) -> None:
    result = await run_flow([{"set": {"x": "{{ inputs.a }}"}}], {"a": 5}, secrets={})

    assert result.outputs == {"x": 5}


async def test_runner_listed_output_never_set_fails(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow([{"set": {"a": 1}}], outputs=["a", "summary"])

    assert failure.value.path == "outputs"
    assert "'summary'" in failure.value.reason


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("{{ range(3) }}", "range"),
        ("{{ cycler }}", "type"),
        ("{{ [1, totl] | list }}", "undefined"),
        ("{{ 1e308 * 10 }}", "inf"),
    ],
)
async def test_runner_unserialisable_output_fails_naming_variable(
    run_flow: RunFlow, expression: str, problem: str
) -> None:
    with pytest.raises(StepFailed, match=problem) as failure:
        await run_flow([{"set": {"bad": expression}}])

    assert failure.value.path == "outputs"
    assert "output 'bad'" in failure.value.reason


async def test_runner_outputs_are_json(run_flow: RunFlow) -> None:
    result = await run_flow(
        [{"set": {"rows": "{{ [(1, 'a'), {'k': (2,)}] }}", "html": "{{ 'x' | e }}"}}]
    )

    assert json.loads(json.dumps(result.outputs)) == result.outputs
    assert result.outputs["rows"] == [[1, "a"], {"k": [2]}]
    assert type(result.outputs["html"]) is str


async def test_runner_concurrent_runs_do_not_leak(reporter: RecordingReporter) -> None:
    new_reporter = type(reporter)
    flow = compile_flow(
        [
            {"set": {"mine": "{{ inputs.who }}"}},
            {"sleep": 0.02},
            {"set": {"seen": "{{ mine }}"}},
            {"html": "<p>{{ mine }}</p>"},
        ]
    )

    first, second = await asyncio.gather(
        flow.execute({"who": "ann"}, {}, new_reporter()),
        flow.execute({"who": "bob"}, {}, new_reporter()),
    )
    third = await flow.execute({"who": "cy"}, {}, new_reporter())

    assert first.outputs == {"mine": "ann", "seen": "ann"}
    assert second.outputs == {"mine": "bob", "seen": "bob"}
    assert (first.html, second.html) == ("<p>ann</p>", "<p>bob</p>")
    assert third.outputs == {"mine": "cy", "seen": "cy"}


async def test_runner_variables_do_not_survive_a_run(
    reporter: RecordingReporter,
) -> None:
    flow = compile_flow(
        [{"if": "{{ inputs.first }}", "then": [{"set": {"x": 1}}]}, {"log": "{{ x }}"}]
    )
    await flow.execute({"first": True}, {}, reporter)

    with pytest.raises(StepFailed, match="'x' is undefined"):
        await flow.execute({"first": False}, {}, reporter)


async def test_runner_many_cheap_steps_yield_to_event_loop(run_flow: RunFlow) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await run_flow([{"set": {"i": n}} for n in range(2000)])
    task.cancel()

    assert ticks >= 5


async def test_runner_max_steps(run_flow: RunFlow) -> None:
    steps = [{"for_each": "{{ range(100) | list }}", "as": "n", "do": [{"log": "x"}]}]

    with pytest.raises(StepFailed, match="limit of 50 steps") as failure:
        await run_flow(steps, limits=Limits(max_steps=50))

    assert failure.value.path == "steps[0].do[0]"


async def test_runner_secrets_readable_but_masked(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    secrets = {"token": "s3cr3t-value"}

    result = await run_flow(
        [
            {"set": {"length": "{{ secrets.token | length }}"}},
            {"log": "using {{ secrets.token }}"},
            {"html": "<p>{{ secrets.token }}</p>"},
        ],
        secrets=secrets,
    )

    assert result.outputs == {"length": 12}
    assert reporter.of("log") == [("using ***", "steps[1]")]
    assert result.html == "<p>***</p>"


async def test_runner_secret_masked_in_failure(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [{"fail": "bad {{ secrets.token }}"}], secrets={"token": "hunter22"}
        )

    assert "hunter22" not in str(failure.value)
    assert failure.value.reason == "bad ***"


async def test_runner_secrets_cannot_be_changed(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed):
        await run_flow(
            [{"set": {"x": "{{ secrets.update({'a': 'b'}) }}"}}], secrets={"t": "v"}
        )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"set": {"x": "{{ 1 + }}"}}], "steps[0]: 'set.x' has an invalid template"),
        ([{"log": "x", "level": "debug"}], "steps[0]: 'log' does not take 'level'"),
        ([{"log": "x", "fail": "y"}], "steps[0]: the step has several kinds"),
        ([{"sett": {"x": 1}}], "steps[0]: the step has no known kind"),
        ([{"if": True}], "steps[0]: 'if' needs a 'then'"),
        ([{"for_each": [1], "do": []}], "steps[0]: 'for_each' needs 'as'"),
        ([{"if": True, "then": [{"bogus": 1}]}], "steps[0].then[0]: the step has no"),
        ([{"html": "{% block a %}{% endblock %}"}], "steps[0]: 'html' has an invalid"),
        ("not a list", "steps: expected a list of steps"),
    ],
)
def test_compile_flow_definition_errors(steps: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as error:
        compile_flow(steps)

    assert message in str(error.value)


def test_compile_flow_reports_every_problem() -> None:
    with pytest.raises(DefinitionError) as error:
        compile_flow([{"log": "{{ x }"}, {"log": "fine"}, {"fail": "{% if %}"}])

    assert [problem.path for problem in error.value.problems] == [
        "steps[0]",
        "steps[2]",
    ]


@pytest.mark.parametrize("outputs", [["inputs"], [""], "total"])
def test_compile_flow_bad_outputs(outputs: Any) -> None:
    with pytest.raises(DefinitionError, match="outputs"):
        compile_flow([{"set": {"total": 1}}], outputs)


@register_step
class ShoutStep(Step):
    """A step kind defined outside the engine, as later kinds will be."""

    kind = "test_shout"
    options = frozenset({"into"})
    __slots__ = ("target", "text")

    def __init__(self, path: str, name: str | None, text: Value, target: str) -> None:
        super().__init__(path, name)
        self.text = text
        self.target = target

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> ShoutStep:
        text = compiler.text(spec["test_shout"], path, "test_shout")
        return cls(path, spec.get("name"), text, spec.get("into", "shouted"))

    async def run(self, execution: Execution) -> None:
        text = self.text.evaluate(execution.names).upper()
        execution.assign(self.target, text, self.path)


async def test_register_step_adds_kind(run_flow: RunFlow) -> None:
    result = await run_flow(
        [{"set": {"who": "ann"}}, {"test_shout": "hi {{ who }}", "into": "greeting"}]
    )

    assert result.outputs == {"who": "ann", "greeting": "HI ANN"}


def test_register_step_refuses_taken_kind() -> None:
    class Duplicate(ShoutStep):
        kind = "set"

    with pytest.raises(ValueError, match="'set' is already taken"):
        register_step(Duplicate)
