"""The form model built from an input schema: widgets, values, errors, lists."""

from __future__ import annotations

from typing import Any

import pytest

from flowdesk.errors import FieldError
from flowdesk.inputs import (
    FormField,
    apply_form_action,
    build_form,
    coerce_params,
    validate_input,
)

from .posting import posted_pairs


def only_field(schema: dict[str, Any], value: Any = None, **given: Any) -> FormField:
    full = {"type": "object", "properties": {"f": schema}, **given}
    values = {} if value is None else {"f": value}
    (form_field,) = build_form(full, values).fields
    return form_field


@pytest.mark.parametrize(
    ("schema", "widget"),
    [
        ({"type": "string"}, "text"),
        ({"type": "string", "format": "email"}, "email"),
        ({"type": "string", "format": "uri"}, "url"),
        ({"type": "string", "format": "date"}, "date"),
        ({"type": "string", "format": "date-time"}, "datetime"),
        ({"type": "string", "format": "time"}, "time"),
        ({"type": "string", "format": "password"}, "password"),
        ({"type": "string", "writeOnly": True}, "password"),
        ({"type": "string", "maxLength": 500}, "textarea"),
        ({"type": "string", "x-multiline": True}, "textarea"),
        ({"type": "string", "contentMediaType": "text/plain"}, "textarea"),
        ({"type": "string", "maxLength": 200}, "text"),
        ({"type": "integer"}, "integer"),
        ({"type": ["integer", "null"]}, "integer"),
        ({"type": "number"}, "number"),
        ({"type": "boolean"}, "checkbox"),
        ({"enum": ["a", "b"]}, "select"),
        ({"type": "integer", "enum": [1, 2]}, "select"),
        ({"oneOf": [{"const": "a", "title": "A"}]}, "select"),
        ({"anyOf": [{"const": "a", "title": "A"}]}, "select"),
        ({"type": "array", "items": {"enum": ["a", "b"]}}, "checkboxes"),
        ({"type": "array", "items": {"type": "string"}}, "list"),
        ({"type": "array", "items": {"type": "number"}}, "list"),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, "group"),
        (
            {"type": "array", "items": {"type": "object", "properties": {"a": {}}}},
            "group_list",
        ),
        ({"type": "array", "items": {"type": "array"}}, "json"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "json"),
        ({}, "json"),
    ],
)
def test_build_form_widget_for_each_type(schema: dict[str, Any], widget: str) -> None:
    assert only_field(schema).widget == widget


def test_build_form_no_input() -> None:
    for schema in (True, {}, {"type": "object"}, {"type": "object", "properties": {}}):
        form = build_form(schema)
        assert form.no_input
        assert form.fields == []


def test_build_form_labels_hints_and_ids() -> None:
    schema = {
        "type": "object",
        "required": ["customer"],
        "properties": {
            "customer": {
                "type": "string",
                "title": "Customer name",
                "description": "As invoiced",
            },
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    customer, address = build_form(schema).fields
    assert (customer.name, customer.id, customer.label) == (
        "customer",
        "field-customer",
        "Customer name",
    )
    assert customer.hint == "As invoiced"
    assert customer.required
    (city,) = address.children
    assert (city.name, city.id, city.label, city.hint) == (
        "address.city",
        "field-address-city",
        "city",
        None,
    )


def test_build_form_ids_are_safe_and_unique() -> None:
    schema = {
        "type": "object",
        "properties": {"a b": {"type": "string"}, "a-b": {"type": "string"}, "<x>": {}},
    }
    ids = [form_field.id for form_field in build_form(schema).fields]
    assert ids == ["field-a-b", "field-a-b--2", "field-x"]


def test_build_form_values_from_data_else_default() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "integer", "default": 1},
            "customer": {"type": "string", "default": "ACME"},
        },
    }
    items, customer = build_form(schema, {"items": 5}).fields
    assert (items.value, items.text) == (5, "5")
    assert customer.value == "ACME"


def test_build_form_number_attributes() -> None:
    integer = only_field({"type": "integer", "minimum": 1, "maximum": 9})
    assert integer.attrs == {"step": "1", "min": "1", "max": "9"}
    number = only_field({"type": "number", "exclusiveMinimum": 0})
    assert number.attrs == {"step": "any"}
    stepped = only_field({"type": "number", "multipleOf": 0.5})
    assert stepped.attrs["step"] == "0.5"
    exclusive = only_field({"type": "integer", "exclusiveMinimum": 4})
    assert exclusive.attrs["min"] == "5"


def test_build_form_text_attributes() -> None:
    text = only_field(
        {
            "type": "string",
            "minLength": 2,
            "maxLength": 10,
            "pattern": "^[A-Z]+$",
            "examples": ["ACME"],
        }
    )
    assert text.attrs == {
        "minlength": "2",
        "maxlength": "10",
        "pattern": "[A-Z]+",
        "placeholder": "ACME",
    }
    # The schema's pattern may match anywhere, the HTML one must match it all.
    assert only_field({"type": "string", "pattern": "[0-9]"}).attrs["pattern"] == (
        ".*(?:[0-9]).*"
    )


def test_build_form_required_attribute_only_where_it_cannot_block() -> None:
    schema = {
        "type": "object",
        "required": ["name", "agree", "shipping"],
        "properties": {
            "name": {"type": "string"},
            "agree": {"type": "boolean"},
            "shipping": {
                "type": "object",
                "required": ["street"],
                "properties": {"street": {"type": "string"}},
            },
            "billing": {
                "type": "object",
                "required": ["street"],
                "properties": {"street": {"type": "string"}},
            },
        },
    }
    name, agree, shipping, billing = build_form(schema).fields
    assert "required" in name.attrs
    assert agree.required and "required" not in agree.attrs  # would force a tick
    assert "required" in shipping.children[0].attrs
    # An optional group's required field is marked, but may stay blank.
    assert billing.children[0].required
    assert "required" not in billing.children[0].attrs


def test_build_form_select_options_with_labels() -> None:
    select = only_field(
        {"oneOf": [{"const": 1, "title": "Low"}, {"const": 2, "title": "High"}]}, 2
    )
    assert select.options == [("", "(none)"), ("1", "Low"), ("2", "High")]
    assert select.selected == ["2"]


def test_build_form_select_blank_option_rule() -> None:
    def options(required: bool, default: bool) -> list[tuple[str, str]]:
        schema: dict[str, Any] = {"enum": ["a", "b"]}
        if default:
            schema["default"] = "a"
        given = {"required": ["f"]} if required else {}
        return only_field(schema, **given).options

    assert options(required=True, default=True) == [("a", "a"), ("b", "b")]
    assert options(required=True, default=False)[0] == ("", "Choose one")
    assert options(required=False, default=True)[0] == ("", "(none)")


def test_build_form_checkboxes_for_array_of_choices() -> None:
    field = only_field(
        {
            "type": "array",
            "items": {
                "oneOf": [
                    {"const": "r", "title": "Red"},
                    {"const": "g", "title": "Green"},
                ]
            },
        },
        ["g"],
    )
    assert field.options == [("r", "Red"), ("g", "Green")]
    assert field.selected == ["g"]


def test_build_form_list_entries_and_template() -> None:
    field = only_field({"type": "array", "items": {"type": "integer"}}, [3, 4])
    assert [(e.name, e.id, e.path, e.text, e.number) for e in field.children] == [
        ("f", "field-f-0", "f.0", "3", "1"),
        ("f", "field-f-1", "f.1", "4", "2"),
    ]
    template = field.item_template
    assert template is not None
    assert (template.name, template.id, template.path) == (
        "f",
        "field-f-__index__",
        "f.__index__",
    )
    assert template.widget == "integer"
    assert template.number == ""


def test_build_form_group_list_entries_and_template() -> None:
    field = only_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "title": "Line",
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "default": 1},
                },
            },
        },
        [{"sku": "A", "qty": 2}],
    )
    (entry,) = field.children
    assert (entry.name, entry.label, entry.widget) == ("f.0", "Line", "group")
    assert [(c.name, c.value) for c in entry.children] == [
        ("f.0.sku", "A"),
        ("f.0.qty", 2),
    ]
    template = field.item_template
    assert template is not None
    assert [(c.name, c.id, c.value) for c in template.children] == [
        ("f.__index__.sku", "field-f-__index__-sku", None),
        ("f.__index__.qty", "field-f-__index__-qty", 1),
    ]


def test_build_form_extra_items_add_blank_entries() -> None:
    schema = {
        "type": "object",
        "properties": {"f": {"type": "array", "items": {"type": "string"}}},
    }
    (field,) = build_form(schema, {"f": ["a"]}, extra_items={"f": 2}).fields
    assert [entry.value for entry in field.children] == ["a", None, None]


def test_build_form_list_of_booleans_uses_yes_no_choices() -> None:
    field = only_field({"type": "array", "items": {"type": "boolean"}}, [True])
    (entry,) = field.children
    assert entry.widget == "select"
    assert entry.selected == ["true"]
    assert entry.options == [("true", "Yes"), ("false", "No")]


def test_build_form_datetime_shown_in_the_inputs_format() -> None:
    schema = {"type": "string", "format": "date-time"}
    assert only_field(schema, "2026-12-03T10:30:00Z").text == "2026-12-03T10:30:00"
    assert only_field(schema, "2026-12-03T10:30:00+02:00").text == "2026-12-03T08:30:00"
    assert (
        only_field(schema, "2026-12-03T10:30:00.25Z").text == "2026-12-03T10:30:00.250"
    )
    assert (
        only_field({"type": "string", "format": "time"}, "23:30:00-01:00").text
        == "00:30:00"
    )


def test_build_form_datetime_round_trips_through_coercion() -> None:
    schema = {
        "type": "object",
        "properties": {"when": {"type": "string", "format": "date-time"}},
    }
    form = build_form(schema, {"when": "2026-12-03T10:30:00Z"})
    assert coerce_params(schema, posted_pairs(form)) == {"when": "2026-12-03T10:30:00Z"}


def test_build_form_secret_value_never_shown() -> None:
    field = only_field({"type": "string", "writeOnly": True}, "s3cret")
    assert field.value is None
    assert field.text == ""


def test_build_form_json_widget_shows_json() -> None:
    field = only_field({"type": "array", "items": {"type": "array"}}, [[1], []])
    assert field.text == "[\n  [\n    1\n  ],\n  []\n]"
    assert field.hint == "Enter the value as JSON."


def test_build_form_recursive_schema_ends_in_json() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "parent": {"$ref": "#/$defs/node"},
                },
            }
        },
        "properties": {"root": {"$ref": "#/$defs/node"}},
    }
    (root,) = build_form(schema).fields
    assert root.widget == "group"
    assert [(c.name, c.widget) for c in root.children] == [
        ("root.name", "text"),
        ("root.children", "json"),
        ("root.parent", "json"),
    ]


def test_build_form_deep_schema_keeps_names_within_the_limit() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        schema = {"type": "object", "properties": {"a": schema}}
    deepest = build_form(schema).fields[0]
    while deepest.children:
        deepest = deepest.children[0]
    assert deepest.widget == "json"
    assert len(deepest.name.split(".")) <= 32


def test_build_form_errors_beside_fields_and_in_summary() -> None:
    schema = {
        "type": "object",
        "required": ["customer"],
        "properties": {
            "customer": {"type": "string", "title": "Customer name"},
            "tags": {"type": "array", "title": "Tags", "items": {"type": "integer"}},
            "address": {
                "type": "object",
                "title": "Address",
                "properties": {"city": {"type": "string", "title": "City"}},
            },
        },
    }
    errors = [
        FieldError("", "The input is too large."),
        FieldError("tags.1", "Item 2 of Tags must be a whole number, got 'x'."),
        FieldError("customer", "Customer name is required."),
        FieldError("address.zip", "Address has fields it does not accept: 'zip'."),
    ]
    form = build_form(schema, {"tags": [1, "x"]}, errors)
    customer, tags, address = form.fields
    assert customer.error == "Customer name is required."
    assert tags.children[1].error == "Item 2 of Tags must be a whole number, got 'x'."
    assert address.error == "Address has fields it does not accept: 'zip'."
    assert form.errors == [
        ("", "", "The input is too large."),
        ("field-customer", "Customer name", "Customer name is required."),
        (
            "field-tags-1",
            "Tags, entry 2",
            "Item 2 of Tags must be a whole number, got 'x'.",
        ),
        ("field-address", "Address", "Address has fields it does not accept: 'zip'."),
    ]


def test_build_form_described_by_names_hint_and_error() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "description": "How many"}},
    }
    (field,) = build_form(schema, {}, [FieldError("n", "Bad.")]).fields
    assert field.described_by == "field-n-hint field-n-error"


def test_build_form_validation_errors_land_on_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sku"],
                    "properties": {
                        "sku": {"type": "string"},
                        "qty": {"type": "integer"},
                    },
                },
            }
        },
    }
    data = {"lines": [{"sku": "A"}, {"qty": 2}]}
    form = build_form(schema, data, validate_input(schema, data))
    (lines,) = form.fields
    assert lines.children[1].children[0].error == "Field 'lines.1.sku' is required."
    assert [entry_id for entry_id, _, _ in form.errors] == ["field-lines-1-sku"]


# --- Add and Remove without JavaScript ---------------------------------------------

LISTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string"}},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "parts": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
        "customer": {"type": "string"},
    },
}


def test_apply_form_action_add() -> None:
    data = {"tags": ["a"]}
    assert apply_form_action(LISTS, data, "add:tags") == ({"tags": ["a"]}, {"tags": 1})
    assert apply_form_action(LISTS, data, "add:lines.0.parts")[1] == {
        "lines.0.parts": 1
    }


def test_apply_form_action_remove() -> None:
    data = {
        "tags": ["a", "b", "c"],
        "lines": [{"sku": "A", "parts": [1, 2]}, {"sku": "B"}],
    }
    assert apply_form_action(LISTS, data, "remove:tags.1")[0]["tags"] == ["a", "c"]
    assert apply_form_action(LISTS, data, "remove:lines.0")[0]["lines"] == [
        {"sku": "B"}
    ]
    removed, _ = apply_form_action(LISTS, data, "remove:lines.0.parts.0")
    assert removed["lines"][0]["parts"] == [2]
    assert data["tags"] == ["a", "b", "c"]  # the given data is left as it was


@pytest.mark.parametrize(
    "action",
    [
        "",
        "add:",
        "add:customer",
        "remove:tags",
        "remove:tags.9",
        "remove:nope.0",
        "zap:tags",
    ],
)
def test_apply_form_action_ignores_what_names_no_list(action: str) -> None:
    data = {"tags": ["a"], "customer": "ACME"}
    assert apply_form_action(LISTS, data, action) == (data, {})


def test_apply_form_action_add_renders_a_blank_entry() -> None:
    data, extra = apply_form_action(LISTS, {"lines": [{"sku": "A"}]}, "add:lines")
    (_, lines, _) = build_form(LISTS, data, extra_items=extra).fields
    assert [entry.name for entry in lines.children] == ["lines.0", "lines.1"]
    # The blank entry posts nothing that coercion keeps.
    assert coerce_params(
        LISTS, posted_pairs(build_form(LISTS, data, extra_items=extra))
    ) == {
        "tags": [],
        "lines": [{"sku": "A", "parts": []}],
    }
