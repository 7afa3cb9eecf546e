"""The flow editor in Chromium: creating a flow, live validation at the line,
saving versions, the outline, and diff and restore in the history."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import Site
from tests.support.editor_site import (
    append_code,
    code_editor,
    editor_site,
    ensure_bundle,
    replace_code,
)

pytestmark = pytest.mark.browser

SCRATCH = "/flows/scratch"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ensure_bundle()
    with editor_site(tmp_path_factory.mktemp("editor") / "data") as running:
        yield running


@pytest.fixture
def dev(context: BrowserContext, site: Site) -> Page:
    """A page signed in as dev, a flow developer."""
    site.sign_in(context, "dev")
    return context.new_page()


def notice(page: Page, text: str) -> Locator:
    return page.get_by_role("status").filter(has_text=text)


def test_flows_page_lists_flows_by_folder_and_creates_one(dev: Page) -> None:
    dev.goto("/flows")

    expect(dev.get_by_role("heading", name="Playground")).to_be_visible()
    expect(dev.get_by_role("link", name="Shared report")).to_be_visible()

    dev.get_by_text("New flow", exact=True).click()
    dev.get_by_label("Flow id").fill("made-in-browser")
    dev.get_by_role("button", name="Create flow").click()

    expect(dev).to_have_url(re.compile(r"/flows/made-in-browser\?created=1$"))
    expect(dev.get_by_role("heading", level=1)).to_have_text("Made in browser")
    expect(code_editor(dev, "Definition")).to_contain_text("id: made-in-browser")

    dev.goto("/flows")
    dev.get_by_text("New flow", exact=True).click()
    dev.get_by_label("Flow id").fill("made-in-browser")
    dev.get_by_role("button", name="Create flow").click()
    expect(dev.get_by_role("alert")).to_contain_text(
        "A flow with the id 'made-in-browser' already exists"
    )


def test_editor_checks_the_text_as_it_is_typed(dev: Page) -> None:
    dev.goto(SCRATCH)
    box = dev.locator('[data-code-editor="source"]')
    expect(box.locator(".cm-lineNumbers")).to_be_visible()
    # CodeMirror's own styles apply under the pages' CSP (style-src 'self').
    expect(box.locator(".cm-gutters")).to_have_css(
        "background-color", "rgb(246, 247, 249)"
    )

    append_code(dev, "Definition", "  - lg: oops\n")

    problems = dev.locator("[data-problem-list] .problem")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text("Line 9")
    expect(problems.first).to_contain_text("Unknown step kind 'lg'")
    # The same message is a lint diagnostic on line 9 of the editor.
    marked = box.locator(".cm-line:has(.cm-lintRange-error)")
    expect(marked).to_have_text("  - lg: oops")
    expect(
        dev.locator(".cm-gutter-lint .cm-gutterElement .cm-lint-marker-error")
    ).to_have_count(1)
    expect(dev.locator("[data-dirty-status]")).to_have_text("Unsaved changes")

    problems.first.get_by_role("link", name="Line 9").click()
    expect(box.locator(".cm-activeLine")).to_have_text("  - lg: oops")

    dev.keyboard.press("Shift+End")
    dev.keyboard.insert_text("  - name: Fixed\n    log: better")
    expect(dev.locator("[data-problems-status]")).to_have_text("No problems.")
    expect(dev.locator("[data-outline]")).to_contain_text("Fixed")


def test_save_makes_versions_and_refuses_invalid_text(dev: Page, site: Site) -> None:
    dev.goto(SCRATCH)
    replace_code(
        dev,
        "Definition",
        "# Saved from the browser\nid: scratch\nname: Scratch pad\n"
        "location: Playground\nsteps:\n  - log: Second\n",
    )
    dev.locator("[data-source-form]").get_by_role("button", name="Save").click()

    expect(notice(dev, "Saved as version")).to_be_visible()
    expect(dev.get_by_role("heading", level=1)).to_have_text("Scratch pad")
    expect(code_editor(dev, "Definition")).to_contain_text("# Saved from the browser")
    saved = dev.locator(".flow-meta").inner_text()

    replace_code(dev, "Definition", "id: scratch\nname: Scratch pad\nsteps: nope\n")
    dev.locator("[data-source-form]").get_by_role("button", name="Save").click()

    expect(dev.get_by_role("alert")).to_contain_text("The definition was not saved")
    expect(dev.locator("[data-problem-list]")).to_contain_text("Line 3")
    # The refused text is still in the editor, for fixing.
    expect(code_editor(dev, "Definition")).to_contain_text("steps: nope")
    dev.goto(SCRATCH)
    assert dev.locator(".flow-meta").inner_text() == saved
    assert "name: Scratch pad" in site.cli("flows", "export", "scratch")


def test_history_compares_and_restores_a_version(dev: Page) -> None:
    dev.goto(SCRATCH)
    replace_code(
        dev,
        "Definition",
        "id: scratch\nname: Scratch\nlocation: Playground\nsteps:\n  - log: Later\n",
    )
    dev.locator("[data-source-form]").get_by_role("button", name="Save").click()
    expect(notice(dev, "Saved as version")).to_be_visible()

    dev.get_by_role("link", name="Version history").click()
    rows = dev.locator(".versions-table tbody tr")
    expect(rows.first).to_contain_text("Current")
    dev.get_by_role("link", name="Compare version 1 with the current version").click()

    removed = dev.locator(".diff-removed .diff-text")
    added = dev.locator(".diff-added .diff-text")
    expect(removed.filter(has_text="- log: First step")).to_have_count(1)
    expect(added.filter(has_text="- log: Later")).to_have_count(1)

    dev.get_by_role("button", name="Restore version 1").click()

    expect(notice(dev, "Restored as version")).to_be_visible()
    expect(code_editor(dev, "Definition")).to_contain_text("- log: First step")
    expect(dev.locator("[data-outline]")).to_contain_text("First step")
