"""Flow Settings in Chromium: the dialog's tabs, the Input Schema's live checks
and preview, and what flow users see when a developer changes the settings:
Interactive Flows, Link Click, Link Sharing, and a schema change under an old
link."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.conftest import TIMEOUT_MS, Site
from tests.browser.helpers import RUN_URL, wait_for_state
from tests.support.editor_site import (
    code_editor,
    editor_site,
    ensure_bundle,
    replace_code,
)

pytestmark = pytest.mark.browser

VALID_SCHEMA = """{
  "type": "object",
  "required": ["client"],
  "properties": {
    "client": {"type": "string", "title": "Client name"},
    "rush": {"type": "boolean", "title": "Rush order"}
  }
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ensure_bundle()
    with editor_site(tmp_path_factory.mktemp("settings") / "data") as running:
        yield running


@pytest.fixture
def dev(context: BrowserContext, site: Site) -> Page:
    """A page signed in as dev, a flow developer."""
    site.sign_in(context, "dev")
    return context.new_page()


@pytest.fixture
def alice(browser: Browser, site: Site) -> Iterator[Page]:
    """A page of alice, a flow user with only the Flow Run scope, in a browser
    context of her own."""
    opened = browser.new_context(
        base_url=site.url, viewport={"width": 1280, "height": 900}
    )
    opened.set_default_timeout(TIMEOUT_MS)
    site.sign_in(opened, "alice")
    yield opened.new_page()
    opened.close()


def open_settings(page: Page, flow_id: str, tab: str = "General") -> Locator:
    page.goto(f"/flows/{flow_id}")
    page.get_by_role("button", name="Flow Settings").click()
    dialog = page.get_by_role("dialog", name="Flow Settings")
    expect(dialog).to_be_visible()
    dialog.get_by_role("tab", name=tab).click()
    return dialog


def save(dialog: Locator) -> None:
    page = dialog.page
    dialog.get_by_role("button", name="Save").click()
    expect(
        page.get_by_role("status").filter(has_text="Flow Settings saved")
    ).to_be_visible()


def listed_flows(page: Page) -> Locator:
    page.goto("/interactive-flows")
    return page.locator(".flow-table .flow-name")


def test_dialog_has_the_three_tabs(dev: Page) -> None:
    dialog = open_settings(dev, "shared-report")

    tabs = dialog.get_by_role("tab")
    expect(tabs).to_have_text(["General", "Schedule", "Interactive"])
    expect(dialog.get_by_role("tab", name="General")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(dialog.get_by_role("tabpanel", name="General")).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Shared report")

    dialog.get_by_role("tab", name="General").press("ArrowRight")
    schedule = dialog.get_by_role("tabpanel", name="Schedule")
    expect(schedule).to_be_visible()
    expect(dialog.get_by_role("tabpanel", name="General")).to_be_hidden()
    expect(dialog.get_by_role("tab", name="Schedule")).to_be_focused()

    schedule.get_by_label("Cron expression").fill("30 9 * * 1")
    schedule.get_by_label("Timezone").fill("Europe/Berlin")
    times = schedule.locator("[data-fire-times] li")
    expect(times).to_have_count(5)
    for index in range(5):
        expect(times.nth(index)).to_contain_text(re.compile(r"^Mon .*09:30 CES?T$"))
    schedule.get_by_label("Timezone").fill("Europe/Berln")
    expect(schedule.locator("[data-fire-times]")).to_contain_text("is not known")

    dialog.get_by_role("tab", name="Schedule").press("ArrowRight")
    interactive = dialog.get_by_role("tabpanel", name="Interactive")
    expect(
        interactive.get_by_role("switch", name="Enable Interactive Mode")
    ).to_be_checked()
    expect(code_editor(dev, "Input Schema")).to_be_visible()
    triggers = interactive.get_by_role("group", name="Allowed Triggers")
    expect(triggers.get_by_role("checkbox", name="Link Click")).to_be_checked()
    expect(interactive.get_by_role("switch", name="Link Sharing")).to_be_checked()

    # Cancel forgets what was typed.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    dev.get_by_role("button", name="Flow Settings").click()
    dialog.get_by_role("tab", name="Schedule").click()
    expect(dialog.get_by_label("Cron expression")).to_have_value("")


def test_save_is_disabled_while_the_schema_is_broken(dev: Page) -> None:
    dialog = open_settings(dev, "shared-report", "Interactive")
    save_button = dialog.get_by_role("button", name="Save")
    check = dialog.locator("[data-schema-check]")
    expect(check).to_have_text("The schema is valid.")
    expect(save_button).to_be_enabled()

    replace_code(dev, "Input Schema", '{\n  "type": "object",\n  "properties": \n}')
    expect(save_button).to_be_disabled()
    expect(check).to_contain_text(
        "The text is not valid JSON: Expecting value at line 4, column 1."
    )

    replace_code(dev, "Input Schema", '{"type": "strin"}')
    expect(save_button).to_be_disabled()
    expect(check).to_contain_text("did you mean 'string'")
    box = dev.locator('[data-code-editor="settings-input-schema"]')
    expect(box.locator(".cm-gutter-lint .cm-lint-marker-error")).to_have_count(1)

    replace_code(dev, "Input Schema", "true")
    expect(save_button).to_be_enabled()
    expect(check).to_have_text("The schema is valid.")


def test_preview_follows_the_typed_schema(dev: Page) -> None:
    dialog = open_settings(dev, "shared-report", "Interactive")
    preview = dialog.locator("[data-schema-preview]")
    expect(preview.get_by_label("Customer name")).to_be_visible()

    replace_code(dev, "Input Schema", VALID_SCHEMA)

    expect(preview.get_by_label("Client name")).to_be_visible()
    expect(preview.get_by_role("switch", name="Rush order")).to_be_visible()
    expect(preview.get_by_label("Customer name")).to_have_count(0)

    replace_code(dev, "Input Schema", '{"type": "object", "properties": {')
    # The last valid form stays, marked as out of date.
    expect(dialog.locator(".schema-preview[data-stale]")).to_have_count(1)
    expect(preview.get_by_label("Client name")).to_be_visible()


def test_interactive_mode_decides_what_flow_users_see(dev: Page, alice: Page) -> None:
    expect(listed_flows(alice).filter(has_text="Quiet report")).to_have_count(0)

    dialog = open_settings(dev, "quiet-report", "Interactive")
    dialog.get_by_role("switch", name="Enable Interactive Mode").check()
    save(dialog)

    expect(listed_flows(alice).filter(has_text="Quiet report")).to_have_count(1)
    alice.get_by_role("link", name="Launch").last.click()
    expect(alice.get_by_role("button", name="Start Flow")).to_be_visible()

    dialog = open_settings(dev, "quiet-report", "Interactive")
    dialog.get_by_role("switch", name="Enable Interactive Mode").uncheck()
    save(dialog)

    expect(listed_flows(alice).filter(has_text="Quiet report")).to_have_count(0)
    alice.goto("/interactive-flows/quiet-report")
    expect(alice.get_by_role("heading", name="Page not found")).to_be_visible()
    # Nothing else about the flow changed.
    dialog = open_settings(dev, "quiet-report")
    expect(dialog.get_by_label("Location")).to_have_value("Operations")
    expect(dialog.get_by_label("Tags")).to_have_value("ops")


def test_link_click_and_link_sharing_as_flow_users_meet_them(
    dev: Page, alice: Page
) -> None:
    alice.goto("/interactive-flows/shared-report")
    expect(alice.get_by_role("button", name="Copy Link")).to_be_visible()
    alice.goto("/interactive-flows/shared-report?customer=ACME&start_flow=true")
    expect(alice).to_have_url(RUN_URL)
    wait_for_state(alice, "Succeeded")

    dialog = open_settings(dev, "shared-report", "Interactive")
    dialog.get_by_role("checkbox", name="Link Click").uncheck()
    dialog.get_by_role("switch", name="Link Sharing").uncheck()
    save(dialog)

    alice.goto("/interactive-flows/shared-report?customer=ACME&start_flow=true")
    expect(alice).to_have_url(re.compile(r"/interactive-flows/shared-report\?"))
    expect(alice.get_by_role("status")).to_contain_text("starts only when you press")
    expect(alice.get_by_label("Customer name")).to_have_value("ACME")
    expect(alice.get_by_role("button", name="Copy Link")).to_have_count(0)

    dialog = open_settings(dev, "shared-report", "Interactive")
    dialog.get_by_role("checkbox", name="Link Click").check()
    dialog.get_by_role("switch", name="Link Sharing").check()
    save(dialog)

    alice.goto("/interactive-flows/shared-report?customer=ACME&start_flow=true")
    expect(alice).to_have_url(RUN_URL)


def test_schema_change_under_an_old_link(dev: Page, alice: Page) -> None:
    old_link = "/interactive-flows/evolving-order?customer=ACME"
    alice.goto(old_link + "&start_flow=true")
    expect(alice).to_have_url(RUN_URL)
    old_run = alice.url
    wait_for_state(alice, "Succeeded")

    dialog = open_settings(dev, "evolving-order", "Interactive")
    replace_code(dev, "Input Schema", VALID_SCHEMA)
    expect(
        dialog.locator("[data-schema-preview]").get_by_label("Client name")
    ).to_be_visible()
    save(dialog)

    # The old link opens the new form; its unknown parameter is ignored.
    alice.goto(old_link)
    expect(alice.get_by_label("Client name")).to_have_value("")
    expect(alice.get_by_label("Customer name")).to_have_count(0)
    alice.goto(old_link + "&start_flow=true")
    expect(alice.locator("[data-error-summary]")).to_contain_text(
        "Client name is required"
    )
    expect(alice).not_to_have_url(RUN_URL)

    # The old run keeps its version and its inputs.
    alice.goto(old_run)
    expect(alice.locator(".input-list")).to_contain_text("Customer name")
    expect(alice.locator(".input-list")).to_contain_text("ACME")

    alice.goto("/interactive-flows/evolving-order?client=Bolt&start_flow=true")
    expect(alice).to_have_url(RUN_URL)
