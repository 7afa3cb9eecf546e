"""Keyboard only: from the list to a started run and its result, and the no-JS
default button, without touching the mouse."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import RUN_URL, wait_for_state

pytestmark = pytest.mark.browser


def tab_to(page: Page, accessible_name: str, limit: int = 80) -> None:
    """Press Tab until the focused element has the given accessible name."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.labels?.[0]?.innerText"
            " || e.innerText || '').trim(); }"
        )
        if name.startswith(accessible_name):
            return
    raise AssertionError(f"Tab never reached {accessible_name!r}")


def test_keyboard_alone_launches_a_flow_and_reaches_its_result(page: Page) -> None:
    page.goto("/interactive-flows?q=letters")

    tab_to(page, "Launch")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Customer letter")

    tab_to(page, "Customer name")
    page.keyboard.type("ACME")
    tab_to(page, "Number of items")
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    tab_to(page, "Start Flow")
    page.keyboard.press("Enter")

    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")
    tab_to(page, "Rerun")
    expect(page.get_by_role("button", name="Rerun")).to_be_focused()
    tab_to(page, "New Inputs")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Customer name")).to_have_value("ACME")
    expect(page.get_by_label("Number of items")).to_have_value("3")


def test_enter_in_a_field_starts_the_flow_not_a_list_button(page: Page) -> None:
    page.goto("/interactive-flows/widgets?tags=a")

    page.get_by_label("Title").focus()
    page.keyboard.type("By Enter")
    page.keyboard.press("Enter")

    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")


def test_validation_errors_are_reachable_by_keyboard(page: Page) -> None:
    page.goto("/interactive-flows/needs-customer")

    page.get_by_role("button", name="Start Flow").focus()
    page.keyboard.press("Enter")

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    page.keyboard.press("Tab")
    expect(summary.get_by_role("link").first).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # The link moved the starting point of Tab to the field it names.
    expect(page.get_by_label("Number of items")).to_be_focused()
