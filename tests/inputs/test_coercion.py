"""Reading links, form posts and --input pairs into input data (DESIGN.md's
"Query parameters into input data"), and writing data back as pairs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from flowdesk.errors import InputError
from flowdesk.inputs import (
    MAX_DEPTH,
    MAX_INDEX,
    MAX_PARAMS,
    coerce_params,
    parse_cli_inputs,
    to_params,
)

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["customer"],
    "properties": {
        "customer": {"type": "string", "title": "Customer name"},
        "items": {"type": "integer", "title": "Number of items", "minimum": 1},
        "price": {"type": "number"},
        "express": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "counts": {"type": "array", "items": {"type": "integer"}},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "geo": {
                    "type": "object",
                    "properties": {
                        "lat": {"type": "number"},
                        "lng": {"type": "number"},
                    },
                },
            },
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}


def read_query(query: str, schema: dict[str, Any] | bool = ORDER) -> dict[str, Any]:
    return coerce_params(schema, parse_qsl(query, keep_blank_values=True))


# --- DESIGN.md's table, row by row ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("customer=ACME%20GmbH", {"customer": "ACME GmbH"}, id="string"),
        pytest.param("items=5", {"items": 5}, id="integer"),
        pytest.param("price=9.5", {"price": 9.5}, id="number"),
        pytest.param("express=true", {"express": True}, id="boolean"),
        pytest.param("tags=a&tags=b", {"tags": ["a", "b"]}, id="array-repeated"),
        pytest.param("tags=a,b", {"tags": ["a", "b"]}, id="array-commas"),
        pytest.param('tags=["a","b"]', {"tags": ["a", "b"]}, id="array-json"),
        pytest.param(
            "address.city=Berlin", {"address": {"city": "Berlin"}}, id="dotted"
        ),
        pytest.param(
            'address={"city":"Berlin"}', {"address": {"city": "Berlin"}}, id="json"
        ),
    ],
)
def test_coerce_params_design_table(query: str, expected: dict[str, Any]) -> None:
    assert read_query(query) == expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
        (" on ", True),
    ],
)
def test_coerce_params_boolean_spellings(spelling: str, expected: bool) -> None:
    assert coerce_params(ORDER, [("express", spelling)]) == {"express": expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("-2", -2), ("+7", 7), ("5.0", 5), (" 12 ", 12), ("007", 7)],
)
def test_coerce_params_integer_notations(text: str, expected: int) -> None:
    assert coerce_params(ORDER, [("items", text)]) == {"items": expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("9.5", 9.5), ("-0.25", -0.25), ("1e3", 1000.0), (".5", 0.5), ("3", 3)],
)
def test_coerce_params_number_notations(text: str, expected: float) -> None:
    assert coerce_params(ORDER, [("price", text)]) == {"price": expected}


# --- values kept as typed, empties, repeats ------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("items", "five"),
        ("items", "1.5"),
        ("items", "1e3"),
        ("price", "nan"),
        ("price", "inf"),
        ("price", "1e999"),
        ("price", "1_000"),
        ("express", "maybe"),
    ],
)
def test_coerce_params_unconvertible_value_kept_as_typed(name: str, text: str) -> None:
    assert coerce_params(ORDER, [(name, text)]) == {name: text}


def test_coerce_params_unconvertible_array_item_kept_beside_the_others() -> None:
    assert read_query("counts=1&counts=two") == {"counts": [1, "two"]}


def test_coerce_params_empty_value_means_not_given() -> None:
    query = "customer=&items=&price=%20&express=&tags=&address.city="
    assert read_query(query) == {}


def test_coerce_params_string_of_spaces_is_kept() -> None:
    assert read_query("customer=%20%20") == {"customer": "  "}


def test_coerce_params_last_value_wins_for_scalars() -> None:
    # An HTML form posts the hidden false before a ticked checkbox's true.
    assert read_query("express=false&express=true") == {"express": True}
    assert read_query("express=false") == {"express": False}
    assert read_query("customer=A&customer=B") == {"customer": "B"}


# --- arrays ---------------------------------------------------------------------


def test_coerce_params_array_items_converted_by_items() -> None:
    assert read_query("counts=1,2,3") == {"counts": [1, 2, 3]}
    assert read_query("counts=1&counts=2") == {"counts": [1, 2]}
    assert read_query("counts=[1,2]") == {"counts": [1, 2]}


def test_coerce_params_comma_list_ignores_spaces_and_empty_parts() -> None:
    assert read_query("tags=a,%20b,,c,") == {"tags": ["a", "b", "c"]}


def test_coerce_params_repeated_values_are_not_split() -> None:
    assert read_query("tags=Smith,%20John&tags=b") == {"tags": ["Smith, John", "b"]}


def test_coerce_params_empty_array_marker() -> None:
    assert read_query("tags=[]") == {"tags": []}
    # The form sends [] before a list's entries, which are then one value each.
    assert read_query("tags=[]&tags=Smith,%20John") == {"tags": ["Smith, John"]}
    assert read_query("tags=[]&tags=") == {"tags": []}


def test_coerce_params_blank_array_items_dropped() -> None:
    assert read_query("tags=a&tags=&tags=b") == {"tags": ["a", "b"]}


def test_coerce_params_bracket_text_that_is_not_json_is_one_item() -> None:
    assert read_query("tags=[draft]") == {"tags": ["[draft]"]}


def test_coerce_params_array_positions() -> None:
    assert read_query("tags.1=b&tags.0=a") == {"tags": ["a", "b"]}


def test_coerce_params_array_of_objects_by_position() -> None:
    query = "lines.0.sku=A&lines.0.qty=2&lines.1.sku=B"
    assert read_query(query) == {"lines": [{"sku": "A", "qty": 2}, {"sku": "B"}]}


def test_coerce_params_array_of_objects_drops_blank_entries() -> None:
    query = "lines=[]&lines.0.sku=A&lines.1.sku=&lines.1.qty=&lines.2.sku=C"
    assert read_query(query) == {"lines": [{"sku": "A"}, {"sku": "C"}]}


def test_coerce_params_array_of_objects_drops_untouched_entries() -> None:
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "gift": {"type": "boolean"},
                        "notes": {"type": "array", "items": {"type": "string"}},
                    },
                },
            }
        },
    }
    query = "lines=[]&lines.0.sku=&lines.0.gift=false&lines.0.notes=[]"
    assert read_query(query, schema) == {"lines": []}


def test_coerce_params_array_of_objects_as_json() -> None:
    query = 'lines=[{"sku":"A","qty":2,"colour":"red"}]'
    assert read_query(query) == {"lines": [{"sku": "A", "qty": 2}]}


# --- objects --------------------------------------------------------------------


def test_coerce_params_dotted_names_any_depth() -> None:
    query = "address.geo.lat=52.5&address.geo.lng=13.4&address.city=Berlin"
    assert read_query(query) == {
        "address": {"city": "Berlin", "geo": {"lat": 52.5, "lng": 13.4}}
    }


def test_coerce_params_json_object_and_dotted_names_merge() -> None:
    query = 'address={"city":"Bonn","geo":{"lat":1}}&address.geo.lng=2'
    assert read_query(query) == {
        "address": {"city": "Bonn", "geo": {"lat": 1, "lng": 2}}
    }


def test_coerce_params_object_that_is_not_json_kept_as_typed() -> None:
    assert read_query("address=Berlin") == {"address": "Berlin"}


def test_coerce_params_blank_optional_object_left_out() -> None:
    assert read_query("address.city=&address.geo.lat=") == {}


def test_coerce_params_blank_required_object_kept_empty() -> None:
    schema = {
        "type": "object",
        "required": ["address"],
        "properties": {
            "address": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string"}},
            }
        },
    }
    # Kept, so that validation can say "city is required" beside the field.
    assert read_query("address.city=", schema) == {"address": {}}


def test_coerce_params_untouched_optional_group_with_checkbox_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {
            "delivery": {
                "type": "object",
                "required": ["street"],
                "properties": {
                    "street": {"type": "string"},
                    "express": {"type": "boolean"},
                },
            }
        },
    }
    assert read_query("delivery.street=&delivery.express=false", schema) == {}
    assert read_query("delivery.street=&delivery.express=true", schema) == {
        "delivery": {"express": True}
    }


# --- names the schema does not know, reserved names -----------------------------


def test_coerce_params_unknown_names_ignored_at_every_depth() -> None:
    query = (
        "customer=ACME&colour=red&address.zip=1&address.geo.alt=3"
        "&lines.0.sku=A&lines.0.colour=red&lines.x.sku=B&customer.first=x"
    )
    assert read_query(query) == {"customer": "ACME", "lines": [{"sku": "A"}]}


def test_coerce_params_unknown_keys_in_json_ignored() -> None:
    assert read_query('address={"city":"Bonn","zip":"53111"}') == {
        "address": {"city": "Bonn"}
    }


def test_coerce_params_start_flow_and_underscore_names_ignored() -> None:
    query = "customer=ACME&start_flow=true&_csrf=abc&_action=add:tags"
    assert read_query(query) == {"customer": "ACME"}


def test_coerce_params_additional_properties_schema_keeps_unknown_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}}
        },
    }
    assert read_query("labels.a=1&labels.b=2", schema) == {"labels": {"a": 1, "b": 2}}


def test_coerce_params_schema_without_input_reads_nothing() -> None:
    assert read_query("customer=ACME", True) == {}
    assert read_query("customer=ACME", {}) == {}


# --- schema shapes ----------------------------------------------------------------


def test_coerce_params_type_list_with_null() -> None:
    schema = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}
    assert read_query("n=4", schema) == {"n": 4}
    assert read_query("n=null", schema) == {"n": None}
    assert read_query("n=x", schema) == {"n": "x"}


def test_coerce_params_enum_without_type_matched_by_text() -> None:
    schema = {"type": "object", "properties": {"size": {"enum": [1, 2, "large", True]}}}
    assert read_query("size=2", schema) == {"size": 2}
    assert read_query("size=large", schema) == {"size": "large"}
    assert read_query("size=true", schema) == {"size": True}
    assert read_query("size=huge", schema) == {"size": "huge"}


def test_coerce_params_one_of_constants() -> None:
    schema = {
        "type": "object",
        "properties": {
            "priority": {
                "oneOf": [{"const": 1, "title": "Low"}, {"const": 2, "title": "High"}]
            }
        },
    }
    assert read_query("priority=2", schema) == {"priority": 2}


def test_coerce_params_follows_refs_to_defs() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"zip": {"type": "integer"}},
            }
        },
        "properties": {"home": {"$ref": "#/$defs/address"}},
    }
    assert read_query("home.zip=10115", schema) == {"home": {"zip": 10115}}


def test_coerce_params_recursive_schema_reads_to_the_depth_given() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "child": {"$ref": "#"},
        },
    }
    assert read_query("child.child.name=c&name=a", schema) == {
        "name": "a",
        "child": {"child": {"name": "c"}},
    }


def test_coerce_params_looping_refs_do_not_hang() -> None:
    schema = {
        "type": "object",
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
        "properties": {"x": {"$ref": "#/$defs/a"}},
    }
    assert read_query("x=5", schema) == {"x": 5}  # unresolvable: read as untyped


def test_coerce_params_object_without_type() -> None:
    schema = {"properties": {"a": {"properties": {"b": {"type": "integer"}}}}}
    assert read_query("a.b=3", schema) == {"a": {"b": 3}}


def test_coerce_params_all_of_merged() -> None:
    schema = {
        "type": "object",
        "allOf": [{"properties": {"a": {"type": "integer"}}}],
        "properties": {"b": {"type": "boolean"}},
    }
    assert read_query("a=1&b=yes", schema) == {"a": 1, "b": True}


def test_coerce_params_untyped_field_reads_json_or_text() -> None:
    schema = {"type": "object", "properties": {"extra": {}}}
    assert read_query("extra=5", schema) == {"extra": 5}
    assert read_query('extra={"a":1}', schema) == {"extra": {"a": 1}}
    assert read_query("extra=hello", schema) == {"extra": "hello"}


# --- dates and times from the form ------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("date-time", "2026-12-03T10:30", "2026-12-03T10:30:00Z"),
        ("date-time", "2026-12-03T10:30:15", "2026-12-03T10:30:15Z"),
        ("date-time", "2026-12-03 10:30", "2026-12-03T10:30:00Z"),
        ("date-time", "2026-12-03T10:30:00+02:00", "2026-12-03T10:30:00+02:00"),
        ("date-time", "tomorrow", "tomorrow"),
        ("time", "10:30", "10:30:00Z"),
        ("time", "10:30:05.5", "10:30:05.5Z"),
        ("date", "2026-12-03", "2026-12-03"),
    ],
)
def test_coerce_params_local_date_time_read_as_utc(
    fmt: str, text: str, expected: str
) -> None:
    schema = {
        "type": "object",
        "properties": {"when": {"type": "string", "format": fmt}},
    }
    assert coerce_params(schema, [("when", text)]) == {"when": expected}


# --- limits ---------------------------------------------------------------------


def test_coerce_params_limits_number_of_parameters() -> None:
    with pytest.raises(InputError) as raised:
        coerce_params(ORDER, [("customer", "x")] * (MAX_PARAMS + 1))
    assert f"at most {MAX_PARAMS}" in raised.value.errors[0].message


def test_coerce_params_limits_array_position() -> None:
    with pytest.raises(InputError) as raised:
        coerce_params(ORDER, [("lines.99999999.sku", "A")])
    error = raised.value.errors[0]
    assert error.field == "lines.99999999.sku"
    assert f"positions go up to {MAX_INDEX}" in error.message


def test_coerce_params_accepts_the_largest_position() -> None:
    data = coerce_params(ORDER, [(f"lines.{MAX_INDEX}.sku", "A")])
    assert data == {"lines": [{"sku": "A"}]}


def test_coerce_params_limits_name_depth() -> None:
    name = ".".join(["address"] * (MAX_DEPTH + 1))
    with pytest.raises(InputError) as raised:
        coerce_params(ORDER, [(name, "x")])
    assert f"at most {MAX_DEPTH} levels" in raised.value.errors[0].message


def test_coerce_params_limits_json_depth() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(InputError) as raised:
        coerce_params(ORDER, [("tags", deep)])
    assert raised.value.errors[0].field == "tags"
    assert "nested more than" in raised.value.errors[0].message


@pytest.mark.parametrize(
    "spelling",
    [
        ",".join(["a"] * (MAX_INDEX + 2)),
        "[" + ",".join(['"a"'] * (MAX_INDEX + 2)) + "]",
    ],
    ids=["commas", "json"],
)
def test_coerce_params_limits_list_length(spelling: str) -> None:
    with pytest.raises(InputError) as raised:
        coerce_params(ORDER, [("tags", spelling)])
    assert f"at most {MAX_INDEX + 1}" in raised.value.errors[0].message


def test_coerce_params_huge_position_of_many_digits() -> None:
    with pytest.raises(InputError):
        coerce_params(ORDER, [("lines." + "9" * 5000 + ".sku", "A")])


# --- the command line -------------------------------------------------------------


def test_parse_cli_inputs_pairs_read_like_url_parameters() -> None:
    data = parse_cli_inputs(ORDER, ["customer=ACME", "items=5", "tags=a,b", "x=1"])
    assert data == {"customer": "ACME", "items": 5, "tags": ["a", "b"]}


def test_parse_cli_inputs_value_may_contain_equals_signs() -> None:
    assert parse_cli_inputs(ORDER, ["customer=a=b"]) == {"customer": "a=b"}


def test_parse_cli_inputs_pairs_override_json() -> None:
    data = parse_cli_inputs(
        ORDER,
        ["address.city=Bonn", "items=3"],
        '{"customer": "ACME", "items": 1, "address": {"city": "Berlin", "geo": {}}}',
    )
    assert data == {
        "customer": "ACME",
        "items": 3,
        "address": {"city": "Bonn", "geo": {}},
    }


def test_parse_cli_inputs_pair_without_equals_sign() -> None:
    with pytest.raises(InputError) as raised:
        parse_cli_inputs(ORDER, ["customer"])
    assert "--input 'customer' must have the form key=value." in str(raised.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"a": NaN}'])
def test_parse_cli_inputs_bad_json(text: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_cli_inputs(ORDER, [], text)
    assert "--json" in str(raised.value)


# --- writing pairs ------------------------------------------------------------------


def test_to_params_canonical_form() -> None:
    data = {
        "customer": "ACME GmbH",
        "items": 5,
        "price": 9.5,
        "express": False,
        "tags": ["a", "b"],
        "address": {"city": "Berlin", "geo": {"lat": 52.5}},
        "lines": [{"sku": "A", "qty": 2}, {"sku": "B"}],
    }
    assert to_params(ORDER, data) == [
        ("customer", "ACME GmbH"),
        ("items", "5"),
        ("price", "9.5"),
        ("express", "false"),
        ("tags", "a"),
        ("tags", "b"),
        ("address.city", "Berlin"),
        ("address.geo.lat", "52.5"),
        ("lines.0.sku", "A"),
        ("lines.0.qty", "2"),
        ("lines.1.sku", "B"),
    ]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param([], [("tags", "[]")], id="empty"),
        pytest.param(["a,b"], [("tags", '["a,b"]')], id="lone-comma"),
        pytest.param(["a,b", "c"], [("tags", "a,b"), ("tags", "c")], id="commas"),
        pytest.param(["[x]"], [("tags", '["[x]"]')], id="lone-bracket"),
        pytest.param(["a", ""], [("tags", '["a",""]')], id="blank-item"),
        pytest.param(["[]", "b"], [("tags", '["[]","b"]')], id="marker-text"),
    ],
)
def test_to_params_arrays_that_need_json(
    tags: list[str], expected: list[tuple[str, str]]
) -> None:
    assert to_params(ORDER, {"tags": tags}) == expected
    assert coerce_params(ORDER, expected) == {"tags": tags}


def test_to_params_float_and_big_numbers_read_back_equal() -> None:
    data = {"price": 0.1 + 0.2, "items": 10**30}
    assert coerce_params(ORDER, to_params(ORDER, data)) == data


def test_to_params_leaves_out_empty_strings_and_unknown_keys() -> None:
    data = {"customer": "", "colour": "red", "address": {"city": "", "zip": "1"}}
    assert to_params(ORDER, data) == [("address", "{}")]


def test_to_params_never_writes_secrets() -> None:
    schema = {
        "type": "object",
        "properties": {
            "token": {"type": "string", "writeOnly": True},
            "pin": {"type": "string", "format": "password"},
            "user": {"type": "string"},
        },
    }
    assert to_params(schema, {"token": "s3cret", "pin": "1234", "user": "ann"}) == [
        ("user", "ann")
    ]


def test_to_params_untouched_looking_object_written_as_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "delivery": {
                "type": "object",
                "properties": {
                    "express": {"type": "boolean"},
                    "notes": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    data = {"delivery": {"express": False, "notes": []}}
    assert to_params(schema, data) == [("delivery", '{"express":false,"notes":[]}')]
    assert coerce_params(schema, to_params(schema, data)) == data


def test_to_params_type_list_string_that_looks_like_a_number() -> None:
    schema = {"type": "object", "properties": {"v": {"type": ["integer", "string"]}}}
    for value in ("5", 5, "true", "x"):
        assert coerce_params(schema, to_params(schema, {"v": value})) == {"v": value}
