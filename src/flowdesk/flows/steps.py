"""The step kinds a flow may use, and the checks its steps pass when it is loaded.

`STEP_KINDS` is the one table of step kinds. A step is a mapping with exactly one
kind key (`log: ...`); the kind decides which other keys the step may carry.
Adding a kind means adding an entry here and its `<kind>-step` block to
flow-format.schema.json, which editors read; a test keeps the two in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from flowdesk.flows.messages import (
    closest,
    describe_value,
    list_words,
    suggestion,
    text_hint,
)
from flowdesk.flows.source import KeyPath, ProblemList

# Names flowdesk fills into every flow context; a step may not overwrite them.
RESERVED_NAMES = frozenset({"inputs", "run", "secrets"})

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Only parsed, never rendered, so its settings (autoescape and so on) do not matter.
_TEMPLATES = SandboxedEnvironment()


# A check looks at the value of one key of one step: (checker, step path, key, value).
Check = Callable[["StepChecker", KeyPath, str, Any], None]
# A check of how the keys of one step go together: (checker, step path, step).
StepCheck = Callable[["StepChecker", KeyPath, dict[str, Any]], None]


@dataclass(frozen=True)
class StepKey:
    """A key a step may carry besides its kind key."""

    check: Check
    required: bool = False
    what: str = ""  # for "is missing" messages, e.g. "a list of steps"
    holds_steps: bool = False  # a nested step list, such as `then` or `do`


@dataclass(frozen=True)
class StepKind:
    check: Check  # checks the value under the kind key itself
    keys: Mapping[str, StepKey] = field(default_factory=dict)
    check_step: StepCheck | None = None  # runs after the keys' own checks

    def allowed_keys(self) -> dict[str, StepKey]:
        return {**self.keys, **COMMON_KEYS}


def is_expression(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=4096)
def template_error(text: str) -> str | None:
    """Jinja's reason why `text` does not parse, as ': reason', or None.

    Cached, because flows repeat the same expressions and saving a flow whose
    steps have not changed should not parse them all again.
    """
    try:
        _TEMPLATES.parse(text)
    except TemplateSyntaxError as error:
        where = f" (line {error.lineno} of the text)" if "\n" in text.strip() else ""
        return f"{where}: {error.message}"
    return None


def is_identifier(name: str) -> bool:
    return _IDENTIFIER.fullmatch(name) is not None


class StepChecker:
    """Checks step lists, reporting every problem to one ProblemList."""

    def __init__(self, problems: ProblemList) -> None:
        self.problems = problems

    def check_steps(self, steps: Any, path: KeyPath) -> None:
        if not isinstance(steps, list):
            self.problems.add(
                path, f"{path[-1]} must be a list of steps, got {describe_value(steps)}"
            )
            return
        for index, step in enumerate(steps):
            self.check_step(step, (*path, index))

    def check_step(self, step: Any, path: KeyPath) -> None:
        if not isinstance(step, dict):
            self.problems.add(
                path,
                "a step must be a mapping with one step kind as its key, such as "
                f"'log: Hello'; got {describe_value(step)}",
            )
            return

        kinds = [key for key in step if key in STEP_KINDS]
        if len(kinds) != 1:
            self._report_kind_count(step, path, kinds)
            return

        kind_name = kinds[0]
        kind = STEP_KINDS[kind_name]
        allowed = kind.allowed_keys()
        misspelt: set[str] = set()  # keys already named by a "did you mean"
        for key, value in step.items():
            if key == kind_name:
                kind.check(self, path, key, value)
            elif key in allowed:
                allowed[key].check(self, path, key, value)
            else:
                meant = closest(key, allowed)
                hint = "" if meant is None else f" (did you mean {meant!r}?)"
                misspelt.add(meant or "")
                self.report(
                    path,
                    key,
                    f"unknown key {key!r} in the {kind_name!r} step; its keys are: "
                    f"{list_words([kind_name, *allowed])}{hint}",
                )

        for key, spec in allowed.items():
            if spec.required and key not in step and key not in misspelt:
                self.problems.add(
                    path, f"the {kind_name!r} step is missing {key!r} ({spec.what})"
                )
        if kind.check_step is not None:
            kind.check_step(self, path, step)

    def _report_kind_count(
        self, step: dict[str, Any], path: KeyPath, kinds: list[str]
    ) -> None:
        if kinds:
            named = list_words(map(repr, kinds))
            self.problems.add(
                path,
                f"the step has {len(kinds)} step kinds ({named}); "
                "a step does one thing, so give each its own step",
            )
            return

        unknown = [key for key in step if key not in COMMON_KEYS]
        expected = f"expected one of: {list_words(STEP_KINDS)}"
        if unknown:
            self.report(
                path,
                unknown[0],
                f"unknown step kind {unknown[0]!r}; {expected}"
                f"{suggestion(unknown[0], STEP_KINDS)}",
            )
        else:
            self.problems.add(path, f"the step has no step kind; {expected}")

    def report(
        self, step: KeyPath, key: str, message: str, *, at: KeyPath | None = None
    ) -> None:
        """Record a problem of the step at `step`, on the line of its `key`."""
        self.problems.add(step, message, at=(*step, key) if at is None else at)

    def expect(self, step: KeyPath, key: str, value: Any, expected: str) -> None:
        hint = text_hint(value) if expected == "text" else ""
        self.report(
            step, key, f"{key} must be {expected}, got {describe_value(value)}{hint}"
        )

    def check_templates(self, step: KeyPath, key: str, value: Any, at: KeyPath) -> None:
        """Parse every expression in `value` (text, or lists and mappings of it)."""
        if isinstance(value, dict):
            for name, item in value.items():
                self.check_templates(step, key, item, (*at, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_templates(step, key, item, (*at, index))
        elif isinstance(value, str) and is_expression(value):
            error = template_error(value)
            if error is not None:
                self.report(step, key, f"{key} has a template error{error}", at=at)

    def check_name(
        self, step: KeyPath, key: str, name: Any, what: str, at: KeyPath
    ) -> None:
        """A name the step writes into the flow context."""
        if not isinstance(name, str) or not is_identifier(name):
            self.report(
                step,
                key,
                f"{what} {describe_value(name)} is not a usable name; use letters, "
                "digits and '_', not starting with a digit",
                at=at,
            )
        elif name in RESERVED_NAMES:
            self.report(
                step,
                key,
                f"{what} {name!r} is reserved; flowdesk fills in inputs, run and "
                "secrets itself, so pick another name",
                at=at,
            )


# The checks of single keys, shared by the kinds below.


def _text(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if isinstance(value, str):
        checker.check_templates(step, key, value, (*step, key))
    else:
        checker.expect(step, key, value, "text")


def _number_or_expression(low: float, high: float | None, unit: str) -> Check:
    def check(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
        if isinstance(value, str) and is_expression(value):
            checker.check_templates(step, key, value, (*step, key))
            return
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            checker.expect(
                step, key, value, f"{unit} ({span}) or an expression like '{{{{ x }}}}'"
            )

    return check


def _condition(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if isinstance(value, str) and is_expression(value):
        checker.check_templates(step, key, value, (*step, key))
    elif not isinstance(value, bool):
        # Any other text would render as itself and always count as true.
        checker.expect(
            step,
            key,
            value,
            "an expression like '{{ inputs.express }}', or true or false",
        )


def _items(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if isinstance(value, list) or (isinstance(value, str) and is_expression(value)):
        checker.check_templates(step, key, value, (*step, key))
    else:
        checker.expect(
            step, key, value, "a list or an expression like '{{ inputs.lines }}'"
        )


def _loop_name(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    checker.check_name(step, key, value, "the loop name", (*step, key))


def _assignments(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if not isinstance(value, dict):
        checker.expect(
            step, key, value, "a mapping of names to values, like {total: 0}"
        )
        return
    if not value:
        checker.report(step, key, f"{key} needs at least one name to set")
    for name, item in value.items():
        checker.check_name(step, key, name, "the name", (*step, key, name))
        checker.check_templates(step, key, item, (*step, key, name))


def _steps(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    checker.check_steps(value, (*step, key))


def _step_list(required: bool = False) -> StepKey:
    return StepKey(_steps, required=required, what="a list of steps", holds_steps=True)


# The keys of the steps that reach outside (http, python, run_flow) and of try.


def _positive_seconds(
    checker: StepChecker, step: KeyPath, key: str, value: Any
) -> None:
    if isinstance(value, str) and is_expression(value):
        checker.check_templates(step, key, value, (*step, key))
        return
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or value <= 0:
        checker.expect(step, key, value, "a number of seconds above 0 or an expression")


def _mapping_or_expression(example: str) -> Check:
    def check(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
        if isinstance(value, dict) or (isinstance(value, str) and is_expression(value)):
            checker.check_templates(step, key, value, (*step, key))
        else:
            checker.expect(
                step, key, value, f"a mapping like {example} or an expression"
            )

    return check


def _any_value(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    checker.check_templates(step, key, value, (*step, key))


def _save_as(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    checker.check_name(step, key, value, "save_as", (*step, key))


def _whole_number(low: int, high: int | None, unit: str) -> Check:
    def check(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
        is_whole = isinstance(value, int) and not isinstance(value, bool)
        if not is_whole or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            checker.expect(step, key, value, f"{unit} ({span})")

    return check


def _boolean(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if not isinstance(value, bool):
        checker.expect(step, key, value, "true or false")


def _on_error(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if value not in ("continue", "fail"):
        checker.report(
            step,
            key,
            f"on_error must be 'continue' (go on with the next step, the error in"
            f" 'error') or 'fail' (the default), got {describe_value(value)}"
            f"{suggestion(value, ('continue', 'fail'))}",
        )


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_IDEMPOTENT_METHODS = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
_HTTP_PAYLOADS = ("json", "form", "body")
_FLOW_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"


def _method(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if isinstance(value, str) and is_expression(value):
        checker.check_templates(step, key, value, (*step, key))
    elif not isinstance(value, str) or value.strip().upper() not in _HTTP_METHODS:
        checker.expect(step, key, value, f"one of {list_words(_HTTP_METHODS)}")


def _statuses(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    def is_status(item: Any) -> bool:
        return (
            isinstance(item, int) and not isinstance(item, bool) and 100 <= item < 600
        )

    if not isinstance(value, list) or not all(map(is_status, value)):
        checker.expect(step, key, value, "a list of HTTP statuses such as [404, 409]")


def _http_step(checker: StepChecker, step: KeyPath, spec: dict[str, Any]) -> None:
    payloads = [key for key in _HTTP_PAYLOADS if key in spec]
    if len(payloads) > 1:
        checker.report(
            step,
            payloads[1],
            f"the step sends one body, but has {' and '.join(payloads)}; keep one",
        )

    method = spec.get("method", "GET")
    retries = spec.get("retries")
    if (
        isinstance(retries, int)
        and retries > 0
        and isinstance(method, str)
        and not is_expression(method)
        and method.strip().upper() not in _IDEMPOTENT_METHODS
    ):
        checker.report(
            step,
            "retries",
            f"retries apply to {list_words(_IDEMPOTENT_METHODS)}; a repeated"
            f" {method.upper()} could do its work twice",
        )

    url = spec.get("http")
    is_relative = (
        isinstance(url, str)
        and not is_expression(url)
        and not url.strip().lower().startswith(("http://", "https://"))
    )
    if is_relative and "connection" not in spec:
        checker.report(
            step,
            "http",
            f"the URL {describe_value(url)} is not a full http:// or https:// address;"
            " a relative URL needs a connection ('connection: NAME')",
        )


def _python_code(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    from flowdesk.engine.steps.python import syntax_problem

    if not isinstance(value, str) or not value.strip():
        checker.expect(step, key, value, "Python code as text")
        return
    problem = syntax_problem(value)
    if problem is not None:
        checker.report(step, key, problem)


def _flow_id(checker: StepChecker, step: KeyPath, key: str, value: Any) -> None:
    if isinstance(value, str) and is_expression(value):
        checker.check_templates(step, key, value, (*step, key))
    elif not isinstance(value, str) or re.fullmatch(_FLOW_ID, value) is None:
        checker.expect(
            step,
            key,
            value,
            "the id of a flow, such as 'order-report', or an expression",
        )


COMMON_KEYS: Mapping[str, StepKey] = {
    "name": StepKey(_text),
    "on_error": StepKey(_on_error),
}

STEP_KINDS: Mapping[str, StepKind] = {
    "set": StepKind(_assignments),
    "log": StepKind(_text),
    "status": StepKind(
        _text, {"progress": StepKey(_number_or_expression(0, 100, "a percentage"))}
    ),
    "if": StepKind(
        _condition, {"then": _step_list(required=True), "else": _step_list()}
    ),
    "for_each": StepKind(
        _items,
        {
            "as": StepKey(_loop_name, required=True, what="the name of each item"),
            "do": _step_list(required=True),
        },
    ),
    "sleep": StepKind(_number_or_expression(0, None, "a number of seconds")),
    "fail": StepKind(_text),
    "html": StepKind(_text),
    "http": StepKind(
        _text,
        {
            "method": StepKey(_method),
            "headers": StepKey(_mapping_or_expression("{Accept: text/csv}")),
            "query": StepKey(_mapping_or_expression("{page: 2}")),
            "json": StepKey(_any_value),
            "form": StepKey(_mapping_or_expression("{name: Ada}")),
            "body": StepKey(_text),
            "timeout": StepKey(_positive_seconds),
            "connection": StepKey(_text),
            "allow_status": StepKey(_statuses),
            "retries": StepKey(_whole_number(0, 10, "a number of retries")),
            "save_as": StepKey(_save_as),
        },
        check_step=_http_step,
    ),
    "python": StepKind(
        _python_code,
        {
            "timeout": StepKey(_positive_seconds),
            "memory_mb": StepKey(_whole_number(32, None, "a number of megabytes")),
            "save_as": StepKey(_save_as),
        },
    ),
    "run_flow": StepKind(
        _flow_id,
        {
            "inputs": StepKey(_mapping_or_expression("{customer: ACME}")),
            "wait": StepKey(_boolean),
            "save_as": StepKey(_save_as),
        },
    ),
    "try": StepKind(_steps, {"catch": _step_list(required=True)}),
}
