"""Handling failures inside a flow: the `try` step.

(`on_error: continue`, which any step may carry, is handled where steps are
run, in `Execution.run_steps`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowdesk.engine.steps.base import (
    RunLimitReached,
    Step,
    StepCompiler,
    invalid,
    register_step,
)
from flowdesk.errors import StepFailed

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution


@register_step
class TryStep(Step):
    """Runs its steps; when one fails, runs `catch` with `error.message` and
    `error.step` (the failing step's path) in the context.

    A failure inside `catch` fails the `try` step as usual. Run limits (steps,
    loop iterations) are not caught: they stop the run.
    """

    kind = "try"
    options = frozenset({"catch"})
    __slots__ = ("body", "handler")

    def __init__(
        self,
        path: str,
        name: str | None,
        body: tuple[Step, ...],
        handler: tuple[Step, ...],
    ) -> None:
        super().__init__(path, name)
        self.body = body
        self.handler = handler

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> TryStep:
        if "catch" not in spec:
            raise invalid(path, "'try' needs a 'catch' list of steps")

        body = compiler.steps(spec["try"], f"{path}.try")
        handler = compiler.steps(spec["catch"], f"{path}.catch")
        return cls(path, spec.get("name"), body, handler)

    async def run(self, execution: Execution) -> None:
        try:
            await execution.run_steps(self.body)
        except RunLimitReached:
            raise
        except StepFailed as failure:
            execution.note_error(failure)
            await execution.reporter.log(
                execution.redact(f"Caught a failure: {failure.reason}"),
                level="warning",
                step=self.label,
            )
            await execution.run_steps(self.handler)
