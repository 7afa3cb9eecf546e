"""Step kinds. Importing this package registers the core kinds."""

from flowdesk.engine.steps import core as _core  # noqa: F401  (registers the kinds)
from flowdesk.engine.steps.base import (
    COMMON_KEYS,
    Step,
    StepCompiler,
    invalid,
    register_step,
    registered_kinds,
    type_name,
)

__all__ = [
    "COMMON_KEYS",
    "Step",
    "StepCompiler",
    "invalid",
    "register_step",
    "registered_kinds",
    "type_name",
]
