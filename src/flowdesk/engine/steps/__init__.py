"""Step kinds. Importing this package registers the core kinds and the kinds
that reach outside the engine (`http`, `python`, `run_flow`) or handle errors
(`try`)."""

from flowdesk.engine.steps import core as _core  # noqa: F401  (registers the kinds)
from flowdesk.engine.steps import errors as _errors  # noqa: F401
from flowdesk.engine.steps import http as _http  # noqa: F401
from flowdesk.engine.steps import python as _python  # noqa: F401
from flowdesk.engine.steps import subflows as _subflows  # noqa: F401
from flowdesk.engine.steps.base import (
    COMMON_KEYS,
    RunLimitReached,
    Step,
    StepCompiler,
    invalid,
    register_step,
    registered_kinds,
    type_name,
)

__all__ = [
    "COMMON_KEYS",
    "RunLimitReached",
    "Step",
    "StepCompiler",
    "invalid",
    "register_step",
    "registered_kinds",
    "type_name",
]
