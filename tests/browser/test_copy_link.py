"""Copy Link: the form's current values as a link that restores the form, with
a visible confirmation, and a field to copy from where the clipboard fails."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from flowdesk.flows.definition import load_file
from flowdesk.inputs import to_params
from tests.browser.conftest import FLOWS, Site
from tests.browser.helpers import RUN_URL, result_data
from tests.browser.test_launch_form import EVERY_WIDGET_DATA, fill_every_widget

pytestmark = pytest.mark.browser

WIDGETS_SCHEMA = load_file(FLOWS / "widgets.yaml").input_schema

# Every control of the form with its state, in page order: what "restores the
# form exactly" compares.
READ_FORM = """
form => Array.from(form.elements)
  .filter(e => e.name && !e.name.startsWith("_") && e.type !== "hidden")
  .map(e => [e.name, e.type === "checkbox" ? String(e.checked) : e.value])
"""


@pytest.fixture
def clipboard_page(context: BrowserContext, site: Site) -> Page:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    site.sign_in(context, "alice")
    return context.new_page()


def form_state(page: Page) -> list[Any]:
    return page.locator("#launch-form").evaluate(READ_FORM)  # type: ignore[no-any-return]


def copy_link(page: Page) -> str:
    page.get_by_role("button", name="Copy Link").click()
    expect(page.locator("#copy-link-status")).to_have_text("Link copied")
    return page.evaluate("navigator.clipboard.readText()")  # type: ignore[no-any-return]


def test_copy_link_round_trip_restores_every_field(
    clipboard_page: Page, site: Site
) -> None:
    page = clipboard_page
    page.goto("/interactive-flows/widgets")
    fill_every_widget(page)
    filled = form_state(page)

    link = copy_link(page)

    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == site.url
    assert parts.path == "/interactive-flows/widgets"
    pairs = parse_qsl(parts.query)
    assert pairs[-1] == ("start_flow", "true")  # the flow allows link_click
    assert ("urgent", "true") in pairs
    assert ("tags", "red") in pairs and ("tags", "blue") in pairs
    assert ("address.city", "Berlin") in pairs
    assert ("lines.0.sku", "A-1") in pairs
    assert not any(value == "" for _name, value in pairs), "empty values skipped"
    assert not any(name.startswith("_") for name, _value in pairs)

    # Without start_flow the link opens the form, exactly as it was.
    page.goto(link.replace("&start_flow=true", ""))
    assert form_state(page) == filled

    # With it, the run starts with the same data.
    page.goto(link)
    expect(page).to_have_url(RUN_URL)
    data = result_data(page)
    data["notes"] = data["notes"].replace("\r\n", "\n")
    assert data == EVERY_WIDGET_DATA


def test_copy_link_writes_what_the_server_writes(clipboard_page: Page) -> None:
    page = clipboard_page
    page.goto(
        "/interactive-flows/widgets?title=A%2CB&tags=one%2Ctwo&tags=three&urgent=false"
    )
    tags = page.get_by_role("group", name="Tags")
    tags.get_by_role("button", name="Remove Tags, entry 2").click()

    link = copy_link(page)
    page.goto(link)

    data = result_data(page)
    assert data["tags"] == ["one,two"]  # a lone entry with a comma stays whole
    pairs = parse_qsl(urlsplit(link).query)
    assert pairs == [*to_params(WIDGETS_SCHEMA, data), ("start_flow", "true")]


def test_copy_link_without_a_clipboard_shows_the_link_to_copy(
    context: BrowserContext, site: Site
) -> None:
    context.add_init_script(
        "navigator.clipboard.writeText = () => Promise.reject(new Error('denied'));"
    )
    site.sign_in(context, "alice")
    page = context.new_page()
    page.goto("/interactive-flows/widgets?title=Manual")

    page.get_by_role("button", name="Copy Link").click()

    field = page.get_by_role("textbox", name="Link to this form")
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    expect(field).to_have_attribute("readonly", "")
    link = urlsplit(field.input_value())
    assert link.path == "/interactive-flows/widgets"
    assert parse_qsl(link.query)[0] == ("title", "Manual")
    assert parse_qsl(link.query)[-1] == ("start_flow", "true")
    selected = page.evaluate(
        "() => { const f = document.activeElement;"
        " return f.value.slice(f.selectionStart, f.selectionEnd); }"
    )
    assert selected == field.input_value()
    expect(page.locator("#copy-link-status")).to_contain_text(
        "did not let flowdesk copy"
    )


def test_copy_link_is_only_offered_where_the_flow_shares_links(page: Page) -> None:
    page.goto("/interactive-flows/slow-report")

    expect(page.get_by_role("button", name="Copy Link")).to_have_count(0)


def test_copy_link_carries_start_flow_only_with_link_click(
    clipboard_page: Page,
) -> None:
    page = clipboard_page
    page.goto("/interactive-flows/needs-customer?customer=ACME")
    assert urlsplit(copy_link(page)).query == "customer=ACME&items=1"

    page.goto("/interactive-flows/no-input")
    assert urlsplit(copy_link(page)).query == "start_flow=true"


def test_copy_link_is_hidden_without_javascript(page_without_js: Page) -> None:
    page_without_js.goto("/interactive-flows/widgets")

    expect(page_without_js.get_by_role("button", name="Copy Link")).to_be_hidden()
