"""What a browser would post for a launch form: from the form model, and from the
rendered HTML, so tests can feed either into coerce_params."""

from __future__ import annotations

import functools
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from flowdesk.inputs import Form, FormField

TEMPLATES = Path(__file__).parents[2] / "src" / "flowdesk" / "web" / "templates"


@functools.cache
def template_environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)


def render(form: Form) -> str:
    page = template_environment().from_string(
        '{% import "_form_fields.html" as forms %}'
        "{{ forms.render_error_summary(form) }}"
        "<form>{{ forms.render_form(form) }}</form>"
    )
    return page.render(form=form)


def posted_pairs(form: Form) -> list[tuple[str, str]]:
    """The pairs the form model says a browser posts, submitted untouched."""
    pairs: list[tuple[str, str]] = []
    for form_field in form.fields:
        _post(form_field, pairs)
    return pairs


def _post(form_field: FormField, pairs: list[tuple[str, str]]) -> None:
    widget = form_field.widget
    if widget == "group":
        for child in form_field.children:
            _post(child, pairs)
    elif widget == "checkbox":
        pairs.append((form_field.name, "false"))
        if form_field.checked:
            pairs.append((form_field.name, "true"))
    elif widget == "checkboxes":
        pairs.append((form_field.name, "[]"))
        chosen = form_field.selected
        pairs += [
            (form_field.name, value)
            for value, _ in form_field.options
            if value in chosen
        ]
    elif widget in ("list", "group_list"):
        pairs.append((form_field.name, "[]"))
        for entry in form_field.children:
            _post(entry, pairs)
    elif widget == "select":
        values = [value for value, _ in form_field.options]
        chosen = [value for value in values if value in form_field.selected]
        # A select with nothing marked selected posts its first option.
        pairs.append((form_field.name, chosen[0] if chosen else values[0]))
    else:
        pairs.append((form_field.name, form_field.text))


class _SuccessfulControls(HTMLParser):
    """Collects the controls a browser submits, in document order, leaving out
    <template> contents and buttons (none is the submitter)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pairs: list[tuple[str, str]] = []
        self.in_template = 0
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.option_text: list[str] | None = None
        self.textarea: str | None = None
        self.textarea_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "template":
            self.in_template += 1
        if self.in_template:
            return
        if tag == "input" and "name" in values:
            kind = values.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in values:
                    self.pairs.append((values["name"], values.get("value", "on")))
            else:
                self.pairs.append((values["name"], values.get("value", "")))
        elif tag == "select":
            self.select = values.get("name")
            self.options = []
        elif tag == "option" and self.select is not None:
            self.options.append((values.get("value", ""), "selected" in values))
        elif tag == "textarea":
            self.textarea = values.get("name")
            self.textarea_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.in_template -= 1
        if self.in_template:
            return
        if tag == "select" and self.select is not None:
            chosen = [value for value, selected in self.options if selected]
            fallback = [value for value, _ in self.options[:1]]
            self.pairs.append((self.select, (chosen or fallback or [""])[0]))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = "".join(self.textarea_text)
            # The HTML parser drops one line break right after <textarea>.
            self.pairs.append((self.textarea, text.removeprefix("\n")))
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea is not None and not self.in_template:
            self.textarea_text.append(data)


def browser_pairs(html: str) -> list[tuple[str, str]]:
    """The pairs a browser would post for rendered markup, submitted untouched."""
    parser = _SuccessfulControls()
    parser.feed(html)
    parser.close()
    return parser.pairs
