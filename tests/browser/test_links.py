"""Links into the launch form: pre-filling by DESIGN.md's conversion table,
starting at once where the flow allows it, and signing in on the way."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import PASSWORD, Site
from tests.browser.helpers import RUN_URL, result_data

pytestmark = pytest.mark.browser

WIDGETS = "/interactive-flows/widgets"


@pytest.mark.parametrize(
    ("query", "label", "value"),
    [
        pytest.param("title=ACME%20GmbH", "Title", "ACME GmbH", id="string"),
        pytest.param("copies=5", "Copies", "5", id="integer"),
        pytest.param("price=9.5", "Price", "9.5", id="number"),
        pytest.param("address.city=Berlin", "City", "Berlin", id="object-dotted"),
        pytest.param('address={"city":"Berlin"}', "City", "Berlin", id="object-json"),
    ],
)
def test_link_fills_a_scalar_field(
    page: Page, query: str, label: str, value: str
) -> None:
    page.goto(f"{WIDGETS}?{query}")

    expect(page.get_by_label(label)).to_have_value(value)
    expect(page.locator("[data-error-summary]")).to_have_count(0)


@pytest.mark.parametrize("word", ["true", "1", "yes", "on", "TRUE"])
def test_link_ticks_a_checkbox(page: Page, word: str) -> None:
    page.goto(f"{WIDGETS}?urgent={word}")

    expect(page.get_by_role("switch", name="Urgent")).to_be_checked()


@pytest.mark.parametrize("word", ["false", "0", "no", "off"])
def test_link_leaves_a_checkbox_unticked(page: Page, word: str) -> None:
    page.goto(f"{WIDGETS}?urgent={word}")

    expect(page.get_by_role("switch", name="Urgent")).not_to_be_checked()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("tags=a&tags=b", id="repeated"),
        pytest.param("tags=a,b", id="comma"),
        pytest.param(quote('tags=["a","b"]', safe="="), id="json"),
    ],
)
def test_link_fills_a_list(page: Page, query: str) -> None:
    page.goto(f"{WIDGETS}?{query}")

    tags = page.get_by_role("group", name="Tags")
    expect(tags.get_by_role("textbox")).to_have_count(2)
    expect(tags.get_by_role("textbox", name="Tags, entry 1")).to_have_value("a")
    expect(tags.get_by_role("textbox", name="Tags, entry 2")).to_have_value("b")


def test_link_fills_choices_and_lists_of_objects(page: Page) -> None:
    page.goto(f"{WIDGETS}?days=mon&days=wed&lines.0.sku=A-1&lines.0.qty=2&size=l")

    days = page.get_by_role("group", name="Days")
    expect(days.get_by_role("checkbox", name="mon")).to_be_checked()
    expect(days.get_by_role("checkbox", name="tue")).not_to_be_checked()
    expect(days.get_by_role("checkbox", name="wed")).to_be_checked()
    entry = page.get_by_role("group", name="Order lines, entry 1")
    expect(entry.get_by_label("SKU")).to_have_value("A-1")
    expect(entry.get_by_label("Quantity")).to_have_value("2")
    expect(page.get_by_label("Size")).to_have_value("l")


def test_link_with_start_flow_starts_with_every_conversion(page: Page) -> None:
    page.goto(
        f"{WIDGETS}?title=ACME%20GmbH&copies=5&price=9.5&urgent=yes&tags=a,b"
        "&days=tue&address.city=Berlin&lines.0.sku=A&lines.1.sku=B&lines.1.qty=4"
        "&utm_source=mail&start_flow=true"
    )

    expect(page).to_have_url(RUN_URL)
    assert result_data(page) == {
        "title": "ACME GmbH",
        "copies": 5,
        "price": 9.5,
        "urgent": True,
        "tags": ["a", "b"],
        "days": ["tue"],
        "address": {"city": "Berlin"},
        "lines": [{"sku": "A"}, {"sku": "B", "qty": 4}],
    }


def test_link_with_start_flow_is_refused_where_not_allowed(page: Page) -> None:
    page.goto("/interactive-flows/needs-customer?customer=ACME&start_flow=true")

    expect(page).to_have_url(re.compile(r"/interactive-flows/needs-customer\?"))
    expect(page.get_by_label("Customer name")).to_have_value("ACME")
    expect(
        page.get_by_role("status").filter(has_text="starts only when you press")
    ).to_be_visible()

    page.get_by_role("button", name="Start Flow").click()
    expect(page).to_have_url(RUN_URL)


def test_link_with_start_flow_and_missing_data_shows_the_form(page: Page) -> None:
    page.goto(f"{WIDGETS}?copies=0&start_flow=true")

    expect(page).to_have_url(re.compile(r"/interactive-flows/widgets\?"))
    summary = page.locator("[data-error-summary]")
    expect(summary.get_by_role("link")).to_have_count(2)  # title and copies
    expect(page.get_by_label("Copies")).to_have_value("0")


def test_prefill_link_does_not_complain_about_empty_fields(page: Page) -> None:
    page.goto(f"{WIDGETS}?copies=2")

    expect(page.locator("[data-error-summary]")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Title")).not_to_have_attribute(
        "aria-invalid", "true"
    )


def test_prefill_link_reports_a_value_it_cannot_use(page: Page) -> None:
    page.goto(f"{WIDGETS}?copies=many")

    expect(page.get_by_label("Copies")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[data-error-summary]").get_by_role("link")).to_have_count(1)


def test_signed_out_visitor_returns_to_the_link_after_signing_in(
    context: BrowserContext, site: Site
) -> None:
    link = f"{WIDGETS}?title=Back%20again&tags=x&tags=y&start_flow=true"
    page = context.new_page()

    page.goto(link)

    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(RUN_URL)
    data = result_data(page)
    assert data == {"title": "Back again", "tags": ["x", "y"]}
