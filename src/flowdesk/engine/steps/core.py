"""The core step kinds: set, log, status, if, for_each, sleep, fail, html."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowdesk.engine.expressions import Value
from flowdesk.engine.steps.base import (
    Step,
    StepCompiler,
    invalid,
    register_step,
    type_name,
)
from flowdesk.errors import StepFailed

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution


@register_step
class SetStep(Step):
    """Assigns context variables, in the order written: later values see
    earlier ones."""

    kind = "set"
    __slots__ = ("assignments",)

    def __init__(
        self, path: str, name: str | None, assignments: tuple[tuple[str, Value], ...]
    ) -> None:
        super().__init__(path, name)
        self.assignments = assignments

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> SetStep:
        variables = spec["set"]
        if not isinstance(variables, Mapping):
            raise invalid(
                path,
                f"'set' needs a mapping of names to values, got {type_name(variables)}",
            )
        if not variables:
            raise invalid(path, "'set' needs at least one name to assign")

        assignments = []
        for variable, raw in variables.items():
            if not isinstance(variable, str) or not variable:
                raise invalid(path, f"'set' names must be text, got {variable!r}")
            value = compiler.value(raw, path, f"set.{variable}")
            assignments.append((variable, value))
        return cls(path, spec.get("name"), tuple(assignments))

    async def run(self, execution: Execution) -> None:
        names = execution.names
        for variable, value in self.assignments:
            execution.assign(variable, value.evaluate(names), self.path)


@register_step
class LogStep(Step):
    """Adds a line to the run's log."""

    kind = "log"
    __slots__ = ("message",)

    def __init__(self, path: str, name: str | None, message: Value) -> None:
        super().__init__(path, name)
        self.message = message

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> LogStep:
        message = compiler.text(spec["log"], path, "log")
        return cls(path, spec.get("name"), message)

    async def run(self, execution: Execution) -> None:
        text = execution.redact(self.message.evaluate(execution.names))
        await execution.reporter.log(text, step=self.label)


@register_step
class StatusStep(Step):
    """Sets the message users see while the run goes on, and optionally the
    progress in percent."""

    kind = "status"
    options = frozenset({"progress"})
    __slots__ = ("message", "progress")

    def __init__(
        self, path: str, name: str | None, message: Value, progress: Value | None
    ) -> None:
        super().__init__(path, name)
        self.message = message
        self.progress = progress

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> StatusStep:
        message = compiler.text(spec["status"], path, "status")
        raw_progress = spec.get("progress")
        progress = (
            None
            if raw_progress is None
            else compiler.value(raw_progress, path, "progress")
        )
        return cls(path, spec.get("name"), message, progress)

    async def run(self, execution: Execution) -> None:
        names = execution.names
        message = execution.redact(self.message.evaluate(names))

        progress = None
        if self.progress is not None:
            percent = self.progress.evaluate(names)
            if not _is_number(percent) or not 0 <= percent <= 100:
                raise StepFailed(
                    self.path,
                    f"progress must be a number from 0 to 100, got {percent!r}",
                )
            progress = float(percent)

        await execution.reporter.status(message, progress)


@register_step
class IfStep(Step):
    """Runs `then` when the condition is true, else `else`. A native value keeps
    its truth (false, 0, empty list); rendered text is true when not empty."""

    kind = "if"
    options = frozenset({"then", "else"})
    __slots__ = ("condition", "otherwise", "then")

    def __init__(
        self,
        path: str,
        name: str | None,
        condition: Value,
        then: tuple[Step, ...],
        otherwise: tuple[Step, ...],
    ) -> None:
        super().__init__(path, name)
        self.condition = condition
        self.then = then
        self.otherwise = otherwise

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> IfStep:
        if "then" not in spec:
            raise invalid(path, "'if' needs a 'then' list of steps")

        condition = compiler.value(spec["if"], path, "if")
        then = compiler.steps(spec["then"], f"{path}.then")
        otherwise = compiler.steps(spec.get("else", []), f"{path}.else")
        return cls(path, spec.get("name"), condition, then, otherwise)

    async def run(self, execution: Execution) -> None:
        if self.condition.evaluate(execution.names):
            await execution.run_steps(self.then)
        else:
            await execution.run_steps(self.otherwise)


@register_step
class ForEachStep(Step):
    """Runs `do` once per item of a list, with the item in the `as` variable.

    The variable keeps the last item after the loop, like any other variable
    (and so it appears in the outputs unless the flow lists them).
    """

    kind = "for_each"
    options = frozenset({"as", "do"})
    __slots__ = ("body", "items", "variable")

    def __init__(
        self,
        path: str,
        name: str | None,
        items: Value,
        variable: str,
        body: tuple[Step, ...],
    ) -> None:
        super().__init__(path, name)
        self.items = items
        self.variable = variable
        self.body = body

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> ForEachStep:
        variable = spec.get("as")
        if not isinstance(variable, str) or not variable.isidentifier():
            raise invalid(
                path, f"'for_each' needs 'as': a variable name, got {variable!r}"
            )
        if "do" not in spec:
            raise invalid(path, "'for_each' needs a 'do' list of steps")

        items = compiler.value(spec["for_each"], path, "for_each")
        body = compiler.steps(spec["do"], f"{path}.do")
        return cls(path, spec.get("name"), items, variable, body)

    async def run(self, execution: Execution) -> None:
        items = self.items.evaluate(execution.names)
        if not isinstance(items, list):
            raise StepFailed(
                self.path,
                f"for_each needs a list, got {type_name(items)}"
                " (turn other sequences into one with '| list')",
            )

        limit = execution.limits.max_loop_iterations
        if len(items) > limit:
            raise StepFailed(
                self.path,
                f"for_each got {len(items)} items; a loop may run at most {limit}",
            )

        for item in items:
            execution.count_iteration(self.path)
            execution.assign(self.variable, item, self.path)
            await execution.run_steps(self.body)


@register_step
class SleepStep(Step):
    """Waits a number of seconds without holding up other runs."""

    kind = "sleep"
    __slots__ = ("seconds",)

    def __init__(self, path: str, name: str | None, seconds: Value) -> None:
        super().__init__(path, name)
        self.seconds = seconds

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> SleepStep:
        return cls(path, spec.get("name"), compiler.value(spec["sleep"], path, "sleep"))

    async def run(self, execution: Execution) -> None:
        seconds = self.seconds.evaluate(execution.names)
        if not _is_number(seconds):
            raise StepFailed(
                self.path, f"sleep needs a number of seconds, got {seconds!r}"
            )

        limit = execution.limits.max_sleep_seconds
        if not 0 <= seconds <= limit:
            raise StepFailed(
                self.path,
                f"sleep must be from 0 to {limit:g} seconds, got {seconds:g}",
            )

        # A cancelled run gets CancelledError right here, which nothing catches.
        await asyncio.sleep(seconds)


@register_step
class FailStep(Step):
    """Stops the run as failed, with the rendered message as the reason."""

    kind = "fail"
    __slots__ = ("message",)

    def __init__(self, path: str, name: str | None, message: Value) -> None:
        super().__init__(path, name)
        self.message = message

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> FailStep:
        return cls(path, spec.get("name"), compiler.text(spec["fail"], path, "fail"))

    async def run(self, execution: Execution) -> None:
        message = self.message.evaluate(execution.names).strip()
        raise StepFailed(self.path, message or "the flow stopped at a 'fail' step")


@register_step
class HtmlStep(Step):
    """Renders the run's HTML result, escaping inserted values; the last
    `html` step to run wins."""

    kind = "html"
    __slots__ = ("template",)

    def __init__(self, path: str, name: str | None, template: Value) -> None:
        super().__init__(path, name)
        self.template = template

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> HtmlStep:
        return cls(path, spec.get("name"), compiler.html(spec["html"], path, "html"))

    async def run(self, execution: Execution) -> None:
        execution.html = execution.redact(self.template.evaluate(execution.names))


def _is_number(value: Any) -> bool:
    # bool is an int to Python, but `sleep: true` is a mistake, not one second.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not math.isnan(value)
    )
