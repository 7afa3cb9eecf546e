"""Validate flow input against its input schema, in words a flow user follows.

Validators are compiled once per schema (cached on the schema's canonical JSON),
never per request. Each message names the field by its `title` (else its dotted
name) and says what was expected; `FieldError.field` is the dotted path the form
uses for the field's name (`address.city`, `lines.0.sku`, `tags.1`), and a
missing required field is reported at its own path, not at its parent's.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from flowdesk.errors import DefinitionError, FieldError, InputError, Problem
from flowdesk.inputs.coercion import (
    MAX_DEPTH,
    choices,
    is_secret,
    item_schema,
    nesting_depth,
    resolve,
    scalar_text,
    schema_at,
    schema_types,
)

logger = logging.getLogger(__name__)

MAX_INPUT_BYTES = 1_000_000
_VALIDATOR_CACHE_SIZE = 256
_MAX_LISTED_CHOICES = 10

Schema = dict[str, Any]
Path = tuple[str | int, ...]


def input_validator(schema: Schema | bool) -> Any:
    """The compiled validator for an input schema, shared by every caller.

    Raises DefinitionError when the schema is not a valid JSON Schema.
    """
    return _compile(_canonical_json(schema))


@functools.lru_cache(maxsize=_VALIDATOR_CACHE_SIZE)
def _compile(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise DefinitionError(
            [
                Problem(
                    f"The input schema is not a valid JSON Schema: {error.message}",
                    path="interactive.input_schema",
                )
            ]
        ) from None

    logger.debug("Compiled an input validator for a %d-byte schema", len(schema_json))
    return Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _canonical_json(schema: Schema | bool) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def apply_defaults(schema: Schema | bool, data: dict[str, Any]) -> dict[str, Any]:
    """A copy of data with the `default` of every absent property filled in, in
    nested objects and in the objects of arrays too."""
    filled = _fill_defaults(resolve(schema, schema), data, schema, depth=0)
    return filled if isinstance(filled, dict) else dict(data)


def _fill_defaults(node: Schema, value: Any, root: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return value

    if isinstance(value, dict):
        filled = dict(value)
        properties = node.get("properties")
        for key, child in properties.items() if isinstance(properties, dict) else ():
            child_node = resolve(child, root)
            if key in filled:
                filled[key] = _fill_defaults(child_node, filled[key], root, depth + 1)
            elif "default" in child_node:
                filled[key] = copy.deepcopy(child_node["default"])
        return filled

    if isinstance(value, list) and "array" in schema_types(node, root):
        return [
            _fill_defaults(item_schema(node, index, root), item, root, depth + 1)
            for index, item in enumerate(value)
        ]
    return value


def validate_input(schema: Schema | bool, data: Any) -> list[FieldError]:
    """Everything wrong with data, in the schema's field order; [] when valid."""
    too_big = _size_problem(data)
    if too_big is not None:
        return [too_big]

    describer = _Describer(schema, data)
    found: dict[tuple[str, str], Path] = {}
    for error in input_validator(schema).iter_errors(data):
        for path, message in describer.describe(error):
            found.setdefault((_dotted(path), message), path)

    ordered = sorted(found.items(), key=lambda item: describer.sort_key(item[1]))
    return [FieldError(field, message) for (field, message), _path in ordered]


def check_input(schema: Schema | bool, data: dict[str, Any]) -> dict[str, Any]:
    """data with defaults applied, when it is valid; raises InputError otherwise."""
    filled = apply_defaults(schema, data)
    errors = validate_input(schema, filled)
    if errors:
        raise InputError(errors)
    return filled


def _size_problem(data: Any) -> FieldError | None:
    # Depth first: json.dumps itself would recurse on a deep enough value.
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        return FieldError("", f"The input is nested more than {MAX_DEPTH} levels deep.")
    try:
        encoded = json.dumps(data, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return FieldError(
            "",
            "The input must be plain JSON data: text, numbers, true or false, "
            "lists and objects.",
        )
    size = len(encoded.encode())
    if size > MAX_INPUT_BYTES:
        return FieldError(
            "",
            f"The input is {size:,} bytes long; at most {MAX_INPUT_BYTES:,} bytes "
            "are accepted.",
        )
    return None


def _dotted(path: Path) -> str:
    return ".".join(str(segment) for segment in path)


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a set of fields",
    "null": "empty",
}

_FORMAT_WORDS = {
    "email": "an email address",
    "idn-email": "an email address",
    "uri": "a full web address such as https://example.com",
    "iri": "a full web address such as https://example.com",
    "uri-reference": "a web address or path",
    "iri-reference": "a web address or path",
    "date": "a date such as 2026-12-31",
    "date-time": "a date and time such as 2026-12-31T09:30:00Z",
    "time": "a time of day such as 09:30:00Z",
    "duration": "a duration such as P3D",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "hostname": "a host name",
    "idn-hostname": "a host name",
    "uuid": "a UUID",
    "regex": "a regular expression",
    "json-pointer": "a JSON pointer",
    "relative-json-pointer": "a relative JSON pointer",
    "uri-template": "a URI template",
}


class _Describer:
    """Turns jsonschema's errors into (path, message) pairs for one input."""

    def __init__(self, schema: Schema | bool, data: Any) -> None:
        self.root = schema
        self.data = data
        self.handlers = self._handlers()

    def describe(self, error: ValidationError) -> list[tuple[Path, str]]:
        path: Path = tuple(error.absolute_path)
        keyword = error.validator
        handler = self.handlers.get(str(keyword))
        if handler is not None:
            return handler(error, path)
        if keyword is None:  # a `false` schema: nothing is allowed there
            return self._false_schema(error, path)
        return [(path, f"{self.subject(path)} is not valid ({keyword}).")]

    def _handlers(
        self,
    ) -> dict[str, Callable[[ValidationError, Path], list[tuple[Path, str]]]]:
        return {
            "required": self._required,
            "dependentRequired": self._dependent_required,
            "type": self._type,
            "format": self._format,
            "enum": self._choice,
            "const": self._const,
            "oneOf": self._branches,
            "anyOf": self._branches,
            "pattern": self._pattern,
            "additionalProperties": self._extra_fields,
            "unevaluatedProperties": self._extra_fields,
            "minimum": self._bound("must be at least"),
            "maximum": self._bound("must be at most"),
            "exclusiveMinimum": self._bound("must be more than"),
            "exclusiveMaximum": self._bound("must be less than"),
            "multipleOf": self._bound("must be a multiple of"),
            "minLength": self._min_length,
            "maxLength": self._max_length,
            "minItems": self._count("needs at least {n} {entries}"),
            "maxItems": self._count("can have at most {n} {entries}"),
            "minProperties": self._count("needs at least {n} {fields}"),
            "maxProperties": self._count("can have at most {n} {fields}"),
            "uniqueItems": self._fixed("lists the same entry more than once"),
            "contains": self._fixed("does not include an entry it needs"),
            "minContains": self._fixed(
                "does not include enough of the entries it needs"
            ),
            "maxContains": self._fixed("includes too many entries of one kind"),
            "propertyNames": self._fixed("has a field whose name is not allowed"),
            "not": self._fixed("has a value that is not allowed"),
        }

    # --- naming -----------------------------------------------------------------

    def node(self, path: Sequence[str | int]) -> Schema:
        return schema_at(self.root, list(path)) or {}

    def subject(self, path: Sequence[str | int]) -> str:
        """The field as a sentence names it: its title, else `Field 'a.b'`."""
        if not path:
            return "The input"
        last = path[-1]
        title = self.node(path).get("title")
        if isinstance(title, str) and title.strip():
            if isinstance(last, int):
                return f"{title.strip()} {last + 1}"
            return title.strip()

        if isinstance(last, int):
            parent = self.subject(path[:-1])
            if parent.startswith("Field '"):
                parent = "f" + parent[1:]
            return f"Item {last + 1} of {parent}"
        return f"Field '{_dotted(tuple(path))}'"

    def shown(self, path: Path, value: Any) -> str:
        """', got …' naming the bad value, or nothing for a secret field."""
        if is_secret(self.node(path)):
            return ""
        if isinstance(value, str):
            text = value if len(value) <= 40 else value[:39] + "…"
            return f", got '{text}'"
        if isinstance(value, list):
            return ", got a list"
        if isinstance(value, dict):
            return ", got a set of fields"
        if value is None:
            return ", got nothing"
        return f", got {scalar_text(value)}"

    def choice_list(self, path: Path, allowed: list[Any]) -> str:
        options = choices(self.node(path), self.root)
        labels = dict((scalar_text(value), label) for value, label in options or [])
        names = [
            labels.get(scalar_text(value), scalar_text(value)) for value in allowed
        ]
        if len(names) > _MAX_LISTED_CHOICES:
            return "one of the offered choices"
        return "one of: " + ", ".join(names)

    # --- keywords ---------------------------------------------------------------

    def _required(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        instance = error.instance if isinstance(error.instance, dict) else {}
        return [
            ((*path, key), f"{self.subject((*path, key))} is required.")
            for key in error.validator_value
            if key not in instance
        ]

    def _dependent_required(
        self, error: ValidationError, path: Path
    ) -> list[tuple[Path, str]]:
        instance = error.instance if isinstance(error.instance, dict) else {}
        found = []
        for trigger, needed in error.validator_value.items():
            if trigger not in instance:
                continue
            for key in needed:
                if key not in instance:
                    found.append(
                        (
                            (*path, key),
                            f"{self.subject((*path, key))} is required when "
                            f"{self.subject((*path, trigger))} is given.",
                        )
                    )
        return found

    def _type(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        allowed = error.validator_value
        kinds = [allowed] if isinstance(allowed, str) else list(allowed)
        return [(path, self._expected(path, kinds, error.instance))]

    def _expected(self, path: Path, kinds: list[str], value: Any) -> str:
        words = [_TYPE_WORDS.get(kind, kind) for kind in kinds]
        expected = " or ".join(dict.fromkeys(words))
        return f"{self.subject(path)} must be {expected}{self.shown(path, value)}."

    def _format(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        fmt = str(error.validator_value)
        expected = _FORMAT_WORDS.get(fmt, f"in the {fmt} format")
        shown = self.shown(path, error.instance)
        return [(path, f"{self.subject(path)} must be {expected}{shown}.")]

    def _choice(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        allowed = list(error.validator_value)
        return [
            (path, f"{self.subject(path)} must be {self.choice_list(path, allowed)}.")
        ]

    def _const(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        label = self.choice_list(path, [error.validator_value]).removeprefix("one of: ")
        return [(path, f"{self.subject(path)} must be {label}.")]

    def _branches(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        branches = [resolve(branch, self.root) for branch in error.validator_value]
        subject = self.subject(path)
        if not error.context:
            return [(path, f"{subject} fits more than one of the accepted forms.")]
        if all("const" in branch for branch in branches):
            allowed = [branch["const"] for branch in branches]
            return [(path, f"{subject} must be {self.choice_list(path, allowed)}.")]

        # When every branch failed only on its type, say which types would do.
        if all(sub.validator == "type" for sub in error.context):
            kinds: list[str] = []
            for sub in error.context:
                allowed = sub.validator_value
                kinds += [allowed] if isinstance(allowed, str) else list(allowed)
            return [(path, self._expected(path, kinds, error.instance))]
        return [(path, f"{subject} does not fit any of the accepted forms.")]

    def _pattern(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        node = self.node(path)
        explanation = node.get("description")
        examples = node.get("examples")
        if not explanation and isinstance(examples, list) and examples:
            explanation = f"for example {scalar_text(examples[0])}"
        detail = f" ({explanation})" if explanation else ""
        shown = self.shown(path, error.instance)
        message = f"{self.subject(path)} does not match the expected format{detail}"
        return [(path, f"{message}{shown}.")]

    def _extra_fields(
        self, error: ValidationError, path: Path
    ) -> list[tuple[Path, str]]:
        node = self.node(path)
        instance = error.instance if isinstance(error.instance, dict) else {}
        known = node.get("properties") or {}
        patterns = list((node.get("patternProperties") or {}).keys())
        extra = [
            key
            for key in instance
            if key not in known and not any(_matches(p, key) for p in patterns)
        ]
        names = ", ".join(f"'{key}'" for key in extra) or "some fields"
        return [(path, f"{self.subject(path)} has fields it does not accept: {names}.")]

    def _bound(
        self, phrase: str
    ) -> Callable[[ValidationError, Path], list[tuple[Path, str]]]:
        def describe(error: ValidationError, path: Path) -> list[tuple[Path, str]]:
            limit = scalar_text(error.validator_value)
            return [(path, f"{self.subject(path)} {phrase} {limit}.")]

        return describe

    def _min_length(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        limit = error.validator_value
        if limit == 1:
            return [(path, f"{self.subject(path)} must not be empty.")]
        return [
            (path, f"{self.subject(path)} must be at least {limit} characters long.")
        ]

    def _max_length(self, error: ValidationError, path: Path) -> list[tuple[Path, str]]:
        limit = error.validator_value
        length = len(error.instance) if isinstance(error.instance, str) else 0
        return [
            (
                path,
                f"{self.subject(path)} must be at most {limit} characters long "
                f"(it has {length}).",
            )
        ]

    def _count(
        self, template: str
    ) -> Callable[[ValidationError, Path], list[tuple[Path, str]]]:
        def describe(error: ValidationError, path: Path) -> list[tuple[Path, str]]:
            n = error.validator_value
            words = template.format(
                n=n,
                entries="entry" if n == 1 else "entries",
                fields="field" if n == 1 else "fields",
            )
            return [(path, f"{self.subject(path)} {words}.")]

        return describe

    def _fixed(
        self, phrase: str
    ) -> Callable[[ValidationError, Path], list[tuple[Path, str]]]:
        def describe(error: ValidationError, path: Path) -> list[tuple[Path, str]]:
            return [(path, f"{self.subject(path)} {phrase}.")]

        return describe

    def _false_schema(
        self, error: ValidationError, path: Path
    ) -> list[tuple[Path, str]]:
        # jsonschema reports a property whose schema is `false` at the parent's
        # path; find the offending keys from the parent's schema.
        parent = _value_at(self.data, path)
        properties = self.node(path).get("properties") or {}
        if isinstance(parent, dict):
            keys = [k for k, s in properties.items() if s is False and k in parent]
            if keys:
                return [
                    ((*path, key), f"{self.subject((*path, key))} is not allowed.")
                    for key in keys
                ]
        return [(path, f"{self.subject(path)} has a value that is not allowed.")]

    # --- order ------------------------------------------------------------------

    def sort_key(self, path: Path) -> tuple[int, ...]:
        """Position of a field in the schema's property order, level by level."""
        key = []
        node = resolve(self.root, self.root)
        for segment in path:
            if isinstance(segment, int):
                key.append(segment)
                node = item_schema(node, segment, self.root)
                continue
            properties = node.get("properties")
            names = list(properties) if isinstance(properties, dict) else []
            key.append(names.index(segment) if segment in names else len(names))
            child = properties.get(segment, {}) if isinstance(properties, dict) else {}
            node = resolve(child, self.root)
        return tuple(key)


def _matches(pattern: str, key: str) -> bool:
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return False


def _value_at(data: Any, path: Path) -> Any:
    for segment in path:
        found = (isinstance(data, dict) and segment in data) or (
            isinstance(data, list) and isinstance(segment, int) and segment < len(data)
        )
        if not found:
            return None
        data = data[segment]
    return data
