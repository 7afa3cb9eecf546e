"""A flow whose input schema changes: past runs keep what they ran with, old
links drop fields that are gone, and new required fields start empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import FLOWS, Site
from tests.browser.helpers import RUN_URL, wait_for_state

pytestmark = pytest.mark.browser

OLD_LINK = "/interactive-flows/evolving?customer=ACME&region=North"


def version_two(folder: Path) -> Path:
    """The evolving flow with `region` gone and a required `priority` added."""
    text = (FLOWS / "evolving.yaml").read_text()
    text = text.replace(
        "region: {type: string, title: Region}",
        "priority: {type: integer, title: Priority, minimum: 1}",
    ).replace("required: [customer]", "required: [customer, priority]")
    path = folder / "evolving.yaml"
    path.write_text(text)
    return path


def test_schema_change_keeps_history_and_old_links_working(
    page: Page, site: Site, tmp_path: Path
) -> None:
    page.goto(OLD_LINK + "&start_flow=true")
    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")
    old_run = page.url

    site.cli("flows", "apply", str(version_two(tmp_path)))

    # The past run shows the inputs and version it ran with.
    page.goto(old_run)
    inputs = page.locator(".input-list")
    expect(inputs).to_contain_text("Region")
    expect(inputs).to_contain_text("North")
    expect(page.locator(".run-meta")).to_contain_text("flow version 1")

    # The old link fills what still exists; the new required field is empty
    # and not (yet) an error.
    page.goto(OLD_LINK)
    expect(page.get_by_label("Customer")).to_have_value("ACME")
    expect(page.get_by_label("Region")).to_have_count(0)
    priority = page.get_by_label("Priority")
    expect(priority).to_have_value("")
    expect(priority).not_to_have_attribute("aria-invalid", "true")

    # Starting from the old link asks for the new field instead of failing.
    page.goto(OLD_LINK + "&start_flow=true")
    expect(page.get_by_label("Priority")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Priority").fill("2")
    page.get_by_role("button", name="Start Flow").click()
    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")
    expect(page.locator(".run-meta")).to_contain_text("flow version 2")

    # Rerun of the old run cannot reuse inputs that no longer fit: the form
    # comes back with them and says what is missing.
    page.goto(old_run)
    page.get_by_role("button", name="Rerun").click()
    expect(page.get_by_label("Customer")).to_have_value("ACME")
    expect(page.get_by_label("Priority")).to_have_attribute("aria-invalid", "true")

    # New Inputs of the old run: the same, without the error until started.
    page.goto(old_run)
    page.get_by_role("link", name="New Inputs").click()
    expect(page.get_by_label("Customer")).to_have_value("ACME")
    expect(page.get_by_label("Region")).to_have_count(0)
