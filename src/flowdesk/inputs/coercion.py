"""Read flow input from name/value pairs, and write input back as such pairs.

A link's query parameters, a posted launch form and `flowdesk run --input
key=value` all arrive as pairs of strings; `coerce_params` turns them into input
data by the flow's input schema, so a value means the same wherever it was typed.
The rules, by the schema of the field a name refers to:

- string: as typed. integer and number: decimal notation (`5`, `-2`, `9.5`,
  `1e3`). boolean: `true false 1 0 yes no on off`, in any case. null, where the
  schema allows it: `null`.
- A value that cannot be converted is kept as typed (`items=five` stays
  `"five"`), so validation can say beside the field what is wrong with it.
- Empty means not given: an empty value leaves the key out, for every type, so
  that `required` reports a blank field. For types other than string a value of
  only spaces is empty too.
- A name given more than once keeps its last value (the form posts a hidden
  `false` before a checkbox's `true`, so an unchecked box reads as false).
- Arrays, items converted by `items`: a single value may be a list
  (`tags=a,b`, `tags=["a","b"]`); a repeated name gives one item per value
  (`tags=a&tags=b,c` is `["a", "b,c"]`); positions work too (`tags.0=a`,
  `lines.0.sku=A`). The value `[]` on its own is an empty array, and among
  repeated values it adds nothing: the form sends it before a list's entries, so
  a list emptied on the form stays empty and one entry holding a comma is not
  split. Blank items are dropped, and so are untouched entries of an array of
  objects (see below).
- Objects: dotted names at any depth (`address.city=Berlin`) or JSON
  (`address={"city":"Berlin"}`); both together merge, dotted names winning. An
  object given by dotted names that holds nothing, or only the `false` and `[]`
  that a form group posts when nobody typed into it, is left out (an entry of an
  array of objects is dropped), unless its parent requires it: then it is kept,
  `{}` when all blank, so that validation names the missing fields inside it.
- format date-time and time without a UTC offset (what `<input
  type="datetime-local">` and `<input type="time">` post, `2026-12-03T10:30`)
  get seconds when missing and `Z`: a date and time typed into the form is read
  as UTC. Values with an offset are kept as typed.
- Untyped fields (no `type`, `enum` or structure): JSON when the value parses as
  JSON, else the text. Without a `type`, `enum` and `const` values are matched by
  their text.
- Names the schema does not know are ignored at every depth, in dotted names
  and inside JSON values alike, so old links keep working; an object with an
  `additionalProperties` schema (or `true`) keeps unknown keys. `start_flow` and
  names starting with `_` (form controls such as `_csrf`, `_action`) are
  reserved and ignored.

`to_params` writes data back in this form, canonically: scalars as text, arrays
of scalars as repeated names (JSON when an item would not read back alone),
objects as dotted names (JSON when those would read as an untouched group),
arrays of objects by position, an empty array as `[]`, null as `null`. Reading
its output gives the data back, except what a pair cannot carry on purpose:
empty strings (they mean not given), keys the schema does not know, and fields
marked `writeOnly` or `format: password`, which are never written into a link.

The schema helpers at the end (`resolve`, `schema_types`, `choices`,
`schema_at`, `scalar_text`) are shared with validation and the form model.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote

from flowdesk.errors import FieldError, InputError

logger = logging.getLogger(__name__)

RESERVED_PARAMS = frozenset({"start_flow"})

# Limits that keep a hostile link from costing memory or time: `lines.99999999.sku`
# must not allocate a hundred million entries, nor a thousand dots recurse.
MAX_PARAMS = 1000
MAX_INDEX = 1000
MAX_DEPTH = 32

Schema = dict[str, Any]


class _Missing:
    """The reading of a field that was not given at all (not even as null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Param(NamedTuple):
    name: str  # the name as sent, for messages
    rest: tuple[str, ...]  # its segments below the field being read
    raw: str


# --- reading pairs -------------------------------------------------------------


def coerce_params(
    schema: Schema | bool, params: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """Input data read from name/value pairs by the rules in the module docstring.

    Raises InputError when the pairs exceed the limits (too many, too deep, an
    array position too large).
    """
    collected = _collect(params)
    node = resolve(schema, schema)
    data = _read_object(node, collected, "", schema, required=True)
    return data if isinstance(data, dict) else {}


def parse_cli_inputs(
    schema: Schema | bool, pairs: Sequence[str], json_text: str | None = None
) -> dict[str, Any]:
    """Input data from `--json` (taken as given) overlaid with `--input key=value`
    pairs, which are read like URL parameters."""
    data: dict[str, Any] = {}
    if json_text is not None:
        data = _parse_cli_json(json_text)

    split_pairs = []
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InputError(
                [FieldError("", f"--input '{pair}' must have the form key=value.")]
            )
        split_pairs.append((key, value))

    merged: dict[str, Any] = _merge(data, coerce_params(schema, split_pairs))
    return merged


def _parse_cli_json(json_text: str) -> dict[str, Any]:
    try:
        data = json.loads(json_text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise InputError(
            [
                FieldError(
                    "",
                    f"--json is not valid JSON: {error.msg} at line {error.lineno}, "
                    f"column {error.colno}.",
                )
            ]
        ) from None
    except ValueError as error:  # NaN or Infinity, which JSON does not have
        raise InputError(
            [FieldError("", f"--json is not valid JSON: {error}.")]
        ) from None
    except RecursionError:
        raise InputError([_too_deep_json("--json")]) from None

    if not isinstance(data, dict):
        raise InputError(
            [FieldError("", f"--json must be a JSON object, got {json_text[:40]!r}.")]
        )
    _check_depth(data, "--json")
    return data


def _collect(params: Iterable[tuple[str, str]]) -> list[_Param]:
    collected = []
    for count, (name, raw) in enumerate(params, start=1):
        if count > MAX_PARAMS:
            raise InputError(
                [
                    FieldError(
                        "",
                        f"The input has more than {MAX_PARAMS} parameters; "
                        f"send at most {MAX_PARAMS}.",
                    )
                ]
            )
        if name in RESERVED_PARAMS or name.startswith("_"):
            continue

        segments = tuple(name.split("."))
        if len(segments) > MAX_DEPTH:
            raise InputError(
                [
                    FieldError(
                        name,
                        f"Parameter '{name[:80]}' is nested {len(segments)} levels "
                        f"deep; at most {MAX_DEPTH} levels are accepted.",
                    )
                ]
            )
        collected.append(_Param(name, segments, raw))
    return collected


def _read(
    node: Schema, params: list[_Param], path: str, root: Any, *, required: bool
) -> Any:
    types = schema_types(node, root)
    if "object" in types:
        return _read_object(node, params, path, root, required=required)
    if "array" in types:
        return _read_array(node, params, path, root)
    return _read_scalar(node, params, root)


def _read_scalar(node: Schema, params: list[_Param], root: Any) -> Any:
    # Dotted names below a scalar field mean nothing to it, like unknown names.
    direct = [param.raw for param in params if not param.rest]
    if not direct or _is_blank(direct[-1], node, root):
        return MISSING
    return convert_scalar(node, direct[-1], root)


def _read_object(
    node: Schema, params: list[_Param], path: str, root: Any, *, required: bool
) -> Any:
    direct = [p.raw for p in params if not p.rest and p.raw.strip()]
    nested = [p for p in params if p.rest]

    data: dict[str, Any] = {}
    if direct:
        raw = direct[-1]
        if raw.strip() == "null" and "null" in schema_types(node, root) and not nested:
            return None
        parsed = _parse_json(raw, path)
        if not isinstance(parsed, dict):
            return raw  # kept as typed: validation says it is not an object
        data = _prune(node, parsed, root, depth=path.count(".") + 1)

    required_keys = _required(node)
    for key, child, child_params in _group_by_property(node, nested, root):
        child_path = f"{path}.{key}" if path else key
        value = _read(
            child, child_params, child_path, root, required=key in required_keys
        )
        if value is not MISSING:
            data[key] = _merge(data.get(key), value)

    if direct or required or not _untouched(data):
        return data
    return MISSING


def _untouched(value: Any) -> bool:
    """Whether a value read from dotted names holds only what a form group posts
    when nobody typed into it: false from its checkboxes, [] from its lists."""
    if isinstance(value, dict):
        return all(_untouched(item) for item in value.values())
    return value is False or value == []


def _read_array(node: Schema, params: list[_Param], path: str, root: Any) -> Any:
    first_item = item_schema(node, 0, root)
    direct = [
        p for p in params if not p.rest and not _is_blank(p.raw, first_item, root)
    ]
    nested = [p for p in params if p.rest]
    items: list[Any] = []

    if len(direct) == 1:
        single = direct[0].raw
        if single.strip() == "null" and "null" in schema_types(node, root):
            if not nested:
                return None
        else:
            items.extend(_read_single_array_value(node, direct[0], path, root))
    else:
        # A repeated name is one item per value; `[]` only says "the list is here".
        for param in direct:
            if param.raw.strip() != "[]":
                _append_item(items, node, param, path, root)

    for index, entry_params in _group_by_index(nested):
        item_node = item_schema(node, len(items), root)
        item = _read(item_node, entry_params, f"{path}.{index}", root, required=False)
        if item is not MISSING:
            items.append(item)

    if not direct and not items:
        return MISSING
    return items


def _read_single_array_value(
    node: Schema, param: _Param, path: str, root: Any
) -> list[Any]:
    raw = param.raw
    if raw.lstrip().startswith("["):
        parsed = _parse_json(raw, path)
        if isinstance(parsed, list):
            _check_length(len(parsed), param)
            return [
                _prune(item_schema(node, i, root), item, root, path.count(".") + 2)
                for i, item in enumerate(parsed)
            ]
        return [raw]  # not JSON after all: one item, as typed

    items: list[Any] = []
    item_types = schema_types(item_schema(node, 0, root), root)
    if "," in raw and not {"object", "array"} & set(item_types):
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        _check_length(len(parts), param)
        for part in parts:
            _append_item(items, node, param._replace(raw=part), path, root)
    else:
        _append_item(items, node, param, path, root)
    return items


def _check_length(length: int, param: _Param) -> None:
    # The same bound as for positions, so no spelling of a list costs more.
    if length > MAX_INDEX + 1:
        raise InputError(
            [
                FieldError(
                    param.name,
                    f"Parameter '{param.name[:80]}' lists {length} entries; "
                    f"a list takes at most {MAX_INDEX + 1}.",
                )
            ]
        )


def _append_item(
    items: list[Any], node: Schema, param: _Param, path: str, root: Any
) -> None:
    item_node = item_schema(node, len(items), root)
    item = _read(
        item_node,
        [param._replace(rest=())],
        f"{path}.{len(items)}",
        root,
        required=False,
    )
    if item is not MISSING:
        items.append(item)


def _group_by_property(
    node: Schema, nested: list[_Param], root: Any
) -> list[tuple[str, Schema, list[_Param]]]:
    """The nested params of an object grouped by the property they belong to, in
    schema order, then unknown keys the schema accepts in the order they came."""
    properties = _properties(node)
    extra = _extra_schema(node)
    groups: dict[str, list[_Param]] = {}
    ignored = []

    for param in nested:
        key, rest = _match_property(properties, param.rest)
        if key is None:
            if extra is None:
                ignored.append(param.name)
                continue
            key, rest = param.rest[0], param.rest[1:]
        groups.setdefault(key, []).append(param._replace(rest=rest))

    if ignored:
        logger.debug("Ignored parameters the input schema does not know: %s", ignored)

    ordered = [key for key in properties if key in groups]
    ordered += [key for key in groups if key not in properties]
    result = []
    for key in ordered:
        child = properties.get(key, extra)
        result.append((key, resolve(child, root), groups[key]))
    return result


def _match_property(
    properties: dict[str, Any], segments: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...]]:
    # The longest match wins, so a property named "a.b" can still be addressed.
    for length in range(len(segments), 0, -1):
        key = ".".join(segments[:length])
        if key in properties:
            return key, segments[length:]
    return None, segments


def _group_by_index(nested: list[_Param]) -> list[tuple[int, list[_Param]]]:
    groups: dict[int, list[_Param]] = {}
    for param in nested:
        segment = param.rest[0]
        if not (segment.isascii() and segment.isdigit()):
            continue  # not a position: nothing an array knows
        if len(segment) > len(str(MAX_INDEX)) or int(segment) > MAX_INDEX:
            raise InputError(
                [
                    FieldError(
                        param.name,
                        f"Parameter '{param.name[:80]}' uses position {segment[:12]}; "
                        f"positions go up to {MAX_INDEX}.",
                    )
                ]
            )
        groups.setdefault(int(segment), []).append(param._replace(rest=param.rest[1:]))
    return sorted(groups.items())


def convert_scalar(node: Schema, raw: str, root: Any) -> Any:
    """One value converted to the scalar type its schema declares, else as typed."""
    declared = node.get("type")
    options = choices(node, root)
    if declared is None and options is not None:
        return _match_choice(options, raw)

    types = schema_types(node, root)
    if not types:
        return _read_untyped(raw)

    text = raw.strip()
    if "null" in types and text == "null":
        return None
    for kind in ("boolean", "integer", "number"):
        if kind in types:
            converted = _SCALAR_READERS[kind](text)
            if converted is not MISSING:
                return converted

    if "string" in types:
        if len(types) > 1 and text.startswith('"'):
            # With a type list a string that looks like another type is written
            # as JSON by to_params; read it back the same way.
            quoted = _parse_json(text, "")
            if isinstance(quoted, str):
                return quoted
        return _normalise_time(node, raw)
    return raw


def _read_boolean(text: str) -> Any:
    return _BOOLEAN_WORDS.get(text.lower(), MISSING)


_BOOLEAN_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}

_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _read_integer(text: str) -> Any:
    if not _INTEGER.fullmatch(text):
        return MISSING
    try:
        return int(text.split(".")[0])
    except ValueError:  # more digits than Python converts safely
        return MISSING


def _read_number(text: str) -> Any:
    if not _NUMBER.fullmatch(text):
        return MISSING
    if _INTEGER.fullmatch(text) and "." not in text:
        try:
            return int(text)
        except ValueError:
            pass
    number = float(text)
    return number if math.isfinite(number) else MISSING


_SCALAR_READERS = {
    "boolean": _read_boolean,
    "integer": _read_integer,
    "number": _read_number,
}

_LOCAL_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?"
)
_LOCAL_TIME = re.compile(r"(\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?")


def _normalise_time(node: Schema, raw: str) -> str:
    pattern = {"date-time": _LOCAL_DATE_TIME, "time": _LOCAL_TIME}.get(
        node.get("format", "")
    )
    match = pattern.fullmatch(raw.strip()) if pattern else None
    if match is None:
        return raw

    if node["format"] == "date-time":
        date, hours_minutes, seconds = match.groups()
        return f"{date}T{hours_minutes}{seconds or ':00'}Z"
    hours_minutes, seconds = match.groups()
    return f"{hours_minutes}{seconds or ':00'}Z"


def _match_choice(options: list[tuple[Any, str]], raw: str) -> Any:
    for stripped in (raw, raw.strip()):
        for value, _label in options:
            if scalar_text(value) == stripped:
                return value

    parsed = _parse_json(raw, "") if raw.strip()[:1] in '[{"' else MISSING
    for value, _label in options:
        if parsed is not MISSING and same_value(parsed, value):
            return value
    return raw


def _read_untyped(raw: str) -> Any:
    parsed = _parse_json(raw, "")
    return raw if parsed is MISSING else parsed


def _is_blank(raw: str, node: Schema, root: Any) -> bool:
    if "string" in schema_types(node, root):
        return raw == ""
    return raw.strip() == ""


def _parse_json(raw: str, path: str) -> Any:
    """The JSON value in raw, or MISSING when it is not JSON."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return MISSING
    except RecursionError:
        raise InputError([_too_deep_json(path)]) from None
    _check_depth(value, path)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_depth(value: Any, path: str) -> None:
    if nesting_depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise InputError([_too_deep_json(path)])


def _too_deep_json(path: str) -> FieldError:
    where = f"The JSON value of '{path}'" if path else "The JSON value"
    return FieldError(path, f"{where} is nested more than {MAX_DEPTH} levels deep.")


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in value, counting stops past limit."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        if isinstance(current, dict):
            stack.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            stack.extend((item, depth + 1) for item in current)
    return deepest


def _prune(node: Schema, value: Any, root: Any, depth: int) -> Any:
    """A JSON-carried value with the keys the schema does not know removed."""
    if depth > MAX_DEPTH:
        return value
    types = schema_types(node, root)

    if isinstance(value, dict) and "object" in types:
        properties = _properties(node)
        extra = _extra_schema(node)
        pruned = {}
        for key, item in value.items():
            child = properties.get(key, extra)
            if key in properties or extra is not None:
                pruned[key] = _prune(resolve(child, root), item, root, depth + 1)
        return pruned

    if isinstance(value, list) and "array" in types:
        return [
            _prune(item_schema(node, i, root), item, root, depth + 1)
            for i, item in enumerate(value)
        ]
    return value


def _merge(base: Any, update: Any) -> Any:
    if isinstance(base, dict) and isinstance(update, dict):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return update


# --- writing pairs -------------------------------------------------------------


def to_params(schema: Schema | bool, data: dict[str, Any]) -> list[tuple[str, str]]:
    """Name/value pairs that coerce_params reads back as data (see the module
    docstring for what a pair cannot carry)."""
    pairs: list[tuple[str, str]] = []
    _write_fields(resolve(schema, schema), data, "", schema, pairs, depth=0)
    return pairs


def _write_fields(
    node: Schema,
    data: dict[str, Any],
    prefix: str,
    root: Any,
    pairs: list[tuple[str, str]],
    depth: int,
) -> None:
    properties = _properties(node)
    extra = _extra_schema(node)
    keys = [key for key in properties if key in data]
    if extra is not None:
        keys += [key for key in data if key not in properties]

    for key in keys:
        child = resolve(properties.get(key, extra), root)
        name = f"{prefix}.{key}" if prefix else key
        _write(child, data[key], name, root, pairs, depth + 1)


def _write(
    node: Schema,
    value: Any,
    name: str,
    root: Any,
    pairs: list[tuple[str, str]],
    depth: int,
) -> None:
    if is_secret(node) or value == "":
        return
    if value is None:
        pairs.append((name, "null"))
        return

    types = schema_types(node, root)
    if isinstance(value, dict) and "object" in types and depth < MAX_DEPTH:
        _write_object(node, value, name, root, pairs, depth)
        return
    if isinstance(value, list) and "array" in types and depth < MAX_DEPTH:
        _write_array(node, value, name, root, pairs, depth)
        return

    text = scalar_text(value)
    if not _is_blank(text, node, root) and same_value(
        convert_scalar(node, text, root), value
    ):
        pairs.append((name, text))
    else:
        pairs.append((name, _json_text(value)))


def _write_object(
    node: Schema,
    value: dict[str, Any],
    name: str,
    root: Any,
    pairs: list[tuple[str, str]],
    depth: int,
) -> None:
    dotted: list[tuple[str, str]] = []
    _write_fields(node, value, name, root, dotted, depth)

    # Dotted names that read as an untouched form group would mean "not given";
    # as JSON the object stays. The JSON is what the dotted names say, so it
    # leaves out what they leave out (secrets, empty strings, unknown keys).
    params = [
        _Param(key, tuple(key[len(name) + 1 :].split(".")), raw) for key, raw in dotted
    ]
    kept = _read_object(node, params, name, root, required=True)
    if _untouched(kept):
        pairs.append((name, _json_text(kept)))
    else:
        pairs.extend(dotted)


def _write_array(
    node: Schema,
    items: list[Any],
    name: str,
    root: Any,
    pairs: list[tuple[str, str]],
    depth: int,
) -> None:
    if not items:
        pairs.append((name, "[]"))
        return

    item_node = item_schema(node, 0, root)
    item_types = schema_types(item_node, root)
    if (
        "prefixItems" not in node
        and "object" in item_types
        and all(isinstance(item, dict) for item in items)
    ):
        for index, item in enumerate(items):
            _write(item_node, item, f"{name}.{index}", root, pairs, depth + 1)
        return

    texts = [scalar_text(item) for item in items]
    if "prefixItems" not in node and all(
        _reads_back_as_item(item_node, text, item, root, alone=len(items) == 1)
        for text, item in zip(texts, items, strict=True)
    ):
        pairs.extend((name, text) for text in texts)
    else:
        pairs.append((name, _json_text(items)))


def _reads_back_as_item(
    item_node: Schema, text: str, item: Any, root: Any, *, alone: bool
) -> bool:
    types = schema_types(item_node, root)
    if not types and choices(item_node, root) is None:
        return False  # untyped items: JSON says exactly what they are
    if {"object", "array"} & set(types) or _is_blank(text, item_node, root):
        return False
    if text.strip() in ("[]", "null"):
        return False
    if alone and ("," in text or text.lstrip().startswith("[")):
        return False
    return same_value(convert_scalar(item_node, text, root), item)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- schema helpers shared with validation and the form model ------------------


def resolve(schema: Any, root: Any, depth: int = 0) -> Schema:
    """schema as one dict: local `$ref`s followed (siblings override the target)
    and `allOf` parts merged in. `true`, unresolvable refs and loops read as `{}`,
    which accepts anything; `false` as `{"not": {}}`."""
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return {}

    merged = schema
    while isinstance(merged.get("$ref"), str):
        depth += 1
        target = _follow_ref(root, merged["$ref"]) if depth <= MAX_DEPTH else None
        if not isinstance(target, dict):
            logger.debug("Could not follow $ref %s in an input schema", merged["$ref"])
            target = {}
        siblings = {key: value for key, value in merged.items() if key != "$ref"}
        merged = {**target, **siblings}

    parts = merged.get("allOf")
    if isinstance(parts, list):
        merged = {key: value for key, value in merged.items() if key != "allOf"}
        for part in parts:
            merged = _merge_part(merged, resolve(part, root, depth + 1))
    return merged


def _merge_part(own: Schema, part: Schema) -> Schema:
    merged = dict(own)
    for key, value in part.items():
        if key == "properties" and isinstance(value, dict):
            merged["properties"] = {**value, **own.get("properties", {})}
        elif key == "required" and isinstance(value, list):
            merged["required"] = list(dict.fromkeys([*value, *own.get("required", [])]))
        else:
            merged.setdefault(key, value)
    return merged


def _follow_ref(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None  # only references inside the schema itself are followed
    pointer = unquote(ref[1:])
    if pointer == "":
        return root
    if not pointer.startswith("/"):
        return None

    node = root
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def schema_types(node: Schema, root: Any) -> tuple[str, ...]:
    """The JSON types a resolved schema accepts, declared or inferred from its
    choices or structure; () when it says nothing (anything goes)."""
    declared = node.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(kind for kind in declared if isinstance(kind, str))

    options = choices(node, root)
    if options is not None:
        return tuple(dict.fromkeys(json_type(value) for value, _label in options))
    if any(key in node for key in ("properties", "additionalProperties", "required")):
        return ("object",)
    if "items" in node or "prefixItems" in node:
        return ("array",)

    branches = node.get("oneOf") or node.get("anyOf")
    if isinstance(branches, list):
        kinds: dict[str, None] = {}
        for branch in branches:
            branch_types = schema_types(resolve(branch, root), root)
            if not branch_types:
                return ()
            kinds.update(dict.fromkeys(branch_types))
        return tuple(kinds)
    return ()


def choices(node: Schema, root: Any) -> list[tuple[Any, str]] | None:
    """(value, label) for each value a choice schema allows, None when it is not
    one: `enum`, `const`, or `oneOf`/`anyOf` whose branches are all `const` (their
    `title` is the label)."""
    enum = node.get("enum")
    if isinstance(enum, list):
        return [(value, scalar_text(value)) for value in enum]
    if "const" in node:
        return [(node["const"], scalar_text(node["const"]))]

    branches = node.get("oneOf") or node.get("anyOf")
    if isinstance(branches, list) and branches:
        resolved = [resolve(branch, root) for branch in branches]
        if all("const" in branch for branch in resolved):
            return [
                (
                    branch["const"],
                    str(branch.get("title") or scalar_text(branch["const"])),
                )
                for branch in resolved
            ]
    return None


def schema_at(root: Any, path: Sequence[str | int]) -> Schema | None:
    """The resolved schema for the field at a path, None when the schema has no
    such field."""
    node = resolve(root, root)
    for segment in path:
        types = schema_types(node, root)
        if isinstance(segment, int) or (
            "array" in types and str(segment).isdigit() and "object" not in types
        ):
            if "array" not in types:
                return None
            node = item_schema(node, int(segment), root)
            continue

        properties = _properties(node)
        child = properties.get(str(segment), _extra_schema(node))
        if str(segment) not in properties and child is None:
            return None
        node = resolve(child, root)
    return node


def item_schema(node: Schema, index: int, root: Any) -> Schema:
    """The resolved schema of the item at index of an array schema."""
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and index < len(prefix):
        return resolve(prefix[index], root)
    return resolve(node.get("items", {}), root)


def _properties(node: Schema) -> dict[str, Any]:
    properties = node.get("properties")
    return properties if isinstance(properties, dict) else {}


def _required(node: Schema) -> set[str]:
    required = node.get("required")
    return (
        {key for key in required if isinstance(key, str)}
        if isinstance(required, list)
        else set()
    )


def _extra_schema(node: Schema) -> Any:
    """The schema for keys an object does not name, None when they are ignored.

    Absent `additionalProperties` ignores them although JSON Schema would allow
    them: a field the form does not show should not arrive from a stale link.
    """
    extra = node.get("additionalProperties")
    if extra is True:
        return {}
    if isinstance(extra, dict):
        return extra
    return None


def is_secret(node: Schema) -> bool:
    """Whether a field's value must not be shown again or written into a link."""
    return node.get("writeOnly") is True or node.get("format") == "password"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def scalar_text(value: Any) -> str:
    """How a value is written as one parameter: `true`/`false`, numbers that read
    back equal (`repr` for floats), text as is, anything else as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return _json_text(value)


def same_value(left: Any, right: Any) -> bool:
    """JSON equality: unlike Python's, `true` is not `1`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            same_value(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            same_value(left[key], right[key]) for key in left
        )
    return type(left) is type(right) and bool(left == right)


# A recursive schema declares names without end, and one with two references
# to itself twice as many at every level (2**32 at MAX_DEPTH); past this many
# names, deeper properties are left out of the shape.
MAX_SHAPE_NAMES = 10_000


def declared_shape(schema: Schema | bool) -> dict[str, Any]:
    """The property names an input schema declares, nested for properties that
    are objects themselves: `{"customer": None, "address": {"city": None}}`."""
    budget = [MAX_SHAPE_NAMES]
    return _declared(resolve(schema, schema), schema, 0, budget)


def _declared(node: Schema, root: Any, depth: int, budget: list[int]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    if depth > MAX_DEPTH:
        return shape
    for name, child in _properties(node).items():
        if budget[0] <= 0:
            break
        budget[0] -= 1
        resolved = resolve(child, root, depth + 1)
        nested = None
        if _properties(resolved):
            nested = _declared(resolved, root, depth + 1, budget)
        shape[name] = nested
    return shape
