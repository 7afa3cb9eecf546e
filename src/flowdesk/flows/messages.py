"""The wording of definition problems: how values are shown, "did you mean"
suggestions, and jsonschema's validation errors retold as sentences that name the
bad value and say what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from flowdesk.flows.source import KeyPath

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}

_FORMAT_WORDS = {
    "date": "date (YYYY-MM-DD)",
    "time": "time (HH:MM:SS)",
    "date-time": "date and time (ISO 8601)",
    "email": "email address",
    "uri": "URI",
    "regex": "regular expression",
}


def describe_value(value: Any) -> str:
    """Show a value the way its author wrote it: 'text', 5, true, null, a list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def list_words(words: Iterable[object]) -> str:
    return ", ".join(str(word) for word in words)


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice `word` was most likely meant to be, if any is close."""
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggestion(word: object, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a choice is close to `word`, else ''."""
    meant = closest(word, choices)
    return "" if meant is None else f" (did you mean {meant!r}?)"


def text_hint(value: Any) -> str:
    """A hint for YAML's habit of reading `yes`, `1.0` or `null` as non-text."""
    if isinstance(value, bool | int | float) or value is None:
        return "; put it in quotes to make it text"
    return ""


def label(path: KeyPath) -> str:
    """The name a message uses for the value at `path`: `cron`, `tags[1]`."""
    if not path:
        return "the flow"
    last = path[-1]
    if isinstance(last, int):
        owner = path[-2] if len(path) > 1 else ""
        return f"{owner}[{last}]"
    return last


@dataclass(frozen=True)
class Explained:
    """One problem read from a validation error."""

    path: KeyPath  # the value the problem is about
    message: str
    at: KeyPath  # where its line is: for an unknown key, the key's own line


def explain(error: ValidationError, prefix: KeyPath = ()) -> list[Explained]:
    """Retell a jsonschema error about the value at `prefix` as sentences."""
    path: KeyPath = (*prefix, *error.absolute_path)
    name = label(path)
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    rule = error.validator_value
    custom = schema.get("errorMessage")

    def one(message: str) -> list[Explained]:
        return [Explained(path, message, path)]

    if error.validator == "additionalProperties" and isinstance(value, dict):
        return _unknown_keys(path, value, schema)
    if error.validator == "required" and isinstance(value, dict):
        return [
            Explained(path, f"{name} is missing the required key {key!r}", path)
            for key in rule
            if key not in value
        ]
    if error.validator in ("anyOf", "oneOf"):
        return _explain_choice(error, prefix, path, custom)
    if custom:
        return one(f"{name} {describe_value(value)} {custom}")

    if error.validator == "type":
        expected = _type_words(rule)
        hint = text_hint(value) if expected == "text" else ""
        return one(f"{name} must be {expected}, got {describe_value(value)}{hint}")
    if error.validator == "enum":
        choices = list_words(_choice_word(choice) for choice in rule)
        close = suggestion(
            value, [choice for choice in rule if isinstance(choice, str)]
        )
        return one(
            f"{name} {describe_value(value)} is not one of the accepted values: "
            f"{choices}{close}"
        )
    if error.validator == "const":
        return one(
            f"{name} must be {describe_value(rule)}, got {describe_value(value)}"
        )
    if error.validator == "pattern":
        wording = schema.get("patternErrorMessage") or f"does not match {rule!r}"
        return one(f"{name} {describe_value(value)} {wording}")
    if error.validator == "format":
        kind = _FORMAT_WORDS.get(rule, rule)
        return one(f"{name} {describe_value(value)} is not a valid {kind}")
    return one(_explain_bound(error, name) or f"{name} is not valid: {error.message}")


def _choice_word(choice: Any) -> str:
    # Choices read best bare: "expected one of: skip, once".
    return (
        choice if isinstance(choice, str) and choice.strip() else describe_value(choice)
    )


def _type_words(rule: Any) -> str:
    types = [rule] if isinstance(rule, str) else list(rule)
    return " or ".join(_TYPE_WORDS.get(kind, kind) for kind in types)


def _unknown_keys(
    path: KeyPath, value: dict[str, Any], schema: dict[str, Any]
) -> list[Explained]:
    known = [key for key in schema.get("properties", {}) if not key.startswith("$")]
    where = f" in {label(path)}" if path else ""
    expected = (
        f"expected one of: {list_words(known)}" if known else "no keys are allowed"
    )
    return [
        Explained(
            path,
            f"unknown key {key!r}{where}; {expected}{suggestion(key, known)}",
            (*path, key),
        )
        for key in value
        if key not in known and not key.startswith("$")
    ]


def _explain_choice(
    error: ValidationError, prefix: KeyPath, path: KeyPath, custom: str | None
) -> list[Explained]:
    name = label(path)
    value = describe_value(error.instance)
    options = [option for option in error.validator_value if isinstance(option, dict)]

    # A select list written as oneOf [{const, title}, ...] reads best as its choices.
    if options and all("const" in option for option in options):
        choices = list_words(_choice_word(option["const"]) for option in options)
        return [
            Explained(
                path, f"{name} {value} is not one of the choices: {choices}", path
            )
        ]
    if custom:
        return [Explained(path, f"{name} {value} {custom}", path)]
    if error.context:
        closest = best_match(error.context)
        if closest is not None:
            return explain(closest, prefix)
    return [
        Explained(path, f"{name} {value} matches more than one of the choices", path)
    ]


def _explain_bound(error: ValidationError, name: str) -> str | None:
    """Messages for the keywords that bound a value's size or range."""
    rule = error.validator_value
    value = error.instance
    shown = describe_value(value)
    size = len(value) if isinstance(value, str | list | dict) else 0
    match error.validator:
        case "minimum":
            return f"{name} must be at least {rule}, got {shown}"
        case "maximum":
            return f"{name} must be at most {rule}, got {shown}"
        case "exclusiveMinimum":
            return f"{name} must be more than {rule}, got {shown}"
        case "exclusiveMaximum":
            return f"{name} must be less than {rule}, got {shown}"
        case "multipleOf":
            return f"{name} must be a multiple of {rule}, got {shown}"
        case "minLength" if rule == 1:
            return f"{name} must not be empty"
        case "minLength":
            return f"{name} must be at least {rule} characters long, got {size}"
        case "maxLength":
            return f"{name} must be at most {rule} characters long, got {size}"
        case "minItems":
            return f"{name} needs at least {rule} items, got {size}"
        case "maxItems":
            return f"{name} may have at most {rule} items, got {size}"
        case "uniqueItems":
            return f"{name} must not list the same item twice"
        case "minProperties":
            return f"{name} needs at least {rule} keys, got {size}"
        case "maxProperties":
            return f"{name} may have at most {rule} keys, got {size}"
        case "not" | None:
            # None is jsonschema's mark for a `false` schema, which refuses all.
            return f"{name} {shown} is not allowed here"
    return None
