"""Handling failures in a flow: `on_error: continue` on any step, and
`try`/`catch` blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from flowdesk.engine import Limits, compile_flow
from flowdesk.errors import DefinitionError, StepFailed

if TYPE_CHECKING:
    from tests.engine.conftest import RecordingReporter, RunFlow


async def test_on_error_continue_puts_the_error_in_the_context(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        [
            {"set": {"before": 1}},
            {"fail": "The file is empty.", "on_error": "continue"},
            {"set": {"after": "{{ error.message }} at {{ error.step }}"}},
        ]
    )

    assert result.outputs["after"] == "The file is empty. at steps[1]"
    assert result.outputs["error"] == {
        "message": "The file is empty.",
        "step": "steps[1]",
    }
    assert (
        "The step failed and the flow goes on: The file is empty.",
        "steps[1]",
    ) in reporter.of("log")


async def test_on_error_continue_on_a_block_names_the_inner_step(
    run_flow: RunFlow,
) -> None:
    result = await run_flow(
        [
            {
                "if": True,
                "then": [{"log": "ok"}, {"set": {"x": "{{ missing }}"}}],
                "on_error": "continue",
            },
            {"set": {"seen": "{{ error.step }}"}},
        ]
    )

    assert result.outputs["seen"] == "steps[0].then[1]"


async def test_on_error_fail_is_the_default(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed, match="stop here"):
        await run_flow([{"fail": "stop here", "on_error": "fail"}, {"log": "never"}])


async def test_try_runs_catch_with_the_error(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    result = await run_flow(
        [
            {
                "try": [
                    {"set": {"step_one": True}},
                    {"fail": "No price column in {{ 'orders.csv' }}."},
                    {"set": {"never": True}},
                ],
                "catch": [
                    {"log": "Handling: {{ error.message }}"},
                    {"set": {"handled": "{{ error.step }}"}},
                ],
            },
            {"set": {"went_on": True}},
        ]
    )

    assert result.outputs["handled"] == "steps[0].try[1]"
    assert result.outputs["went_on"] is True
    assert "never" not in result.outputs
    assert ("Handling: No price column in orders.csv.", "steps[0].catch[0]") in (
        reporter.of("log")
    )


async def test_try_without_a_failure_skips_catch(run_flow: RunFlow) -> None:
    result = await run_flow(
        [{"try": [{"set": {"a": 1}}], "catch": [{"set": {"b": 2}}]}]
    )

    assert result.outputs == {"a": 1}


async def test_try_failure_inside_catch_fails_the_run(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [
                {
                    "try": [{"fail": "first"}],
                    "catch": [{"fail": "again: {{ error.message }}"}],
                }
            ]
        )

    assert failure.value.path == "steps[0].catch[0]"
    assert failure.value.reason == "again: first"


async def test_try_catches_a_nested_try_failing_again(run_flow: RunFlow) -> None:
    result = await run_flow(
        [
            {
                "try": [
                    {
                        "try": [{"fail": "inner"}],
                        "catch": [{"fail": "rethrown {{ error.message }}"}],
                    }
                ],
                "catch": [{"set": {"outer": "{{ error.message }}"}}],
            }
        ]
    )

    assert result.outputs["outer"] == "rethrown inner"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda steps: [{"try": steps, "catch": [{"set": {"caught": True}}]}],
        lambda steps: [{"if": True, "then": steps, "on_error": "continue"}],
    ],
    ids=["try", "on_error"],
)
async def test_run_limits_are_not_caught(run_flow: RunFlow, wrap: Any) -> None:
    loop = [{"for_each": "{{ range(100) | list }}", "as": "n", "do": [{"log": "x"}]}]

    with pytest.raises(StepFailed, match="limit of 20 steps"):
        await run_flow(wrap(loop), limits=Limits(max_steps=20))


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"try": [{"log": "x"}]}], "steps[0]: 'try' needs a 'catch'"),
        (
            [{"log": "x", "on_error": "ignore"}],
            "'on_error' must be 'fail' or 'continue'",
        ),
        ([{"try": [{"bogus": 1}], "catch": []}], "steps[0].try[0]: the step has no"),
    ],
)
def test_error_step_definition_errors(steps: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as error:
        compile_flow(steps)

    assert message in str(error.value)


async def test_run_flow_needs_a_flowdesk_run(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed, match="only inside a flowdesk run"):
        await run_flow([{"run_flow": "other"}])
