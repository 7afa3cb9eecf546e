"""The launch form of an interactive flow, as a tree of fields built from the
input schema; `web/templates/_form_fields.html` renders it.

Field names are the names `coerce_params` reads (`customer`, `address.city`,
`tags` repeated, `lines.0.sku`), so a posted form and a link are one input.

Widgets, by the field's schema:

- string: `text`; `format` date, date-time, time, email, uri give `date`,
  `datetime`, `time`, `email`, `url`; `writeOnly` or `format: password` give
  `password` (its value is never put back into the page); long text gives
  `textarea`: `x-multiline: true`, a `contentMediaType` of `text/...`, or a
  `maxLength` over 200 (a value that long is prose, not a name).
- integer and number: `integer` (step 1) and `number` (step any, or
  `multipleOf`). boolean: `checkbox`, posted as a hidden `false` then the box's
  `true`.
- `enum`, `const`, or `oneOf`/`anyOf` of `const` with `title`s: `select`.
- arrays: of choices `checkboxes`; of scalars `list`; of objects `group_list`.
  Each posts `[]` ahead of its entries (see coercion). Objects: `group`.
- anything else (arrays of arrays, free-form objects, recursion through `$ref`):
  `json`, a textarea holding JSON.

Without JavaScript, a list's Add and Remove buttons post `_action=add:NAME` or
`_action=remove:NAME.INDEX`; the page applies them with `apply_form_action` and
renders the form again with `extra_items`. `static/js/form-fields.js` does the
same in the page by cloning `item_template`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from flowdesk.errors import FieldError
from flowdesk.inputs.coercion import (
    MAX_DEPTH,
    choices,
    is_secret,
    item_schema,
    resolve,
    scalar_text,
    schema_at,
    schema_types,
)

logger = logging.getLogger(__name__)

INDEX_PLACEHOLDER = "__index__"
LONG_TEXT_LENGTH = 200

_STRING_FORMATS = {
    "date": "date",
    "date-time": "datetime",
    "time": "time",
    "email": "email",
    "idn-email": "email",
    "uri": "url",
    "iri": "url",
    "password": "password",
}
_STRUCTURED = ("group", "list", "group_list", "checkboxes")
# Widgets a value is typed into: the ones `readonly` and `placeholder` apply to.
_TYPED_IN = ("text", "textarea", "email", "url", "password", "integer", "number")

Schema = dict[str, Any]


@dataclass(kw_only=True)
class FormField:
    """One field of the launch form, or one entry of a list field."""

    name: str  # the name the HTML control posts: "customer", "lines.0.sku"
    id: str  # a safe HTML id: "field-address-city"
    label: str  # the schema's title, else the property name
    hint: str | None = None  # the schema's description
    widget: str = "text"
    required: bool = False  # marked as required (the HTML attribute is in attrs)
    value: Any = None  # from the data, else the default; for lists the list
    options: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    children: list[FormField] = field(default_factory=list)
    item_template: FormField | None = None
    # Dotted path of the data this field shows, which validation errors name;
    # the same as `name` except for a scalar list's entries ("tags.1").
    path: str = ""
    # Position of a list entry ("0", "1", or INDEX_PLACEHOLDER in a template).
    index: str | None = None

    @property
    def text(self) -> str:
        """The value as the control's `value` (or a textarea's content) shows it."""
        return _display_text(self.widget, self.value)

    @property
    def checked(self) -> bool:
        return self.value is True

    @property
    def selected(self) -> list[str]:
        """The option values that are chosen, for select and checkboxes."""
        if self.widget == "checkboxes":
            values = self.value if isinstance(self.value, list) else []
            return [scalar_text(value) for value in values]
        return [] if self.value is None else [scalar_text(self.value)]

    @property
    def number(self) -> str:
        """A list entry's position counted from 1; "" for a template entry."""
        if self.index is None or not self.index.isdigit():
            return ""
        return str(int(self.index) + 1)

    @property
    def described_by(self) -> str:
        ids = []
        if self.hint:
            ids.append(f"{self.id}-hint")
        if self.error:
            ids.append(f"{self.id}-error")
        return " ".join(ids)

    def walk(self) -> Iterator[FormField]:
        """This field and every field inside it, in page order (no templates)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(kw_only=True)
class Form:
    fields: list[FormField]
    no_input: bool  # the flow takes no input: the page says so instead of a form
    # (field id, label, message) for the error summary, in page order; a message
    # that belongs to no rendered field comes first, with id "".
    errors: list[tuple[str, str, str]] = field(default_factory=list)

    def walk(self) -> Iterator[FormField]:
        for form_field in self.fields:
            yield from form_field.walk()


def build_form(
    schema: Schema | bool,
    values: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    *,
    extra_items: dict[str, int] | None = None,
) -> Form:
    """The launch form for an input schema, showing values (else the defaults)
    and each error beside its field; extra_items adds blank entries to lists."""
    builder = _Builder(schema, extra_items or {})
    root = resolve(schema, schema)
    properties = root.get("properties")
    if not isinstance(properties, dict) or not properties:
        form = Form(fields=[], no_input=True)
    else:
        fields = builder.fields_of(root, values or {}, [], enforce=True, refs=("#",))
        form = Form(fields=fields, no_input=False)
    _attach_errors(form, errors or [])
    return form


def apply_form_action(
    schema: Schema | bool, data: dict[str, Any], action: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """Apply a list's Add or Remove (`add:tags`, `remove:lines.1`) to coerced
    data; returns the new data and the extra_items for build_form."""
    verb, _, target = action.partition(":")
    segments = target.split(".") if target else []
    updated = copy.deepcopy(data)

    if verb == "add" and segments and _is_array(schema, segments):
        return updated, {target: 1}

    if verb == "remove" and len(segments) > 1 and _is_array(schema, segments[:-1]):
        container = _data_at(updated, segments[:-1])
        position = segments[-1]
        if (
            isinstance(container, list)
            and position.isdigit()
            and int(position) < len(container)
        ):
            del container[int(position)]
        return updated, {}

    logger.debug("Ignored a form action that names no list: %r", action[:100])
    return updated, {}


def _is_array(schema: Schema | bool, segments: list[str]) -> bool:
    node = schema_at(schema, segments)
    return node is not None and "array" in schema_types(node, schema)


def _data_at(data: Any, segments: list[str]) -> Any:
    for segment in segments:
        if isinstance(data, dict):
            data = data.get(segment)
        elif isinstance(data, list) and segment.isdigit() and int(segment) < len(data):
            data = data[int(segment)]
        else:
            return None
    return data


class _Builder:
    def __init__(self, root: Schema | bool, extra_items: dict[str, int]) -> None:
        self.root = root
        self.extra_items = extra_items
        self.ids: set[str] = set()

    def fields_of(
        self,
        node: Schema,
        values: Any,
        path: list[str],
        *,
        enforce: bool,
        refs: tuple[str, ...],
    ) -> list[FormField]:
        """The fields for an object's properties, in schema order."""
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return []
        present = values if isinstance(values, dict) else {}
        required = node.get("required")
        required_keys = set(required) if isinstance(required, list) else set()

        fields = []
        for key, raw in properties.items():
            is_required = key in required_keys
            fields.append(
                self.field(
                    raw,
                    [*path, key],
                    present.get(key, _MISSING_VALUE),
                    required=is_required,
                    enforce=enforce and is_required,
                    refs=refs,
                )
            )
        return fields

    def field(
        self,
        raw: Any,
        path: list[str],
        value: Any,
        *,
        required: bool,
        enforce: bool,
        refs: tuple[str, ...],
    ) -> FormField:
        name = ".".join(path)
        node = resolve(raw, self.root)
        ref = raw.get("$ref") if isinstance(raw, dict) else None
        recursive = isinstance(ref, str) and ref in refs
        if isinstance(ref, str):
            refs = (*refs, ref)

        if value is _MISSING_VALUE:
            value = copy.deepcopy(node.get("default"))
        widget = "json" if recursive else self.widget(node, path, refs)
        if is_secret(node):
            value = None  # a secret is typed again, never sent back to the page

        title = node.get("title")
        description = node.get("description")
        form_field = FormField(
            name=name,
            id=self.new_id(name),
            label=str(title) if title else path[-1],
            hint=str(description) if description else None,
            widget=widget,
            required=required,
            value=value,
            attrs=self.attrs(node, widget, enforce=enforce),
            path=name,
        )

        if widget == "select":
            form_field.options = self.select_options(node, required)
        elif widget == "group":
            form_field.children = self.fields_of(
                node, value, path, enforce=enforce, refs=refs
            )
        elif widget == "checkboxes":
            item = item_schema(node, 0, self.root)
            form_field.options = [
                (scalar_text(v), label) for v, label in choices(item, self.root) or []
            ]
        elif widget in ("list", "group_list"):
            self.add_entries(form_field, node, path, refs)
        elif widget == "json" and not form_field.hint:
            form_field.hint = "Enter the value as JSON."
        elif widget in ("datetime", "time") and "." in form_field.text:
            form_field.attrs["step"] = "any"  # seconds with a fraction
        return form_field

    def widget(self, node: Schema, path: list[str], refs: tuple[str, ...]) -> str:
        types = [kind for kind in schema_types(node, self.root) if kind != "null"]
        # Read the way coercion reads: structure first, and text takes anything.
        kind = next(
            (k for k in ("object", "array", "string") if k in types),
            types[0] if types else "",
        )

        if kind not in ("array", "object") and choices(node, self.root) is not None:
            return "select"
        # A structured field's children get longer names; keep every name within
        # the depth coerce_params accepts.
        room = len(path) + 2 <= MAX_DEPTH

        if kind == "boolean":
            return "checkbox"
        if kind in ("integer", "number"):
            return kind
        if kind == "string":
            return self.string_widget(node)
        if kind == "object" and room and isinstance(node.get("properties"), dict):
            return "group"
        if kind == "array" and room and "prefixItems" not in node:
            return self.array_widget(node, refs)
        return "json"

    def string_widget(self, node: Schema) -> str:
        if is_secret(node):
            return "password"
        by_format = _STRING_FORMATS.get(str(node.get("format", "")))
        if by_format:
            return by_format
        media_type = node.get("contentMediaType")
        max_length = node.get("maxLength")
        if (
            node.get("x-multiline") is True
            or (isinstance(media_type, str) and media_type.startswith("text/"))
            or (isinstance(max_length, int) and max_length > LONG_TEXT_LENGTH)
        ):
            return "textarea"
        return "text"

    def array_widget(self, node: Schema, refs: tuple[str, ...]) -> str:
        raw_items = node.get("items")
        if isinstance(raw_items, dict) and raw_items.get("$ref") in refs:
            return "json"  # the items are this schema again: no end to nesting

        item = item_schema(node, 0, self.root)
        item_types = [t for t in schema_types(item, self.root) if t != "null"]
        if choices(item, self.root) is not None and "object" not in item_types:
            return "checkboxes"
        if item_types == ["object"] and isinstance(item.get("properties"), dict):
            return "group_list"
        if len(item_types) == 1 and item_types[0] in (
            "string",
            "integer",
            "number",
            "boolean",
        ):
            return "list"
        return "json"

    def attrs(self, node: Schema, widget: str, *, enforce: bool) -> dict[str, str]:
        attrs: dict[str, str] = {}
        if widget in ("integer", "number"):
            attrs.update(_number_attrs(node, widget))
        elif widget in ("text", "textarea", "email", "url", "password"):
            attrs.update(_text_attrs(node, widget))
        elif widget in ("datetime", "time"):
            attrs["step"] = "1"  # stored values carry seconds
        elif widget in ("list", "group_list"):
            for keyword, attribute in (
                ("minItems", "data-min-items"),
                ("maxItems", "data-max-items"),
            ):
                if isinstance(node.get(keyword), int):
                    attrs[attribute] = str(node[keyword])

        typed_in = widget in _TYPED_IN
        if node.get("readOnly") is True and typed_in:
            attrs["readonly"] = ""
        examples = node.get("examples")
        if isinstance(examples, list) and examples and typed_in:
            attrs["placeholder"] = scalar_text(examples[0])
        # Only a field whose every enclosing group is required may stop the
        # browser from submitting; a checkbox never: it would have to be ticked.
        if enforce and widget not in (*_STRUCTURED, "checkbox"):
            attrs["required"] = ""
        return attrs

    def select_options(self, node: Schema, required: bool) -> list[tuple[str, str]]:
        options = [
            (scalar_text(value), label)
            for value, label in choices(node, self.root) or []
        ]
        if not required or "default" not in node:
            options.insert(0, ("", "Choose one" if required else "(none)"))
        return options

    def add_entries(
        self,
        list_field: FormField,
        node: Schema,
        path: list[str],
        refs: tuple[str, ...],
    ) -> None:
        raw_items = node.get("items")
        if isinstance(raw_items, dict) and isinstance(raw_items.get("$ref"), str):
            refs = (*refs, raw_items["$ref"])
        item = item_schema(node, 0, self.root)
        item_title = item.get("title")
        entry_label = str(item_title) if item_title else f"{list_field.label}, entry"

        value = list_field.value
        items = value if isinstance(value, list) else ([] if value is None else [value])
        blanks = max(0, self.extra_items.get(list_field.name, 0))
        for position, item_value in enumerate([*items, *[None] * blanks]):
            list_field.children.append(
                self.entry(
                    list_field, item, path, str(position), item_value, entry_label, refs
                )
            )
        list_field.item_template = self.entry(
            list_field, item, path, INDEX_PLACEHOLDER, None, entry_label, refs
        )

    def entry(
        self,
        list_field: FormField,
        item: Schema,
        path: list[str],
        index: str,
        value: Any,
        label: str,
        refs: tuple[str, ...],
    ) -> FormField:
        entry_path = [*path, index]
        entry_name = ".".join(entry_path)

        if list_field.widget == "group_list":
            return FormField(
                name=entry_name,
                id=self.new_id(entry_name),
                label=label,
                widget="group",
                value=value,
                children=self.fields_of(
                    item, value, entry_path, enforce=False, refs=refs
                ),
                path=entry_name,
                index=index,
            )

        widget = self.widget(item, entry_path, refs)
        options: list[tuple[str, str]] = []
        if widget == "checkbox":
            # A repeated name is one item per value, so a hidden `false` before
            # a box would become an item of its own: entries choose instead.
            widget = "select"
            options = [("true", "Yes"), ("false", "No")]
        elif widget == "select":
            options = self.select_options(item, required=True)
        entry_id = f"{list_field.id}-{index}"
        self.ids.add(entry_id)
        return FormField(
            name=list_field.name,
            id=entry_id,
            label=label,
            widget=widget,
            value=value,
            options=options,
            attrs=self.attrs(item, widget, enforce=False),
            path=entry_name,
            index=index,
        )

    def new_id(self, name: str) -> str:
        base = "field-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "x")
        candidate, suffix = base, 2
        while candidate in self.ids:
            candidate, suffix = f"{base}--{suffix}", suffix + 1
        self.ids.add(candidate)
        return candidate


class _MissingValue:
    pass


_MISSING_VALUE: Any = _MissingValue()


def _number_attrs(node: Schema, widget: str) -> dict[str, str]:
    attrs = {"step": "1" if widget == "integer" else "any"}
    multiple = node.get("multipleOf")
    if _is_number(multiple):
        attrs["step"] = scalar_text(multiple)

    for keyword, attribute in (("minimum", "min"), ("maximum", "max")):
        if _is_number(node.get(keyword)):
            attrs[attribute] = scalar_text(node[keyword])
    # A whole number above an exclusive bound of 4 starts at 5; for numbers the
    # browser has no such attribute and validation says it instead.
    if widget == "integer":
        low, high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
        if isinstance(low, int) and not isinstance(low, bool):
            attrs["min"] = str(low + 1)
        if isinstance(high, int) and not isinstance(high, bool):
            attrs["max"] = str(high - 1)
    return attrs


def _text_attrs(node: Schema, widget: str) -> dict[str, str]:
    attrs = {}
    for keyword, attribute in (("minLength", "minlength"), ("maxLength", "maxlength")):
        if isinstance(node.get(keyword), int):
            attrs[attribute] = str(node[keyword])

    pattern = node.get("pattern")
    if isinstance(pattern, str) and widget != "textarea":
        attrs["pattern"] = _html_pattern(pattern)
    if widget == "password":
        attrs["autocomplete"] = "off"  # a flow's secret, not the user's password
    return attrs


def _html_pattern(pattern: str) -> str:
    """A JSON Schema pattern as the HTML attribute means it: the HTML one must
    match the whole value, the schema's anywhere in it."""
    if (
        pattern.startswith("^")
        and pattern.endswith("$")
        and not pattern.endswith("\\$")
    ):
        return pattern[1:-1]
    return f".*(?:{pattern}).*"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _display_text(widget: str, value: Any) -> str:
    if value is None or widget in ("group", "group_list", "list", "checkboxes"):
        return ""
    if widget == "json":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return value  # plain text reads back as itself
        return json.dumps(value, indent=2, ensure_ascii=False)
    if widget == "datetime" and isinstance(value, str):
        return _local_date_time(value)
    if widget == "time" and isinstance(value, str):
        return _local_time(value)
    return scalar_text(value)


def _local_date_time(value: str) -> str:
    """An RFC 3339 date-time as `<input type="datetime-local">` shows it: in UTC,
    which is how coercion reads the input's value back."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return _drop_zero_fraction(parsed.isoformat(timespec="milliseconds"))


def _local_time(value: str) -> str:
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        moment = datetime.combine(date(2000, 1, 1), parsed).astimezone(UTC)
        parsed = moment.time()
    return _drop_zero_fraction(parsed.isoformat(timespec="milliseconds"))


def _drop_zero_fraction(text: str) -> str:
    return text.removesuffix(".000")


def _attach_errors(form: Form, errors: list[FieldError]) -> None:
    """Put each message beside the field it names (or the nearest enclosing
    field shown) and list them all for the error summary."""
    by_path = {form_field.path: form_field for form_field in form.walk()}
    messages: dict[str, list[str]] = {}
    unplaced = []
    for error in errors:
        target = _nearest_field(by_path, error.field)
        if target is None:
            unplaced.append(error.message)
        else:
            messages.setdefault(target.path, []).append(error.message)

    form.errors = [("", "", message) for message in unplaced]
    for form_field in form.walk():
        if form_field.path in messages:
            form_field.error = " ".join(dict.fromkeys(messages[form_field.path]))
            label = f"{form_field.label} {form_field.number}".strip()
            form.errors.append((form_field.id, label, form_field.error))


def _nearest_field(by_path: dict[str, FormField], path: str) -> FormField | None:
    segments = path.split(".") if path else []
    while segments:
        found = by_path.get(".".join(segments))
        if found is not None:
            return found
        segments.pop()
    return None
