"""The step registry: how a step definition becomes a `Step` object.

A step kind is a `Step` subclass registered with `register_step`. Its `kind` is
the key that names it in a flow (`set`, `if`, ...), `options` the other keys it
accepts besides `name`. `compile` reads the definition once per flow version
(sub-step lists through the `StepCompiler`, fields through `expressions`), and
`run` executes it against one run's `Execution`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from jinja2 import TemplateSyntaxError

from flowdesk.engine import expressions
from flowdesk.errors import DefinitionError, Problem, StepFailed

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution

COMMON_KEYS = frozenset({"name", "on_error"})
"""Keys any step may carry, whatever its kind."""

ON_ERROR_CHOICES = ("fail", "continue")

_StepClass = TypeVar("_StepClass", bound="type[Step]")

_registry: dict[str, type[Step]] = {}


class RunLimitReached(StepFailed):
    """A limit of the whole run was reached. Unlike other failures, neither
    `on_error: continue` nor `try`/`catch` can catch it."""


class Step(ABC):
    """One compiled step. Instances are shared by every run of a flow version,
    so all per-run state lives in the `Execution`, never on the step."""

    kind: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()

    __slots__ = ("continues_on_error", "label", "path")

    def __init__(self, path: str, name: str | None) -> None:
        self.path = path
        # What log lines carry as their step: the path, and the name if it has one.
        self.label = f"{path} ({name})" if name else path
        # Set by the compiler from `on_error`, which any kind may carry.
        self.continues_on_error = False

    @classmethod
    @abstractmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> Step:
        """Build the step from its definition; raise `DefinitionError` if it is
        unusable (the compiler records it and goes on with the next step)."""

    @abstractmethod
    async def run(self, execution: Execution) -> None:
        """Execute the step once; raise `StepFailed` to fail the run."""


def register_step(step_class: _StepClass) -> _StepClass:
    """Class decorator that makes a step kind available to `compile_flow`."""
    kind = step_class.kind
    if kind in _registry or kind in COMMON_KEYS:
        raise ValueError(f"Step kind {kind!r} is already taken.")
    _registry[kind] = step_class
    return step_class


def registered_kinds() -> list[str]:
    """The step kinds flows may use, in registration order."""
    return list(_registry)


def invalid(path: str, message: str) -> DefinitionError:
    """The error a step's `compile` raises for a definition it cannot use."""
    return DefinitionError([Problem(message, path=path)])


class StepCompiler:
    """Compiles step lists and fields, collecting every problem it meets so that
    one `DefinitionError` can report them all."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def steps(self, specs: Any, path: str) -> tuple[Step, ...]:
        """Compile a list of step definitions found at `path` (`steps`,
        `steps[2].then`)."""
        if not isinstance(specs, list):
            self.problems.append(
                Problem(f"expected a list of steps, got {type_name(specs)}", path=path)
            )
            return ()

        compiled = []
        for index, spec in enumerate(specs):
            step_path = f"{path}[{index}]"
            try:
                compiled.append(self._step(spec, step_path))
            except DefinitionError as error:
                self.problems.extend(error.problems)
        return tuple(compiled)

    def value(self, raw: Any, path: str, field: str) -> expressions.Value:
        """Compile a field that keeps its type (`set` values, conditions)."""
        return self._template(expressions.compile_value, raw, path, field)

    def text(self, raw: Any, path: str, field: str) -> expressions.Value:
        """Compile a field that is always text (messages)."""
        return self._template(expressions.compile_text, raw, path, field)

    def html(self, raw: Any, path: str, field: str) -> expressions.Value:
        """Compile an HTML template, escaping what it inserts."""
        return self._template(expressions.compile_html, raw, path, field)

    def _step(self, spec: Any, path: str) -> Step:
        if not isinstance(spec, Mapping):
            raise invalid(path, f"a step must be a mapping, got {type_name(spec)}")

        kinds = [key for key in spec if key in _registry]
        if not kinds:
            known = ", ".join(_registry)
            raise invalid(
                path,
                f"the step has no known kind among {list(spec)};"
                f" expected one of {known}",
            )
        if len(kinds) > 1:
            raise invalid(
                path,
                f"the step has several kinds ({', '.join(kinds)}); use one per step",
            )

        step_class = _registry[kinds[0]]
        unknown = [
            key
            for key in spec
            if key != step_class.kind
            and key not in COMMON_KEYS
            and key not in step_class.options
        ]
        if unknown:
            accepted = sorted(step_class.options | COMMON_KEYS)
            raise invalid(
                path,
                f"'{step_class.kind}' does not take {', '.join(map(repr, unknown))};"
                f" it accepts {', '.join(map(repr, accepted))}",
            )

        name = spec.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid(path, f"'name' must be text, got {type_name(name)}")
        on_error = spec.get("on_error", "fail")
        if on_error not in ON_ERROR_CHOICES:
            raise invalid(
                path, f"'on_error' must be 'fail' or 'continue', got {on_error!r}"
            )

        step = step_class.compile(spec, path, self)
        step.continues_on_error = on_error == "continue"
        return step

    def _template(
        self,
        compile_field: Callable[[Any, str], expressions.Value],
        raw: Any,
        path: str,
        field: str,
    ) -> expressions.Value:
        try:
            return compile_field(raw, path)
        except TemplateSyntaxError as error:
            where = f" (line {error.lineno})" if error.lineno > 1 else ""
            raise invalid(
                path,
                f"'{field}' has an invalid template{where}: {error.message or error}",
            ) from error


def save_as_name(spec: Mapping[str, Any], path: str) -> str | None:
    """The variable named by a step's `save_as`, checked; None without one."""
    name = spec.get("save_as")
    if name is None:
        return None
    if not isinstance(name, str) or not name.isidentifier():
        raise invalid(path, f"'save_as' must be a variable name, got {name!r}")
    return name


def type_name(value: Any) -> str:
    """How messages name the type of a value a user wrote or computed."""
    return "nothing" if value is None else type(value).__name__


def timeout_seconds(
    value: expressions.Value | None, default: float, names: dict[str, Any], path: str
) -> float:
    """A step's `timeout` as a positive number of seconds, else the default."""
    if value is None:
        return default
    seconds = value.evaluate(names)
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise StepFailed(
            path, f"timeout must be a number of seconds above 0, got {seconds!r}"
        )
    return float(seconds)
