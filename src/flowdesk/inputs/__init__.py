"""Flow input: reading it from links, forms and the command line, validating it
against the flow's input schema, and the launch form built from that schema."""

from flowdesk.inputs.coercion import (
    MAX_DEPTH,
    MAX_INDEX,
    MAX_PARAMS,
    RESERVED_PARAMS,
    coerce_params,
    declared_shape,
    parse_cli_inputs,
    to_params,
)
from flowdesk.inputs.form import (
    Form,
    FormField,
    apply_form_action,
    build_form,
)
from flowdesk.inputs.validation import (
    MAX_INPUT_BYTES,
    apply_defaults,
    check_input,
    input_validator,
    validate_input,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_INDEX",
    "MAX_INPUT_BYTES",
    "MAX_PARAMS",
    "RESERVED_PARAMS",
    "Form",
    "FormField",
    "apply_defaults",
    "apply_form_action",
    "build_form",
    "check_input",
    "coerce_params",
    "declared_shape",
    "input_validator",
    "parse_cli_inputs",
    "to_params",
    "validate_input",
]
