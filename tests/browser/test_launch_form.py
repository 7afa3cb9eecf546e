"""The launch form in a browser: a widget for every kind of field, starting a
run with what was typed, validation before the run, and the form without
JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import RUN_URL, result_data, wait_for_state

pytestmark = pytest.mark.browser


def fill_every_widget(page: Page) -> None:
    """Fill the widgets flow's form the way a user would, lists included."""
    page.get_by_label("Title").fill("Quarterly")
    page.get_by_label("Notes").fill("Line one\nLine two")
    page.get_by_label("Contact email").fill("ada@example.com")
    page.get_by_label("Due date").fill("2026-12-24")
    page.get_by_label("Copies").fill("3")
    page.get_by_label("Price").fill("9.5")
    page.get_by_role("switch", name="Urgent").check()
    page.get_by_label("Size").select_option(label="Medium")

    tags = page.get_by_role("group", name="Tags")
    for word in ("red", "blue", "green"):
        tags.get_by_role("button", name="Add an entry to Tags").click()
        tags.get_by_role("textbox").last.fill(word)
    tags.get_by_role("button", name="Remove Tags, entry 3").click()

    days = page.get_by_role("group", name="Days")
    days.get_by_role("checkbox", name="mon").check()
    days.get_by_role("checkbox", name="wed").check()

    address = page.get_by_role("group", name="Address")
    address.get_by_label("City").fill("Berlin")
    address.get_by_label("Postal code").fill("10115")

    lines = page.get_by_role("group", name="Order lines", exact=True)
    lines.get_by_role("button", name="Add an entry to Order lines").click()
    first = page.get_by_role("group", name="Order lines, entry 1")
    first.get_by_label("SKU").fill("A-1")
    first.get_by_label("Quantity").fill("2")


EVERY_WIDGET_DATA = {
    "title": "Quarterly",
    "notes": "Line one\nLine two",
    "contact": "ada@example.com",
    "due": "2026-12-24",
    "copies": 3,
    "price": 9.5,
    "urgent": True,
    "size": "m",
    "tags": ["red", "blue"],
    "days": ["mon", "wed"],
    "address": {"city": "Berlin", "zip": "10115"},
    "lines": [{"sku": "A-1", "qty": 2}],
}


def test_every_widget_is_the_right_control(page: Page) -> None:
    page.goto("/interactive-flows/widgets")

    expect(page.get_by_role("textbox", name="Title")).to_have_attribute("type", "text")
    assert page.get_by_label("Notes").evaluate("e => e.tagName") == "TEXTAREA"
    expect(page.get_by_text("A few lines for the team.")).to_be_visible()
    expect(page.get_by_label("Contact email")).to_have_attribute("type", "email")
    expect(page.get_by_label("Due date")).to_have_attribute("type", "date")
    copies = page.get_by_role("spinbutton", name="Copies")
    expect(copies).to_have_attribute("step", "1")
    expect(page.get_by_role("spinbutton", name="Price")).to_have_attribute(
        "step", "any"
    )
    expect(page.get_by_role("switch", name="Urgent")).not_to_be_checked()
    size = page.get_by_role("combobox", name="Size")
    options = size.locator("option").all_inner_texts()
    assert [text for text in options if text != "(none)"] == [
        "Small",
        "Medium",
        "Large",
    ]
    expect(page.get_by_role("group", name="Tags")).to_be_visible()
    days = page.get_by_role("group", name="Days")
    expect(days.get_by_role("checkbox")).to_have_count(3)
    address = page.get_by_role("group", name="Address")
    expect(address.get_by_role("textbox")).to_have_count(2)
    expect(page.get_by_role("group", name="Order lines", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Start Flow")).to_be_visible()


def test_every_widget_reaches_the_run_as_typed(page: Page) -> None:
    page.goto("/interactive-flows/widgets")
    fill_every_widget(page)

    page.get_by_role("button", name="Start Flow").click()

    data = result_data(page)
    data["notes"] = data["notes"].replace("\r\n", "\n")  # forms post CRLF
    assert data == EVERY_WIDGET_DATA


def test_list_entries_are_added_and_removed_in_the_page(page: Page) -> None:
    page.goto("/interactive-flows/widgets")
    lines = page.get_by_role("group", name="Order lines", exact=True)

    add = lines.get_by_role("button", name="Add an entry to Order lines")
    add.click()
    add.click()
    page.get_by_role("group", name="Order lines, entry 2").get_by_label("SKU").fill("B")
    lines.get_by_role("button", name="Remove Order lines, entry 1").click()

    only = page.get_by_role("group", name="Order lines, entry 1")
    expect(only.get_by_label("SKU")).to_have_value("B")
    expect(page.get_by_role("group", name="Order lines, entry 2")).to_have_count(0)
    assert page.url.endswith("/interactive-flows/widgets"), "no round trip"


def test_missing_required_data_is_reported_before_any_run(page: Page) -> None:
    page.goto("/interactive-flows/widgets")
    page.get_by_label("Copies").fill("0")
    page.get_by_label("City").fill("Berlin")

    page.get_by_role("button", name="Start Flow").click()

    expect(page).to_have_url(re.compile(r"/interactive-flows/widgets/runs$"))
    summary = page.locator("[data-error-summary]")
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(2)
    title_link = summary.get_by_role("link").filter(has_text="Title")
    expect(title_link).to_have_attribute("href", "#field-title")

    title = page.get_by_role("textbox", name="Title")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(title).to_have_accessible_description(re.compile("Title"))
    copies = page.get_by_label("Copies")
    expect(copies).to_have_value("0")  # kept as typed
    expect(copies).to_have_accessible_description(re.compile("1"))
    expect(page.get_by_label("City")).to_have_value("Berlin")

    # Correcting the form starts the run.
    title.fill("Fixed")
    copies.fill("2")
    page.get_by_role("button", name="Start Flow").click()
    data = result_data(page)
    assert data["title"] == "Fixed" and data["copies"] == 2


def test_wrong_values_are_explained_beside_their_fields(page: Page) -> None:
    page.goto("/interactive-flows/needs-customer")
    page.get_by_label("Customer name").fill("A")
    page.get_by_label("Number of items").fill("0")

    page.get_by_role("button", name="Start Flow").click()

    customer_error = page.locator("#field-customer-error")
    items_error = page.locator("#field-items-error")
    expect(customer_error).to_be_visible()
    expect(items_error).to_be_visible()
    expect(page.get_by_label("Customer name")).to_have_value("A")
    summary = page.locator("[data-error-summary]")
    expect(summary.get_by_role("link")).to_have_count(2)


def test_flow_without_input_needs_only_start_flow(page: Page) -> None:
    page.goto("/interactive-flows/no-input")

    expect(page.get_by_text("This flow requires no input data")).to_be_visible()
    page.get_by_role("button", name="Start Flow").click()

    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")


def test_launch_page_links_to_past_runs(page: Page) -> None:
    page.goto("/interactive-flows/no-input")

    page.get_by_role("link", name="Your past runs of this flow").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Your past runs of Ping the team"
    )


def test_launch_page_fits_a_phone_screen(page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/interactive-flows/widgets")

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    start = page.get_by_role("button", name="Start Flow")
    start.scroll_into_view_if_needed()
    box = start.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375


def test_form_works_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/interactive-flows/widgets")
    expect(page.get_by_role("button", name="Copy Link")).to_be_hidden()

    page.get_by_label("Title").fill("No script")
    page.get_by_role("button", name="Add an entry to Tags").click()  # a round trip
    expect(page.get_by_label("Title")).to_have_value("No script")
    page.get_by_role("textbox", name="Tags, entry 1").fill("plain")
    page.get_by_role("button", name="Add an entry to Tags").click()
    page.get_by_role("textbox", name="Tags, entry 2").fill("html")
    page.get_by_role("button", name="Remove Tags, entry 1").click()
    expect(page.get_by_role("textbox", name="Tags, entry 1")).to_have_value("html")

    page.get_by_role("button", name="Start Flow").click()

    expect(page).to_have_url(RUN_URL)
    # The page refreshes itself (meta refresh) until the run has ended.
    wait_for_state(page, "Succeeded")
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
