"""Optional inputs a user left empty read as None; unknown names stay errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from flowdesk.engine import InputValues
from flowdesk.errors import StepFailed
from flowdesk.inputs import declared_shape

if TYPE_CHECKING:
    from tests.engine.conftest import RunFlow

SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "express": {"type": "boolean"},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
        },
    },
}


def test_declared_shape_nests_object_properties() -> None:
    assert declared_shape(SCHEMA) == {
        "customer": None,
        "express": None,
        "address": {"city": None, "zip": None},
    }
    assert declared_shape(True) == {}


async def test_input_values_left_out_optional_input_reads_as_none(
    run_flow: RunFlow,
) -> None:
    inputs = InputValues(
        {"customer": "ACME", "address": {"city": "Berlin"}}, declared_shape(SCHEMA)
    )
    steps = [
        {
            "if": "{{ inputs.express }}",
            "then": [{"set": {"kind": "express"}}],
            "else": [{"set": {"kind": "standard"}}],
        },
        {"set": {"zip": "{{ inputs.address.zip }}", "item": "{{ inputs['express'] }}"}},
        {"set": {"given": "{{ inputs.get('express', 'unset') }}"}},
    ]

    result = await run_flow(steps, inputs=inputs)

    assert result.outputs == {
        "kind": "standard",
        "zip": None,
        "item": None,
        "given": "unset",
    }


async def test_input_values_unknown_name_is_still_an_error(run_flow: RunFlow) -> None:
    inputs = InputValues({"customer": "ACME"}, declared_shape(SCHEMA))

    with pytest.raises(StepFailed, match="custmer"):
        await run_flow([{"set": {"x": "{{ inputs.custmer }}"}}], inputs=inputs)
