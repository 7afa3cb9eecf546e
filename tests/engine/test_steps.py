"""Each core step kind, run through a compiled flow."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from flowdesk.engine import Limits
from flowdesk.errors import StepFailed

if TYPE_CHECKING:
    from tests.engine.conftest import RecordingReporter, RunFlow

ORDER_INPUTS = {"customer": "ACME <GmbH>", "items": 3, "express": True}


async def test_set_native_and_text_values(run_flow: RunFlow) -> None:
    result = await run_flow(
        [
            {
                "set": {
                    "total": "{{ inputs.items * 2 }}",
                    "label": "{{ inputs.items }} items",
                    "sizes": "{{ [3, 7, 2, 9] }}",
                    "express": "{{ inputs.express }}",
                }
            }
        ],
        ORDER_INPUTS,
    )

    assert result.outputs == {
        "total": 6,
        "label": "3 items",
        "sizes": [3, 7, 2, 9],
        "express": True,
    }


async def test_set_later_values_see_earlier_ones(run_flow: RunFlow) -> None:
    result = await run_flow([{"set": {"a": 2, "b": "{{ a * 10 }}"}}])

    assert result.outputs == {"a": 2, "b": 20}


async def test_set_nested_values(run_flow: RunFlow) -> None:
    result = await run_flow(
        [{"set": {"order": {"who": "{{ inputs.customer }}", "n": ["{{ 1 + 1 }}"]}}}],
        ORDER_INPUTS,
    )

    assert result.outputs == {"order": {"who": "ACME <GmbH>", "n": [2]}}


async def test_set_missing_name_fails_with_path(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [
                {"set": {"total": 1}},
                {"log": "ok"},
                {"log": "x"},
                {"set": {"t": "{{ totl }}"}},
            ]
        )

    assert str(failure.value).startswith("steps[3]: 'totl' is undefined")
    assert "{{ totl }}" in str(failure.value)


@pytest.mark.parametrize("name", ["inputs", "run", "secrets"])
async def test_set_reserved_name_fails(run_flow: RunFlow, name: str) -> None:
    with pytest.raises(StepFailed, match=f"'{name}' is reserved"):
        await run_flow([{"set": {name: 1}}])


async def test_log_renders_without_escaping(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    await run_flow(
        [{"log": "Order of {{ inputs.customer }}", "name": "Greet"}], ORDER_INPUTS
    )

    assert reporter.of("log") == [("Order of ACME <GmbH>", "steps[0] (Greet)")]


async def test_status_reports_message_and_progress(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    await run_flow(
        [
            {"status": "Checking {{ inputs.customer }}...", "progress": 50},
            {"status": "Almost", "progress": "{{ inputs.items * 30 }}"},
            {"status": "No figure"},
        ],
        ORDER_INPUTS,
    )

    assert reporter.of("status") == [
        ("Checking ACME <GmbH>...", 50.0),
        ("Almost", 90.0),
        ("No figure", None),
    ]


@pytest.mark.parametrize("progress", [101, -1, "{{ 'half' }}", True])
async def test_status_bad_progress_fails(run_flow: RunFlow, progress: object) -> None:
    with pytest.raises(StepFailed, match="progress must be a number from 0 to 100"):
        await run_flow([{"status": "x", "progress": progress}])


@pytest.mark.parametrize(
    ("condition", "branch"),
    [
        ("{{ inputs.express }}", "then"),
        ("{{ not inputs.express }}", "else"),
        ("{{ [] }}", "else"),
        ("{{ 0 }}", "else"),
        ("false", "then"),  # rendered text that is not empty is true
        (False, "else"),
    ],
)
async def test_if_picks_branch(
    run_flow: RunFlow, condition: object, branch: str
) -> None:
    result = await run_flow(
        [
            {
                "if": condition,
                "then": [{"set": {"branch": "then"}}],
                "else": [{"set": {"branch": "else"}}],
            }
        ],
        ORDER_INPUTS,
    )

    assert result.outputs == {"branch": branch}


async def test_if_without_else_does_nothing_when_false(run_flow: RunFlow) -> None:
    result = await run_flow([{"if": "{{ false }}", "then": [{"set": {"x": 1}}]}])

    assert result.outputs == {}


async def test_for_each_iterates_and_keeps_last_item(run_flow: RunFlow) -> None:
    result = await run_flow(
        [
            {"set": {"sum": 0}},
            {
                "for_each": "{{ [3, 7, 2, 9] }}",
                "as": "n",
                "do": [{"set": {"sum": "{{ sum + n }}", "last": "{{ n * 2 }}"}}],
            },
        ]
    )

    assert result.outputs == {"sum": 21, "n": 9, "last": 18}


async def test_for_each_sub_step_paths(
    run_flow: RunFlow, reporter: RecordingReporter
) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [
                {"log": "start"},
                {
                    "for_each": [1, 2],
                    "as": "n",
                    "do": [{"log": "{{ n }}"}, {"fail": "stop at {{ n }}"}],
                },
            ]
        )

    assert failure.value.path == "steps[1].do[1]"
    assert failure.value.reason == "stop at 1"
    assert reporter.of("step") == [
        ("steps[0]", "log"),
        ("steps[1]", "for_each"),
        ("steps[1].do[0]", "log"),
        ("steps[1].do[1]", "fail"),
    ]


@pytest.mark.parametrize(
    ("items", "type_name"),
    [("{{ 'abc' }}", "str"), ("{{ {'a': 1} }}", "dict"), ("{{ range(3) }}", "range")],
)
async def test_for_each_non_list_fails_naming_type(
    run_flow: RunFlow, items: str, type_name: str
) -> None:
    with pytest.raises(StepFailed, match=f"for_each needs a list, got {type_name}"):
        await run_flow([{"for_each": items, "as": "n", "do": [{"log": "x"}]}])


async def test_for_each_loop_limit(run_flow: RunFlow) -> None:
    limits = Limits(max_loop_iterations=10)

    with pytest.raises(StepFailed, match="got 11 items; a loop may run at most 10"):
        await run_flow(
            [{"for_each": "{{ range(11) | list }}", "as": "n", "do": []}], limits=limits
        )


async def test_for_each_total_iterations_limit(run_flow: RunFlow) -> None:
    nested = {
        "for_each": "{{ range(5) | list }}",
        "as": "i",
        "do": [{"for_each": "{{ range(5) | list }}", "as": "j", "do": []}],
    }

    with pytest.raises(
        StepFailed, match="limit of 20 loop iterations in total"
    ) as failure:
        await run_flow([nested], limits=Limits(max_loop_iterations=20))

    assert failure.value.path == "steps[0].do[0]"


async def test_for_each_reserved_variable_fails(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed, match="'run' is reserved"):
        await run_flow([{"for_each": [1], "as": "run", "do": []}])


async def test_sleep_waits(run_flow: RunFlow) -> None:
    started = time.monotonic()

    await run_flow([{"sleep": 0.05}, {"sleep": "{{ 0.05 }}"}])

    assert time.monotonic() - started >= 0.1


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (5, "sleep must be from 0 to 2 seconds, got 5"),
        (-1, "sleep must be from 0 to 2 seconds, got -1"),
        ("soon", "sleep needs a number of seconds, got 'soon'"),
        (True, "sleep needs a number of seconds, got True"),
    ],
)
async def test_sleep_out_of_range_fails(
    run_flow: RunFlow, seconds: object, message: str
) -> None:
    with pytest.raises(StepFailed, match=message):
        await run_flow([{"sleep": seconds}], limits=Limits(max_sleep_seconds=2))


async def test_sleep_cancellation_propagates(run_flow: RunFlow) -> None:
    task = asyncio.create_task(run_flow([{"sleep": 30}, {"set": {"after": 1}}]))
    await asyncio.sleep(0.05)
    started = time.monotonic()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert time.monotonic() - started < 1


async def test_fail_raises_rendered_message(run_flow: RunFlow) -> None:
    with pytest.raises(StepFailed) as failure:
        await run_flow(
            [{"log": "x"}, {"fail": "No stock for {{ inputs.customer }}"}], ORDER_INPUTS
        )

    assert failure.value.path == "steps[1]"
    assert failure.value.reason == "No stock for ACME <GmbH>"
    assert str(failure.value) == "steps[1]: No stock for ACME <GmbH>"


async def test_html_escapes_inputs_and_last_wins(run_flow: RunFlow) -> None:
    result = await run_flow(
        [
            {"html": "<p>first</p>"},
            {"set": {"total": 6}},
            {"html": "<h1>Order for {{ inputs.customer }}</h1><p>{{ total }}</p>"},
        ],
        ORDER_INPUTS,
    )

    assert result.html == "<h1>Order for ACME &lt;GmbH&gt;</h1><p>6</p>"


async def test_html_absent_is_none(run_flow: RunFlow) -> None:
    result = await run_flow([{"log": "no page"}])

    assert result.html is None
