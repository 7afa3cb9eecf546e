"""Markup from users, links and flows never runs as script in flowdesk's origin.

Every planted snippet tries to raise a dialog and to set `window.__xss`; each
page is checked for both after it has loaded and settled. The flow's own HTML
result runs in a sandboxed frame with an opaque origin, where it cannot reach
the app's page, cookies or storage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from tests.browser.conftest import PASSWORD, SESSION_COOKIE, Site
from tests.browser.helpers import RUN_URL, wait_for_state

pytestmark = pytest.mark.browser

GROUP = "xss-testers"


def snippet(where: str) -> str:
    """Markup that, if a browser ever ran it, would say so in two ways."""
    return f"<img src=x onerror=\"alert('{where}');window.__xss='{where}'\">"


def script(where: str) -> str:
    return f"<script>alert('{where}');window.__xss='{where}'</script>"


BREAKOUT = f'"><script>alert(1);window.__xss="param"</script>{snippet("param")}'

PROBE = {
    "id": "xss-probe",
    "name": f"Probe {snippet('name')}",
    "location": f"Security/{script('location')}",
    "tags": ["<svg onload=\"window.__xss='tag'\">"],
    "description": f"Described {snippet('description')}",
    "interactive": {
        "enabled": True,
        "allowed_triggers": ["link_click"],
        "link_sharing": True,
        "groups": [GROUP],
        "input_schema": {
            "type": "object",
            "properties": {
                "customer": {
                    "type": "string",
                    "title": f"Customer {snippet('title')}",
                    "description": f"Hint {script('hint')}",
                    "default": f'"><b>{script("default")}',
                },
                "size": {
                    "type": "string",
                    "enum": [snippet("enum"), "plain"],
                },
            },
        },
    },
    "steps": [
        {"status": "Working for {{ inputs.customer }} " + snippet("status")},
        {"log": "Log for {{ inputs.customer }} " + script("log")},
        {
            "html": (
                '<h1 id="greeting">Hello {{ inputs.customer }}</h1>'
                "<img src=x onerror=\"alert('result');top.__xss='result'\">"
                "<script>alert('frame script');"
                "try { top.__xss = 'frame' } catch (e) {}"
                "try { parent.document.body.dataset.pwned = '1' } catch (e) {}"
                "document.body.dataset.ran = '1';</script>"
            )
        },
    ],
}


@pytest.fixture(scope="module")
def hostile(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("xss-flows")
    (folder / "xss-probe.json").write_text(json.dumps(PROBE), encoding="utf-8")
    site.cli("flows", "apply", str(folder))
    site.cli(
        "users", "create", "mallory", "--password", PASSWORD, "--scope", "flow:run",
        "--group", GROUP, "--group", snippet("group"),
    )  # fmt: skip
    site.cli(
        "users", "create", "warden", "--password", PASSWORD, "--scope", "admin",
        "--scope", "flow:run",
    )  # fmt: skip
    return site


class Watch:
    """Records every dialog a page (or any frame in it) tries to open."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._record)

    def _record(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_nothing_ran(self) -> None:
        # Long enough for image errors and live updates to have happened.
        self.page.wait_for_timeout(300)
        assert self.dialogs == []
        assert self.page.evaluate("() => window.__xss") is None
        assert self.page.evaluate("() => document.body.dataset.pwned") is None


@pytest.fixture
def mallory(context: BrowserContext, hostile: Site) -> Iterator[Watch]:
    hostile.sign_in(context, "mallory")
    yield Watch(context.new_page())


@pytest.fixture
def warden(context: BrowserContext, hostile: Site) -> Iterator[Watch]:
    hostile.sign_in(context, "warden")
    yield Watch(context.new_page())


def test_xss_flow_texts_show_as_text_in_the_list(mallory: Watch) -> None:
    page = mallory.page
    page.goto("/interactive-flows")

    row = page.get_by_role("row").filter(has_text="Probe <img")
    expect(row).to_contain_text(f"Described {snippet('description')}")
    expect(row).to_contain_text(script("location"))
    mallory.assert_nothing_ran()


def test_xss_launch_form_shows_schema_texts_and_link_values_as_text(
    mallory: Watch,
) -> None:
    page = mallory.page
    page.goto("/interactive-flows/xss-probe?" + urlencode({"customer": BREAKOUT}))

    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Probe {snippet('name')}"
    )
    field = page.get_by_label(f"Customer {snippet('title')}")
    expect(field).to_have_value(BREAKOUT)
    expect(page.get_by_text(f"Hint {script('hint')}")).to_be_visible()
    mallory.assert_nothing_ran()


def test_xss_default_value_with_markup_stays_a_value(mallory: Watch) -> None:
    page = mallory.page
    page.goto("/interactive-flows/xss-probe")

    expect(page.get_by_label(f"Customer {snippet('title')}")).to_have_value(
        f'"><b>{script("default")}'
    )
    mallory.assert_nothing_ran()


def test_xss_started_link_run_page_and_result_stay_inert(mallory: Watch) -> None:
    page = mallory.page
    query = urlencode({"customer": BREAKOUT, "start_flow": "true"})
    page.goto(f"/interactive-flows/xss-probe?{query}")

    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")
    page.locator(".run-log summary").click()
    expect(page.locator(".log-line").filter(has_text="Log for")).to_contain_text(
        f"Log for {BREAKOUT} {script('log')}"
    )
    frame = page.frame_locator("iframe[data-result-frame]")
    expect(frame.locator("#greeting")).to_have_text(f"Hello {BREAKOUT}")
    mallory.assert_nothing_ran()

    # The flow's own markup ran nowhere: not in the frame (its CSP allows only
    # flowdesk's size reporter) and never with the app's origin.
    result = next(f for f in page.frames if f.url.endswith("/result"))
    assert result.evaluate("() => window.origin") == "null"
    assert result.evaluate("() => document.body.dataset.ran") is None


def test_xss_past_runs_and_new_inputs_keep_values_as_text(mallory: Watch) -> None:
    page = mallory.page
    query = urlencode({"customer": BREAKOUT, "start_flow": "true"})
    page.goto(f"/interactive-flows/xss-probe?{query}")
    wait_for_state(page, "Succeeded")

    page.get_by_role("link", name="New Inputs").click()
    expect(page.get_by_label(f"Customer {snippet('title')}")).to_have_value(BREAKOUT)
    page.goto("/interactive-flows/xss-probe/runs")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Probe <img")
    mallory.assert_nothing_ran()


def test_xss_error_pages_show_the_bad_address_as_text(mallory: Watch) -> None:
    page = mallory.page
    response = page.goto("/interactive-flows/" + quote(snippet("flow-id"), safe=""))

    assert response is not None and response.status == 404
    expect(page.get_by_text("There is no flow with the id")).to_contain_text(
        snippet("flow-id")
    )
    mallory.assert_nothing_ran()


def test_xss_sign_in_form_echoes_a_user_name_with_markup_as_text(
    context: BrowserContext, hostile: Site
) -> None:
    context.clear_cookies()
    watch = Watch(context.new_page())
    page = watch.page
    page.goto("/login?next=" + quote("javascript:alert('next')", safe=""))

    page.get_by_label("User name").fill(BREAKOUT)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_have_text(
        "The user name or password is not right."
    )
    expect(page.get_by_label("User name")).to_have_value(BREAKOUT)
    watch.assert_nothing_ran()


def test_xss_admin_pages_show_group_and_token_names_as_text(warden: Watch) -> None:
    page = warden.page
    page.goto("/admin/groups")
    group_cell = page.get_by_role("cell", name=snippet("group"), exact=True)
    expect(group_cell).to_be_visible()

    page.goto("/admin/users/mallory")
    expect(page.get_by_label("Groups")).to_have_value(
        ", ".join(sorted([snippet("group"), GROUP]))
    )

    page.goto("/admin/tokens")
    page.get_by_label("Name").fill(snippet("token"))
    page.get_by_label("User").select_option("warden")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("cell", name=snippet("token"), exact=True)).to_be_visible()
    warden.assert_nothing_ran()


def test_xss_session_cookie_is_out_of_reach_of_page_script(
    context: BrowserContext, hostile: Site
) -> None:
    context.clear_cookies()
    watch = Watch(context.new_page())
    page = watch.page
    page.goto("/login")
    page.get_by_label("User name").fill("mallory")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/interactive-flows$"))

    assert SESSION_COOKIE not in page.evaluate("() => document.cookie")
    stored = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert stored and stored[0]["httpOnly"] and stored[0]["sameSite"] == "Lax"
    policy = page.evaluate(
        "async () => (await fetch('/interactive-flows')).headers"
        ".get('content-security-policy')"
    )
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    watch.assert_nothing_ran()
