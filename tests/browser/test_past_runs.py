"""A flow's past runs in a browser: the user's own runs, newest first, in pages
of 25, each linking to its run page."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import PASSWORD, Site
from tests.browser.helpers import RUN_URL, wait_for_state

pytestmark = pytest.mark.browser

PAGE_SIZE = 25


@pytest.fixture(scope="module")
def past_runs_user(site: Site) -> str:
    """A user of its own, so that runs of other tests do not count."""
    site.cli("users", "create", "paula", "--password", PASSWORD, "--scope", "flow:run")
    return "paula"


def start_runs(site: Site, username: str, count: int) -> list[str]:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        client.cookies.set("flowdesk_session", site.session_cookie(username))
        form = client.get("/interactive-flows/no-input").text
        token = re.search(r'name="_csrf" value="([^"]+)"', form)
        assert token is not None
        ids = []
        for _ in range(count):
            response = client.post(
                "/interactive-flows/no-input/runs", data={"_csrf": token.group(1)}
            )
            assert response.status_code == 303, response.text
            ids.append(response.headers["location"].rsplit("/", 1)[1])
        return ids


def test_past_runs_are_listed_newest_first_in_pages(
    context: BrowserContext, site: Site, past_runs_user: str
) -> None:
    started = start_runs(site, past_runs_user, PAGE_SIZE + 2)
    site.sign_in(context, past_runs_user)
    page = context.new_page()

    page.goto("/interactive-flows/no-input")
    page.get_by_role("link", name="Your past runs of this flow").click()

    rows = page.locator(".runs-table tbody tr")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(rows.first).to_contain_text("Succeeded")
    expect(rows.first).to_contain_text("form")
    links = page.locator(".runs-table tbody a")
    first_page = [link.split("/")[-1] for link in _hrefs(links)]
    assert first_page == list(reversed(started))[:PAGE_SIZE]

    page.get_by_role("link", name="Older runs").click()
    expect(rows).to_have_count(2)
    assert [link.split("/")[-1] for link in _hrefs(links)] == list(reversed(started))[
        PAGE_SIZE:
    ]
    expect(page.get_by_role("link", name="Older runs")).to_have_count(0)

    page.get_by_role("link", name="Newest runs").click()
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/runs/{started[-1]}$"))
    wait_for_state(page, "Succeeded")


def test_past_runs_show_only_the_users_own(page: Page, site: Site) -> None:
    page.goto("/interactive-flows/no-input")
    page.get_by_role("button", name="Start Flow").click()
    expect(page).to_have_url(RUN_URL)
    own = page.url.rsplit("/", 1)[1]
    others = start_runs(site, "fiona", 1)

    page.goto("/interactive-flows/no-input/runs")

    links = _hrefs(page.locator(".runs-table tbody a"))
    assert f"/runs/{own}" in links
    assert f"/runs/{others[0]}" not in links


def _hrefs(links: Locator) -> list[str]:
    return links.evaluate_all(  # type: ignore[no-any-return]
        "links => links.map(link => link.getAttribute('href'))"
    )
