"""Compiling a flow's steps once and executing them for one run.

`compile_flow` turns a validated step list into a `CompiledFlow`, which callers
cache per flow version and share between concurrent runs; `CompiledFlow.execute`
runs it with a fresh `Execution` holding everything that belongs to that run.
The engine knows nothing of databases or HTTP: it reports through `RunReporter`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

from flowdesk.engine.connections import Connection
from flowdesk.engine.expressions import NESTING_LIMIT, SIZE_LIMIT, TEMPLATE_GLOBALS
from flowdesk.engine.services import RunServices
from flowdesk.engine.steps import RunLimitReached, Step, StepCompiler, type_name
from flowdesk.errors import DefinitionError, Problem, StepFailed

logger = logging.getLogger(__name__)

RESERVED_NAMES = frozenset({"inputs", "run", "secrets"})
"""Context names the engine provides; steps may read them but not assign them."""

# Steps between two returns to the event loop, so that a long flow of cheap steps
# cannot starve the other runs and requests sharing the loop.
_YIELD_EVERY = 200

# Secrets shorter than this are not masked: replacing every "ab" in a log would
# garble it while hiding next to nothing.
_SHORTEST_MASKED_SECRET = 4
_SECRET_MASK = "***"


@dataclass(frozen=True)
class Limits:
    """Bounds on one run; exceeding one fails the step that did it."""

    max_loop_iterations: int = 100_000  # per for_each, and in total per run
    max_sleep_seconds: float = 3600.0  # for a single sleep
    max_steps: int = 1_000_000  # steps executed per run, counting each iteration

    # Steps that reach outside; a step may ask for less, never for more memory.
    python_timeout_seconds: float = 60.0
    python_memory_mb: int = 512
    http_timeout_seconds: float = 30.0
    http_max_response_bytes: int = 10 * 1024 * 1024
    http_retry_delay_seconds: float = 0.5  # before the first retry, then doubled


class RunReporter(Protocol):
    """What the engine tells its caller while a run executes."""

    async def log(
        self,
        message: str,
        *,
        level: str = "info",
        step: str | None = None,
        child_run_id: str | None = None,  # the run a run_flow step started
    ) -> None: ...

    async def status(self, message: str, progress: float | None = None) -> None: ...

    async def step_started(self, path: str, kind: str) -> None: ...


@dataclass
class RunResult:
    outputs: dict[str, Any]
    html: str | None


class Execution:
    """The state of one run: the names expressions see, the variables steps
    assigned, the reporter, limits and counters. Steps receive it in `run`."""

    __slots__ = (
        "_secret_values",
        "connections",
        "html",
        "limits",
        "loop_iterations",
        "names",
        "reporter",
        "secrets",
        "services",
        "steps_run",
        "variables",
    )

    def __init__(
        self,
        inputs: dict[str, Any],
        run_info: dict[str, Any],
        reporter: RunReporter,
        secrets: Mapping[str, str],
        limits: Limits,
        *,
        services: RunServices | None = None,
        connections: Mapping[str, Connection] | None = None,
    ) -> None:
        self.reporter = reporter
        self.limits = limits
        self.services = services
        self.connections: Mapping[str, Connection] = MappingProxyType(
            dict(connections or {})
        )
        self.secrets: Mapping[str, str] = MappingProxyType(dict(secrets))

        # Expressions read `names` without copying it, so it holds the template
        # globals too; `variables` holds only what steps assigned.
        self.names: dict[str, Any] = dict(TEMPLATE_GLOBALS)
        self.names.update(inputs=inputs, run=run_info, secrets=self.secrets)
        self.variables: dict[str, Any] = {}

        self.html: str | None = None
        self.steps_run = 0
        self.loop_iterations = 0
        self._secret_values = _masked_forms(self.secrets.values())

    async def run_steps(self, steps: Sequence[Step]) -> None:
        """Execute `steps` in order; compound steps call this for their bodies."""
        for step in steps:
            self.steps_run += 1
            if self.steps_run > self.limits.max_steps:
                raise RunLimitReached(
                    step.path,
                    f"the run reached its limit of {self.limits.max_steps} steps",
                )
            if self.steps_run % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

            await self.reporter.step_started(step.path, step.kind)
            if step.continues_on_error:
                await self._run_continuing(step)
            else:
                await step.run(self)

    async def _run_continuing(self, step: Step) -> None:
        try:
            await step.run(self)
        except RunLimitReached:
            raise
        except StepFailed as failure:
            self.note_error(failure)
            await self.reporter.log(
                self.redact(f"The step failed and the flow goes on: {failure.reason}"),
                level="warning",
                step=step.label,
            )

    def note_error(self, failure: StepFailed) -> None:
        """Put a caught failure into the context as `error`, for the steps
        that handle it (`on_error: continue`, `catch`)."""
        error = {"message": failure.reason, "step": failure.path}
        self.names["error"] = error
        self.variables["error"] = error

    def assign(self, name: str, value: Any, path: str) -> None:
        """Set a context variable, refusing the names the engine reserves."""
        if name in RESERVED_NAMES:
            raise StepFailed(
                path, f"'{name}' is reserved for the engine; choose another name"
            )
        self.names[name] = value
        self.variables[name] = value

    def count_iteration(self, path: str) -> None:
        """Count one loop iteration against the run's total."""
        self.loop_iterations += 1
        limit = self.limits.max_loop_iterations
        if self.loop_iterations > limit:
            raise RunLimitReached(
                path, f"the run reached its limit of {limit} loop iterations in total"
            )

    def redact(self, text: str) -> str:
        """Mask the values of the run's secrets in text that leaves the engine."""
        for value in self._secret_values:
            if value in text:
                text = text.replace(value, _SECRET_MASK)
        return text


class CompiledFlow:
    """A flow's steps compiled once; safe to execute many times concurrently."""

    __slots__ = ("_outputs", "_steps")

    def __init__(self, steps: tuple[Step, ...], outputs: tuple[str, ...] | None):
        self._steps = steps
        self._outputs = outputs

    @property
    def steps(self) -> tuple[Step, ...]:
        return self._steps

    async def execute(
        self,
        inputs: dict[str, Any],
        run_info: dict[str, Any],
        reporter: RunReporter,
        *,
        secrets: Mapping[str, str] | None = None,
        limits: Limits = Limits(),
        services: RunServices | None = None,
        connections: Mapping[str, Connection] | None = None,
    ) -> RunResult:
        """Run the flow and return its outputs and HTML result.

        `services` lets `run_flow` start other flows; `connections` are what
        `http` steps may name. Raises `StepFailed` when a step fails;
        `asyncio.CancelledError` passes through untouched.
        """
        execution = Execution(
            inputs,
            run_info,
            reporter,
            secrets or {},
            limits,
            services=services,
            connections=connections,
        )
        try:
            await execution.run_steps(self._steps)
            outputs = self._collect_outputs(execution)
        except StepFailed as failure:
            reason = execution.redact(failure.reason)
            if reason == failure.reason:
                raise
            # The original error and its cause carry the secret; drop them.
            raise StepFailed(failure.path, reason) from None

        return RunResult(outputs=outputs, html=execution.html)

    def _collect_outputs(self, execution: Execution) -> dict[str, Any]:
        variables = execution.variables
        if self._outputs is None:
            chosen = list(variables)
        else:
            chosen = list(self._outputs)
            missing = [name for name in chosen if name not in variables]
            if missing:
                listed = ", ".join(repr(name) for name in missing)
                raise StepFailed(
                    "outputs", f"{listed} listed as output but never set by a step"
                )

        converter = _JsonConverter(execution)
        return {name: converter.convert(variables[name], name) for name in chosen}


def compile_flow(
    steps: list[dict[str, Any]], outputs: list[str] | None = None
) -> CompiledFlow:
    """Compile a flow's steps and templates once, for any number of runs.

    Raises `DefinitionError` listing every problem found, each with its step
    path (template syntax, unknown keys, missing `then` or `do`, ...).
    """
    compiler = StepCompiler()
    compiled_steps = compiler.steps(steps, "steps")
    problems = compiler.problems

    if outputs is not None:
        if not isinstance(outputs, list):
            problems.append(
                Problem(
                    f"expected a list of names, got {type_name(outputs)}",
                    path="outputs",
                )
            )
        else:
            problems.extend(_output_problems(outputs))

    if problems:
        raise DefinitionError(problems)

    logger.debug("Compiled a flow of %s top-level steps", len(compiled_steps))
    return CompiledFlow(compiled_steps, None if outputs is None else tuple(outputs))


def _output_problems(outputs: list[Any]) -> list[Problem]:
    problems = []
    for index, name in enumerate(outputs):
        path = f"outputs[{index}]"
        if not isinstance(name, str) or not name:
            problems.append(
                Problem(f"an output must be a name, got {name!r}", path=path)
            )
        elif name in RESERVED_NAMES:
            problems.append(
                Problem(f"'{name}' is reserved and cannot be an output", path=path)
            )
    return problems


class _JsonConverter:
    """Turns a run's variables into JSON data: tuples become lists, text is
    redacted, and anything JSON cannot hold fails the run naming the variable."""

    def __init__(self, execution: Execution) -> None:
        self._execution = execution
        # Parts held more than once are copied each time, so the total is bounded
        # like the size of one expression's result.
        self._budget = SIZE_LIMIT

    def convert(self, value: Any, name: str) -> Any:
        return self._convert(value, name, 0)

    def _convert(self, value: Any, name: str, depth: int) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise self._failure(name, f"is larger than {SIZE_LIMIT} items in all")

        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, str):
            self._budget -= len(value)
            return self._execution.redact(str(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self._failure(name, f"holds {value}, which JSON cannot store")
            return value

        if isinstance(value, list | tuple | dict):
            if depth >= NESTING_LIMIT:
                raise self._failure(name, f"is nested more than {NESTING_LIMIT} deep")
            if isinstance(value, dict):
                return {
                    self._key(key, name): self._convert(item, name, depth + 1)
                    for key, item in value.items()
                }
            return [self._convert(item, name, depth + 1) for item in value]

        raise self._failure(name, f"holds {_describe(value)}, which JSON cannot store")

    def _key(self, key: Any, name: str) -> str:
        if isinstance(key, str):
            return self._execution.redact(str(key))
        if isinstance(key, int) and not isinstance(key, bool):
            return str(key)
        raise self._failure(
            name, f"has a key of type {type_name(key)}; keys must be text"
        )

    @staticmethod
    def _failure(name: str, problem: str) -> StepFailed:
        return StepFailed("outputs", f"output '{name}' {problem}")


def _masked_forms(values: Iterable[str]) -> list[str]:
    """The texts `redact` replaces: each secret as is and as it appears in a
    URL, longest first so that a secret inside another is not masked first."""
    forms: set[str] = set()
    for value in values:
        if len(value) >= _SHORTEST_MASKED_SECRET:
            forms.update((value, quote(value, safe=""), quote_plus(value)))
    return sorted(forms, key=len, reverse=True)


def _describe(value: Any) -> str:
    # An undefined value says best what went wrong in its own message.
    try:
        text = str(value)
    except Exception as error:
        return f"an undefined value ({error})"
    return f"a {type_name(value)} ({text[:60]})"
