"""Property tests: input data survives being written as pairs (Copy Link, New
Inputs, rerun links) and being shown in the form and posted back."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowdesk.inputs import build_form, coerce_params, to_params, validate_input

from .posting import browser_pairs, posted_pairs, render

Schema = dict[str, Any]

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
# What a text box can hold: no control characters (a browser strips line breaks
# from <input type="text">) and no lone surrogates.
PRINTABLE = st.characters(exclude_categories=("Cc", "Cs"))
TRICKY_TEXT = st.sampled_from(
    [
        "a,b",
        "[x]",
        "[]",
        " [1,2] ",
        "{",
        '{"a":1}',
        "true",
        "5",
        "null",
        " ",
        "a.b",
        "é",
    ]
)

SCALAR_SCHEMAS = st.one_of(
    st.just({"type": "string"}),
    st.just({"type": "string", "title": "Text"}),
    st.just({"type": "integer"}),
    st.just({"type": "number"}),
    st.just({"type": "boolean"}),
    st.just({"type": "string", "format": "date"}),
    st.just({"type": "string", "format": "date-time"}),
    st.just({"type": "string", "format": "time"}),
    st.lists(
        st.one_of(st.text(PRINTABLE, min_size=1, max_size=4), TRICKY_TEXT),
        min_size=1,
        max_size=4,
        unique=True,
    ).map(lambda values: {"type": "string", "enum": values}),
    st.lists(st.integers(-3, 30), min_size=1, max_size=4, unique=True).map(
        lambda values: {"type": "integer", "enum": values}
    ),
)


def objects(children: st.SearchStrategy[Schema]) -> st.SearchStrategy[Schema]:
    def with_required(properties: dict[str, Schema]) -> st.SearchStrategy[Schema]:
        return st.sets(st.sampled_from(sorted(properties))).map(
            lambda required: {
                "type": "object",
                "properties": properties,
                "required": sorted(required),
            }
        )

    return st.dictionaries(NAMES, children, min_size=1, max_size=4).flatmap(
        with_required
    )


SCHEMAS = st.recursive(
    SCALAR_SCHEMAS,
    lambda children: st.one_of(
        children.map(lambda items: {"type": "array", "items": items}), objects(children)
    ),
    max_leaves=10,
)
ROOT_SCHEMAS = objects(SCHEMAS)


def untouched(value: Any) -> bool:
    """What an untouched form group posts reads as nothing (see coercion)."""
    if isinstance(value, dict):
        return all(untouched(item) for item in value.values())
    return value is False or value == []


def always_posted(schema: Schema) -> bool:
    """Fields the form posts even when empty: a checkbox's hidden false, and the
    [] before a list's entries."""
    if schema.get("type") == "boolean":
        return True
    return schema.get("type") == "array" and schema["items"].get("type") != "array"


def values(
    schema: Schema, *, form: bool, in_array: bool = False
) -> st.SearchStrategy[Any]:
    """Values valid for schema; with form=True only those a form can show and
    post back unchanged."""
    kind = schema.get("type")
    text = st.one_of(
        st.text(PRINTABLE if form else st.characters(), max_size=6), TRICKY_TEXT
    )

    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return st.dates().map(lambda d: d.isoformat())
        if fmt == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(
                lambda moment: (
                    moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
                )
            )
        if fmt == "time":
            return st.times().map(lambda t: t.isoformat(timespec="seconds") + "Z")
        if in_array and form:
            # A blank entry is dropped, and "[]" is the list marker.
            return text.filter(lambda s: s != "" and s.strip() != "[]")
        if in_array:
            return text
        return text.filter(lambda s: s != "")  # empty means not given
    if kind == "integer":
        return st.integers()
    if kind == "number":
        return st.one_of(
            st.integers(-(10**6), 10**6),
            st.floats(allow_nan=False, allow_infinity=False),
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return arrays(schema, form=form)
    return object_values(schema, form=form)


def arrays(schema: Schema, *, form: bool) -> st.SearchStrategy[list[Any]]:
    items = schema["items"]
    if form and "enum" in items:
        # Checkboxes post the ticked choices in the order they are shown.
        # A choice spelled "[]" would read as the list marker.
        options = [
            o for o in items["enum"] if not (isinstance(o, str) and o.strip() == "[]")
        ]
        if not options:
            return st.just([])
        return st.sets(st.sampled_from(options)).map(
            lambda chosen: [option for option in options if option in chosen]
        )
    item = values(items, form=form, in_array=True)
    if form and items.get("type") == "object":
        item = item.filter(lambda entry: not untouched(entry))  # dropped as blank
    return st.lists(item, max_size=3)


def object_values(schema: Schema, *, form: bool) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for key, child in schema["properties"].items():
        value = values(child, form=form)
        if key in schema["required"] or (form and always_posted(child)):
            required[key] = value
        elif form and child.get("type") == "object":
            # Left blank on the form it reads as not given, so when present it
            # must hold something.
            optional[key] = value.filter(lambda present: not untouched(present))
        else:
            optional[key] = value
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def schemas_with_values(
    draw: st.DrawFn, *, form: bool
) -> tuple[Schema, dict[str, Any]]:
    schema = draw(ROOT_SCHEMAS)
    return schema, draw(object_values(schema, form=form))


def same(left: Any, right: Any) -> bool:
    """Equality that, unlike Python's, tells true from 1 and 1 from "1"."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            same(left[k], right[k]) for k in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            same(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPERTY_SETTINGS
@given(schemas_with_values(form=False))
def test_to_params_round_trip_is_identity(case: tuple[Schema, dict[str, Any]]) -> None:
    schema, value = case
    assert validate_input(schema, value) == []

    read_back = coerce_params(schema, to_params(schema, value))

    assert read_back == value
    assert same(read_back, value)


@PROPERTY_SETTINGS
@given(schemas_with_values(form=True))
def test_form_round_trip_is_identity(case: tuple[Schema, dict[str, Any]]) -> None:
    schema, value = case
    form = build_form(schema, value)

    from_model = coerce_params(schema, posted_pairs(form))
    from_markup = coerce_params(schema, browser_pairs(render(form)))

    assert same(from_model, value)
    assert same(from_markup, value)


@PROPERTY_SETTINGS
@given(schemas_with_values(form=True))
def test_form_of_link_values_round_trip(case: tuple[Schema, dict[str, Any]]) -> None:
    # New Inputs: a run's inputs go into a link, the link fills the form, and
    # the form posts them back.
    schema, value = case
    from_link = coerce_params(schema, to_params(schema, value))
    form = build_form(schema, from_link)
    assert same(coerce_params(schema, posted_pairs(form)), value)
