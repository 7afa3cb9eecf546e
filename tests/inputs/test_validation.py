"""Validating input against the flow's input schema, with messages a flow user
can act on."""

from __future__ import annotations

from typing import Any

import pytest

from flowdesk.errors import DefinitionError, FieldError, InputError
from flowdesk.inputs import (
    apply_defaults,
    check_input,
    input_validator,
    validate_input,
)

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["customer"],
    "properties": {
        "customer": {"type": "string", "title": "Customer name", "minLength": 2},
        "items": {
            "type": "integer",
            "title": "Number of items",
            "minimum": 1,
            "default": 1,
        },
        "email": {"type": "string", "format": "email", "title": "Email"},
        "colour": {
            "title": "Colour",
            "oneOf": [{"const": "r", "title": "Red"}, {"const": "g", "title": "Green"}],
        },
        "size": {"enum": ["s", "m"]},
        "code": {
            "type": "string",
            "title": "Order number",
            "pattern": "^ORD-[0-9]+$",
            "description": "Like ORD-1234",
        },
        "tags": {
            "type": "array",
            "title": "Tags",
            "items": {"type": "integer"},
            "maxItems": 2,
        },
        "address": {
            "type": "object",
            "title": "Address",
            "required": ["city"],
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "title": "City"},
                "country": {"type": "string", "default": "DE"},
            },
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "title": "Line",
                "required": ["sku"],
                "properties": {
                    "sku": {"type": "string", "title": "SKU"},
                    "qty": {"type": "integer", "title": "Quantity", "default": 1},
                },
            },
        },
        "pin": {"type": "string", "format": "password", "title": "PIN", "maxLength": 4},
    },
}


def messages(data: dict[str, Any], schema: dict[str, Any] = ORDER) -> dict[str, str]:
    return {error.field: error.message for error in validate_input(schema, data)}


def test_validate_input_valid_data_has_no_errors() -> None:
    assert validate_input(ORDER, {"customer": "ACME", "items": 2, "tags": [1]}) == []


def test_validate_input_required_names_the_field_by_title() -> None:
    assert validate_input(ORDER, {}) == [
        FieldError("customer", "Customer name is required.")
    ]


def test_validate_input_unconverted_value_reported_plainly() -> None:
    found = messages({"customer": "ACME", "items": "five"})
    assert found == {"items": "Number of items must be a whole number, got 'five'."}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"items": 0}, "items", "Number of items must be at least 1."),
        (
            {"customer": "A"},
            "customer",
            "Customer name must be at least 2 characters long.",
        ),
        ({"email": "x"}, "email", "Email must be an email address, got 'x'."),
        ({"colour": "b"}, "colour", "Colour must be one of: Red, Green."),
        ({"size": "xl"}, "size", "Field 'size' must be one of: s, m."),
        (
            {"code": "123"},
            "code",
            "Order number does not match the expected format (Like ORD-1234), "
            "got '123'.",
        ),
        ({"tags": [1, 2, 3]}, "tags", "Tags can have at most 2 entries."),
        (
            {"tags": [1, "x"]},
            "tags.1",
            "Item 2 of Tags must be a whole number, got 'x'.",
        ),
        ({"address": {}}, "address.city", "City is required."),
        (
            {"address": {"city": "Bonn", "zip": "1"}},
            "address",
            "Address has fields it does not accept: 'zip'.",
        ),
        ({"lines": [{"sku": "A"}, {"qty": 2}]}, "lines.1.sku", "SKU is required."),
        (
            {"lines": [{"sku": "A", "qty": "many"}]},
            "lines.0.qty",
            "Quantity must be a whole number, got 'many'.",
        ),
        (
            {"address": "Bonn"},
            "address",
            "Address must be a set of fields, got 'Bonn'.",
        ),
    ],
)
def test_validate_input_messages(
    data: dict[str, Any], field: str, message: str
) -> None:
    assert messages({"customer": "ACME", **data}) == {field: message}


def test_validate_input_never_repeats_a_secret_value() -> None:
    found = messages({"customer": "ACME", "pin": "123456"})
    assert found == {"pin": "PIN must be at most 4 characters long (it has 6)."}
    assert "123456" not in found["pin"]


def test_validate_input_untitled_fields_named_by_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "integer"}},
        },
    }
    assert messages({"n": "x", "tags": ["y"]}, schema) == {
        "n": "Field 'n' must be a whole number, got 'x'.",
        "tags.0": "Item 1 of field 'tags' must be a whole number, got 'y'.",
    }


@pytest.mark.parametrize(
    ("fmt", "value", "words"),
    [
        ("date", "3 Dec", "a date such as 2026-12-31"),
        ("date-time", "2026-12-03T10:30:00", "a date and time"),
        ("time", "25:00", "a time of day"),
        ("uri", "example", "a full web address"),
    ],
)
def test_validate_input_format_messages(fmt: str, value: str, words: str) -> None:
    schema = {
        "type": "object",
        "properties": {"v": {"type": "string", "format": fmt, "title": "V"}},
    }
    (error,) = validate_input(schema, {"v": value})
    assert error.message.startswith(f"V must be {words}")
    assert error.message.endswith(f", got '{value}'.")


def test_validate_input_errors_follow_schema_order() -> None:
    data = {"lines": [{"qty": "x"}], "email": "x", "items": 0}
    assert [error.field for error in validate_input(ORDER, data)] == [
        "customer",
        "items",
        "email",
        "lines.0.sku",
        "lines.0.qty",
    ]


def test_validate_input_type_union_in_words() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"title": "Limit", "anyOf": [{"type": "integer"}, {"type": "null"}]}
        },
    }
    assert messages({"n": "x"}, schema) == {
        "n": "Limit must be a whole number or empty, got 'x'."
    }


def test_validate_input_false_schema_names_the_field() -> None:
    schema = {
        "type": "object",
        "properties": {"legacy": False, "a": {"type": "string"}},
    }
    assert messages({"legacy": 1}, schema) == {
        "legacy": "Field 'legacy' is not allowed."
    }


def test_validate_input_deep_input_is_one_clear_error() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert validate_input(ORDER, {"customer": deep}) == [
        FieldError("", "The input is nested more than 32 levels deep.")
    ]


def test_validate_input_huge_input_is_one_clear_error() -> None:
    (error,) = validate_input(ORDER, {"customer": "x" * 1_100_000})
    assert error.field == ""
    assert "at most 1,000,000 bytes" in error.message


def test_validate_input_not_json_is_one_clear_error() -> None:
    (error,) = validate_input(ORDER, {"customer": float("nan")})
    assert error.message.startswith("The input must be plain JSON data")


def test_input_validator_is_cached_per_schema() -> None:
    first = input_validator(ORDER)
    assert input_validator({**ORDER}) is first
    assert input_validator({**ORDER, "title": "other"}) is not first


def test_input_validator_checks_formats() -> None:
    assert not input_validator(ORDER).is_valid({"customer": "ACME", "email": "nope"})


def test_input_validator_rejects_an_invalid_schema() -> None:
    with pytest.raises(DefinitionError) as raised:
        input_validator({"type": "object", "properties": {"a": {"type": "whole"}}})
    assert "not a valid JSON Schema" in str(raised.value)


def test_apply_defaults_fills_absent_properties_recursively() -> None:
    data = {"customer": "ACME", "address": {"city": "Bonn"}, "lines": [{"sku": "A"}]}
    assert apply_defaults(ORDER, data) == {
        "customer": "ACME",
        "items": 1,
        "address": {"city": "Bonn", "country": "DE"},
        "lines": [{"sku": "A", "qty": 1}],
    }


def test_apply_defaults_leaves_the_input_unchanged() -> None:
    data = {"customer": "ACME", "address": {"city": "Bonn"}}
    apply_defaults(ORDER, data)
    assert data == {"customer": "ACME", "address": {"city": "Bonn"}}


def test_apply_defaults_keeps_given_values_and_absent_groups() -> None:
    assert apply_defaults(ORDER, {"items": 7}) == {"items": 7}


def test_apply_defaults_copies_mutable_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "default": []}},
    }
    first = apply_defaults(schema, {})
    first["tags"].append("x")
    assert apply_defaults(schema, {}) == {"tags": []}


def test_check_input_returns_data_with_defaults() -> None:
    assert check_input(ORDER, {"customer": "ACME"}) == {"customer": "ACME", "items": 1}


def test_check_input_raises_with_every_field_error() -> None:
    with pytest.raises(InputError) as raised:
        check_input(ORDER, {"items": 0})
    assert raised.value.errors == [
        FieldError("customer", "Customer name is required."),
        FieldError("items", "Number of items must be at least 1."),
    ]


def test_check_input_default_satisfies_required() -> None:
    schema = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "integer", "default": 1}},
    }
    assert check_input(schema, {}) == {"items": 1}


def test_check_input_no_input_schema_accepts_empty_input() -> None:
    assert check_input(True, {}) == {}
