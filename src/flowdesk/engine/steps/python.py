"""The `python` step: a function body run in a worker process of the warm pool
(`flowdesk.workers`), never in the process that executes the flow.

The code sees the context's names as local variables (copies: changing them
changes nothing outside the step), except `secrets`, which never leaves the
server. Only the names the code mentions are sent to the worker. Its `return`
value, which must be JSON data, goes to `save_as`; what it prints goes to the
run's log. Where the worker is sandboxed (`flowdesk.workers.sandbox`), an
access the sandbox refuses fails the step with the PermissionError and a
sentence saying why.
"""

from __future__ import annotations

import ast
import hashlib
import json
import keyword
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowdesk.engine.expressions import Value
from flowdesk.engine.steps.base import (
    Step,
    StepCompiler,
    invalid,
    register_step,
    save_as_name,
    timeout_seconds,
    type_name,
)
from flowdesk.errors import StepFailed
from flowdesk.workers.pool import PythonCall, PythonOutcome, shared_pool
from flowdesk.workers.python_worker import compile_step

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution

SMALLEST_MEMORY_MB = 32  # an interpreter needs about 15 MB to start with
# Added to a PermissionError's message, which names the path but not the cause.
SANDBOX_HINT = (
    "Python steps run in a sandbox: they may read only Python's own files and"
    " write only in their working directory, and may not signal other processes."
)

# What the code may see besides the variables steps assigned.
_ENGINE_NAMES = ("inputs", "run")


def syntax_problem(code: str) -> str | None:
    """Why `code` cannot be a python step's body, or None when it can."""
    try:
        compile_step(code)
    except SyntaxError as error:
        where = f" on line {error.lineno}" if error.lineno else ""
        return f"the python code has a syntax error{where}: {error.msg}"
    except (RecursionError, MemoryError, ValueError) as error:
        return f"the python code cannot be compiled: {error}"
    return None


@register_step
class PythonStep(Step):
    """Runs Python code in a worker process and saves what it returns."""

    kind = "python"
    options = frozenset({"timeout", "memory_mb", "save_as"})
    __slots__ = ("code", "key", "memory_mb", "names", "target", "timeout")

    def __init__(
        self,
        path: str,
        name: str | None,
        code: str,
        names: tuple[str, ...],
        timeout: Value | None,
        memory_mb: int | None,
        target: str | None,
    ) -> None:
        super().__init__(path, name)
        self.code = code
        self.key = hashlib.sha256(code.encode()).hexdigest()
        self.names = names
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.target = target

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> PythonStep:
        code = spec["python"]
        if not isinstance(code, str) or not code.strip():
            raise invalid(path, f"'python' needs code as text, got {type_name(code)}")
        problem = syntax_problem(code)
        if problem is not None:
            raise invalid(path, problem)

        memory_mb = spec.get("memory_mb")
        if memory_mb is not None and (
            not isinstance(memory_mb, int)
            or isinstance(memory_mb, bool)
            or memory_mb < SMALLEST_MEMORY_MB
        ):
            raise invalid(
                path,
                f"'memory_mb' must be a whole number of megabytes, at least"
                f" {SMALLEST_MEMORY_MB}; got {memory_mb!r}",
            )

        raw_timeout = spec.get("timeout")
        timeout = (
            None
            if raw_timeout is None
            else compiler.value(raw_timeout, path, "timeout")
        )
        return cls(
            path,
            spec.get("name"),
            code,
            _mentioned_names(code),
            timeout,
            memory_mb,
            save_as_name(spec, path),
        )

    async def run(self, execution: Execution) -> None:
        limits = execution.limits
        memory_mb = self.memory_mb or limits.python_memory_mb
        if memory_mb > limits.python_memory_mb:
            raise StepFailed(
                self.path,
                f"memory_mb is {memory_mb}, but python steps may use at most"
                f" {limits.python_memory_mb} MB on this server",
            )

        call = PythonCall(
            code=self.code,
            key=self.key,
            names_json=self._names_json(execution),
            timeout=self._timeout(execution),
            memory_mb=memory_mb,
        )
        outcome = await shared_pool().call(call)

        await self._report_output(execution, outcome)
        if outcome.failure is not None:
            raise StepFailed(self.path, _failure_message(outcome, call.timeout))
        if self.target is not None:
            execution.assign(self.target, outcome.value, self.path)

    def _timeout(self, execution: Execution) -> float:
        return timeout_seconds(
            self.timeout,
            execution.limits.python_timeout_seconds,
            execution.names,
            self.path,
        )

    def _names_json(self, execution: Execution) -> str:
        names = execution.names
        variables = execution.variables
        chosen = {
            name: names[name]
            for name in self.names
            if name in variables or name in _ENGINE_NAMES
        }
        try:
            return json.dumps(chosen, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError):
            pass

        # Name the variable that cannot be sent.
        for name, value in chosen.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise StepFailed(
                    self.path,
                    f"'{name}' holds {_what(value)}, which cannot be passed to"
                    f" python code ({error})",
                ) from None
        raise AssertionError("some variable failed to encode and then did not")

    async def _report_output(
        self, execution: Execution, outcome: PythonOutcome
    ) -> None:
        reporter = execution.reporter
        for text, level in ((outcome.stdout, "info"), (outcome.stderr, "warning")):
            text = text.rstrip("\n")
            if text:
                await reporter.log(execution.redact(text), level=level, step=self.label)
        if outcome.traceback:
            await reporter.log(
                execution.redact(outcome.traceback), level="error", step=self.label
            )


def _mentioned_names(code: str) -> tuple[str, ...]:
    """The names the code mentions that may be passed as its local variables."""
    tree = ast.parse(code)
    mentioned = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return tuple(
        sorted(
            name
            for name in mentioned
            if name != "secrets" and name.isidentifier() and not keyword.iskeyword(name)
        )
    )


def _failure_message(outcome: PythonOutcome, timeout: float) -> str:
    if outcome.failure == "timeout":
        return f"The python step ran longer than {timeout:g} s and was stopped."
    if outcome.failure == "memory":
        return (
            f"The python step used more than {outcome.memory_mb} MB of memory"
            " and was stopped."
        )
    if outcome.failure == "result":
        return (
            f"The python step returned {outcome.message}, which cannot be saved;"
            " return JSON data: dicts, lists, text, numbers, booleans or None."
        )
    if outcome.failure == "crash":
        return (
            f"The python step's worker process stopped unexpectedly ({outcome.message})"
            " and was replaced."
        )
    where = f" (line {outcome.line})" if outcome.line else ""
    message = f"The python step raised {outcome.message}{where}."
    if outcome.sandboxed and outcome.message.startswith("PermissionError"):
        message += f" {SANDBOX_HINT}"
    return message


def _what(value: Any) -> str:
    return f"a {type_name(value)}"
