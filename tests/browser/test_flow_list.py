"""The Interactive Flows list in a browser: what each user sees, the filter
and its empty states, and the Launch buttons."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Site

pytestmark = pytest.mark.browser


def test_list_shows_each_flow_with_a_launch_button(page: Page) -> None:
    page.goto("/")

    expect(page).to_have_url(re.compile(r"/interactive-flows$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Interactive Flows")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Interactive Flows")).to_have_attribute(
        "aria-current", "page"
    )
    row = page.get_by_role("row").filter(has_text="Every widget")
    expect(row).to_contain_text("Tests/Forms")
    expect(row).to_contain_text("widgets")

    launch = row.get_by_role("link", name="Launch", exact=True)
    expect(launch).to_have_accessible_description(re.compile("^Every widget"))
    launch.click()

    expect(page).to_have_url(re.compile(r"/interactive-flows/widgets$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Every widget")


def test_list_has_one_launch_button_per_flow_told_apart_by_description(
    page: Page,
) -> None:
    page.goto("/interactive-flows")

    buttons = page.get_by_role("link", name="Launch", exact=True)
    names = [
        buttons.nth(index).get_attribute("aria-describedby")
        for index in range(buttons.count())
    ]
    assert len(names) == buttons.count() >= 6
    assert len(set(names)) == len(names)


def test_group_flows_are_listed_for_members_only(
    context: BrowserContext, site: Site
) -> None:
    page = context.new_page()
    site.sign_in(context, "alice")
    page.goto("/interactive-flows")
    expect(page.get_by_text("Close the books")).to_have_count(0)

    site.sign_in(context, "fiona")
    page.goto("/interactive-flows")
    expect(page.get_by_role("row").filter(has_text="Close the books")).to_be_visible()


def test_filter_by_tag_name_and_location(page: Page) -> None:
    page.goto("/interactive-flows")
    search = page.get_by_role("searchbox", name="Filter by name, location or tag")

    search.fill("reports")
    search.press("Enter")

    expect(page).to_have_url(re.compile(r"\?q=reports$"))
    expect(page.get_by_role("row").filter(has_text="Slow report")).to_be_visible()
    expect(page.get_by_text("Every widget")).to_have_count(0)

    page.get_by_role("searchbox").fill("tests/forms")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Launch", exact=True)).to_have_count(1)


def test_filter_without_match_offers_the_whole_list(page: Page) -> None:
    page.goto("/interactive-flows?q=payroll")

    expect(
        page.get_by_role("heading", name="No flow matches “payroll”")
    ).to_be_visible()
    page.get_by_role("link", name="Show all flows").click()
    expect(page.get_by_role("link", name="Launch", exact=True).first).to_be_visible()


def test_list_works_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/interactive-flows")
    page.get_by_role("searchbox").fill("letters")
    page.get_by_role("button", name="Filter").click()

    expect(page.get_by_role("row").filter(has_text="Customer letter")).to_be_visible()
    expect(page.get_by_role("link", name="Launch", exact=True)).to_have_count(1)


def test_list_fits_a_phone_screen(page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/interactive-flows")

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(
        page.get_by_role("link", name="Launch", exact=True).first
    ).to_be_in_viewport()
