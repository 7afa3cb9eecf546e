"""The flow engine: compiles a flow's steps once and executes them per run.

It knows nothing of databases or HTTP and imports nothing from `db`, `web` or
`runs`; callers implement `RunReporter`. New step kinds subclass `Step` and are
added with `register_step`.
"""

from flowdesk.engine.expressions import InputValues
from flowdesk.engine.runner import (
    RESERVED_NAMES,
    CompiledFlow,
    Execution,
    Limits,
    RunReporter,
    RunResult,
    compile_flow,
)
from flowdesk.engine.steps import (
    Step,
    StepCompiler,
    invalid,
    register_step,
    registered_kinds,
)

__all__ = [
    "RESERVED_NAMES",
    "CompiledFlow",
    "Execution",
    "InputValues",
    "Limits",
    "RunReporter",
    "RunResult",
    "Step",
    "StepCompiler",
    "compile_flow",
    "invalid",
    "register_step",
    "registered_kinds",
]
