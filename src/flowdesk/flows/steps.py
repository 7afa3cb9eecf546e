"""The step kinds a flow may use, and the checks its steps pass when it is loaded.

`STEP_KINDS` is the one table of step kinds. A step is a mapping with exactly one
kind key (`log: ...`); the kind decides which other keys the step may carry.
Adding a kind (`http`, `python`, `run_flow`, `try`) means adding an entry here
and its `<kind>-step` block to flow-format.schema.json, which editors read; a
test keeps the two in agreement.
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


COMMON_KEYS: Mapping[str, StepKey] = {"name": StepKey(_text)}

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
}
