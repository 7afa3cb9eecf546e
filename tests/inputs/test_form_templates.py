"""The Jinja2 macros that render the form model: labels, ids, hints, errors and
the accessibility attributes that tie them together."""

from __future__ import annotations

import re
from typing import Any

from flowdesk.errors import FieldError
from flowdesk.inputs import build_form, coerce_params

from .posting import browser_pairs, render, template_environment

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["customer"],
    "properties": {
        "customer": {
            "type": "string",
            "title": "Customer name",
            "description": "As on the invoice",
        },
        "items": {
            "type": "integer",
            "title": "Number of items",
            "minimum": 1,
            "default": 1,
        },
        "express": {"type": "boolean", "title": "Express delivery"},
        "colour": {
            "title": "Colour",
            "oneOf": [{"const": "r", "title": "Red"}, {"const": "g", "title": "Green"}],
        },
        "extras": {
            "type": "array",
            "title": "Extras",
            "items": {"enum": ["wrap", "card"]},
        },
        "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
        "notes": {"type": "string", "title": "Notes", "x-multiline": True},
        "address": {
            "type": "object",
            "title": "Address",
            "properties": {"city": {"type": "string", "title": "City"}},
        },
        "lines": {
            "type": "array",
            "title": "Lines",
            "items": {
                "type": "object",
                "title": "Line",
                "properties": {"sku": {"type": "string", "title": "SKU"}},
            },
        },
    },
}


def tag(html: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    match = re.search(rf'<[a-z]+[^>]*\sid="{re.escape(element_id)}"[^>]*>', html)
    assert match, f"no element with id {element_id}"
    return match.group(0)


def test_render_form_every_control_has_a_label() -> None:
    html = render(build_form(ORDER, {"tags": ["a"], "lines": [{"sku": "A"}]}))
    without_templates = re.sub(r"<template.*?</template>", "", html, flags=re.S)
    control_ids = re.findall(
        r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\sid="([^"]+)"',
        without_templates,
    )
    assert control_ids
    for control_id in control_ids:
        assert f'<label for="{control_id}"' in html or f'for="{control_id}">' in html


def test_render_form_label_hint_and_required_marker() -> None:
    html = render(build_form(ORDER))
    assert (
        '<label for="field-customer">Customer name<span class="required" '
        'aria-hidden="true">*</span><span class="visually-hidden"> (required)</span>'
        "</label>"
    ) in html
    assert '<p class="hint" id="field-customer-hint">As on the invoice</p>' in html
    customer = tag(html, "field-customer")
    assert 'aria-describedby="field-customer-hint"' in customer
    assert " required" in customer


def test_render_form_error_beside_field() -> None:
    form = build_form(
        ORDER,
        {"items": "five"},
        [FieldError("items", "Number of items must be a whole number, got 'five'.")],
    )
    html = render(form)
    assert (
        '<p class="field-error" id="field-items-error"><span class="visually-hidden">'
        "Error: </span>Number of items must be a whole number, got &#39;five&#39;.</p>"
    ) in html
    items = tag(html, "field-items")
    assert 'aria-invalid="true"' in items
    assert 'aria-describedby="field-items-error"' in items
    assert 'value="five"' in items


def test_render_error_summary_links_to_fields() -> None:
    errors = [
        FieldError("", "The input is too large."),
        FieldError("customer", "Customer name is required."),
        FieldError("address.city", "Must not be empty."),
    ]
    html = render(build_form(ORDER, {}, errors))
    heading = '<h2 class="error-summary-title" id="error-summary-title">'
    assert f"{heading}There is a problem</h2>" in html
    assert "<li>The input is too large.</li>" in html
    # A message that already names the field is not prefixed with its label.
    assert '<a href="#field-customer">Customer name is required.</a>' in html
    assert '<a href="#field-address-city">City: Must not be empty.</a>' in html


def test_render_error_summary_empty_without_errors() -> None:
    html = render(build_form(ORDER))
    assert "error-summary" not in html


def test_render_form_no_input() -> None:
    assert "This flow requires no input data." in render(build_form(True))


def test_render_form_checkbox_is_a_switch_with_hidden_false() -> None:
    html = render(build_form(ORDER, {"express": True}))
    assert re.search(
        r'<input type="hidden" name="express" value="false">\s*'
        r'<input type="checkbox" role="switch" id="field-express" name="express" '
        r'value="true" checked>',
        html,
    )
    assert " required" not in tag(html, "field-express")


def test_render_form_select_with_readable_labels() -> None:
    html = render(build_form(ORDER, {"colour": "g"}))
    assert '<option value="">(none)</option>' in html
    assert '<option value="r">Red</option>' in html
    assert '<option value="g" selected>Green</option>' in html


def test_render_form_checkboxes_in_a_fieldset() -> None:
    html = render(build_form(ORDER, {"extras": ["card"]}))
    assert '<fieldset class="field-checkboxes" id="field-extras">' in html
    assert "<legend>Extras</legend>" in html
    assert '<input type="hidden" name="extras" value="[]">' in html
    assert 'id="field-extras-option-1" name="extras" value="card" checked>' in html


def test_render_form_groups_are_fieldsets_with_legends() -> None:
    html = render(build_form(ORDER))
    assert '<fieldset class="field-group" id="field-address">' in html
    assert "<legend>Address</legend>" in html
    assert 'name="address.city"' in html


def test_render_form_list_with_add_remove_and_template() -> None:
    html = render(build_form(ORDER, {"tags": ["a", "b"]}))
    assert 'data-list data-list-name="tags" data-list-id="field-tags"' in html
    assert 'name="_action" value="remove:tags.1" formnovalidate data-remove>' in html
    assert 'name="_action" value="add:tags" formnovalidate data-add>' in html
    template = re.search(r"<template data-entry-template>(.*?)</template>", html, re.S)
    assert template
    assert 'id="field-tags-__index__" name="tags" value=""' in template.group(1)
    assert 'value="remove:tags.__index__"' in template.group(1)


def test_render_form_group_list_entries_are_fieldsets() -> None:
    html = render(build_form(ORDER, {"lines": [{"sku": "A"}]}))
    assert '<fieldset class="field-group list-entry-group" id="field-lines-0">' in html
    assert '<legend>Line <span class="entry-number">1</span></legend>' in html
    assert 'name="lines.0.sku" value="A"' in html
    assert 'name="lines.__index__.sku"' in html


def test_render_form_textarea_keeps_a_leading_line_break() -> None:
    form = build_form(ORDER, {"notes": "\nsecond line"})
    pairs = browser_pairs(render(form))
    assert ("notes", "\nsecond line") in pairs


def test_render_form_escapes_markup_in_values_and_labels() -> None:
    schema = {
        "type": "object",
        "properties": {
            "<b>name</b>": {
                "type": "string",
                "title": "<i>Name</i>",
                "description": "<script>alert(2)</script>",
            },
            "notes": {"type": "string", "maxLength": 1000},
        },
    }
    attack = '"><script>alert(1)</script>'
    form = build_form(
        schema,
        {"<b>name</b>": attack, "notes": "</textarea><script>alert(3)</script>"},
        [FieldError("notes", "<script>alert(4)</script>")],
    )
    html = render(form)
    assert "<script>" not in html
    assert "<i>" not in html and "<b>" not in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    # What the browser posts back is exactly what was typed.
    assert coerce_params(schema, browser_pairs(html))["<b>name</b>"] == attack


def test_render_form_has_no_inline_script_or_handlers() -> None:
    html = render(build_form(ORDER, {"tags": ["a"], "lines": [{}]}))
    assert "<script" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert "style=" not in html


def test_render_form_posts_what_the_model_shows() -> None:
    data = {
        "customer": "ACME",
        "items": 3,
        "express": True,
        "colour": "r",
        "extras": ["wrap"],
        "tags": ["a", "b,c"],
        "notes": "one\ntwo",
        "address": {"city": "Bonn"},
        "lines": [{"sku": "A"}, {"sku": "B"}],
    }
    html = render(build_form(ORDER, data))
    assert coerce_params(ORDER, browser_pairs(html)) == data


def test_form_fields_template_imports_with_from() -> None:
    page = template_environment().from_string(
        '{% from "_form_fields.html" import render_form, render_error_summary %}'
        "{{ render_error_summary(form) }}{{ render_form(form) }}"
    )
    assert 'id="field-customer"' in page.render(form=build_form(ORDER))
