"""The run page in a browser: live status, progress, timer and log, the end
with Rerun and New Inputs, the sandboxed HTML result, failure and Cancel."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Site
from tests.browser.helpers import RUN_URL, run_id, wait_for_state

pytestmark = pytest.mark.browser

SLOW = "/interactive-flows/slow-report"


def start_slow(page: Page, pause: str) -> None:
    page.goto(SLOW)
    page.get_by_label("Pause in seconds").fill(pause)
    page.get_by_role("button", name="Start Flow").click()
    expect(page).to_have_url(RUN_URL)


def elapsed_seconds(page: Page) -> int:
    text = page.locator("[data-elapsed-value]").inner_text()
    found = re.fullmatch(r"(\d+) s", text)
    assert found is not None, f"unexpected elapsed time {text!r}"
    return int(found.group(1))


def test_run_page_follows_the_run_live(page: Page) -> None:
    start_slow(page, "1.5")
    # Marks this document: a full reload would lose it.
    page.evaluate("window.sameDocument = true")

    wait_for_state(page, "Running")
    card = page.locator(".status-card")
    expect(card.locator(".spinner")).to_be_visible()
    assert (
        card.locator(".spinner").evaluate("e => getComputedStyle(e).animationName")
        == "run-spin"
    )
    message = page.get_by_role("status").filter(has_text="...")
    expect(message).to_have_attribute("aria-live", "polite")
    expect(message).to_have_text("Gathering the numbers...")
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "25")
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()

    expect(message).to_have_text("Writing the report...", timeout=5000)
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "75")
    expect(page.locator("[data-progress-value]")).to_have_text("75 %")
    assert elapsed_seconds(page) >= 1
    page.locator(".run-log summary").click()
    expect(
        page.locator(".log-line").filter(has_text="Started gathering")
    ).to_be_visible()

    wait_for_state(page, "Succeeded")
    expect(page.get_by_role("status")).to_have_text("The flow completed successfully.")
    expect(card.locator(".indicator-succeeded")).to_be_visible()
    expect(card.locator(".spinner")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
    expect(page.get_by_role("link", name="New Inputs")).to_be_visible()
    expect(page.locator("iframe[data-result-frame]")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    assert page.title().startswith("Succeeded: Slow report")

    # The timer stopped: the final duration stays as it is.
    final = page.locator("[data-elapsed-value]").inner_text()
    assert re.fullmatch(r"\d+(\.\d)? s", final), final
    page.wait_for_timeout(1500)
    expect(page.locator("[data-elapsed-value]")).to_have_text(final)


def test_timer_counts_while_running(page: Page) -> None:
    start_slow(page, "3")
    wait_for_state(page, "Running")

    first = elapsed_seconds(page)
    page.wait_for_timeout(2100)
    second = elapsed_seconds(page)

    assert second >= first + 2


def test_result_is_sandboxed_and_sized_to_its_content(page: Page) -> None:
    start_slow(page, "0")
    wait_for_state(page, "Succeeded")

    frame_element = page.locator("iframe[data-result-frame]")
    expect(frame_element).to_have_attribute("sandbox", "allow-scripts")
    assert "allow-same-origin" not in (frame_element.get_attribute("sandbox") or "")
    frame = page.frame_locator("iframe[data-result-frame]")
    expect(frame.locator("#end")).to_have_text("End of the report")

    # The flow's own script and inline handler did not run.
    body = frame.locator("body")
    expect(body).not_to_have_attribute("data-script-ran", "yes")
    expect(body).not_to_have_attribute("data-handler-ran", "yes")
    title = frame.locator("html").evaluate("() => document.title")
    assert title != "script ran"

    # The frame grew to its content (a 900 px block and more), not beyond it.
    expect(frame_element).to_have_attribute("data-sized", "true")
    height = frame_element.evaluate("e => e.getBoundingClientRect().height")
    content = frame.locator("html").evaluate(
        "() => document.documentElement.getBoundingClientRect().height"
    )
    assert height > 900
    assert abs(height - content) <= 4, (height, content)

    # The result's document has an opaque origin: the app's cookies are out of reach.
    origin = frame.locator("html").evaluate("() => self.origin")
    assert origin == "null"


def test_result_is_sized_when_the_page_script_runs_after_the_frame(
    page: Page,
) -> None:
    start_slow(page, "0")
    wait_for_state(page, "Succeeded")
    frame = page.frame_locator("iframe[data-result-frame]")

    # A finished run's page renders its frame at once; hold the page's script
    # back until the frame has loaded and sent its first report unheard.
    def late_script(route: Route) -> None:
        time.sleep(1)
        route.continue_()

    page.route("**/static/js/run-page.js*", late_script)
    page.reload()
    expect(frame.locator("#end")).to_have_text("End of the report")

    frame_element = page.locator("iframe[data-result-frame]")
    expect(frame_element).to_have_attribute("data-sized", "true")
    assert frame_element.evaluate("e => e.getBoundingClientRect().height") > 900


def test_result_cannot_resize_its_frame_beyond_limits(page: Page) -> None:
    start_slow(page, "0")
    wait_for_state(page, "Succeeded")
    frame_element = page.locator("iframe[data-result-frame]")
    expect(frame_element).to_have_attribute("data-sized", "true")

    # A message from the page itself (not the frame) is ignored.
    page.evaluate("window.postMessage({flowdeskResultHeight: 5}, '*')")
    page.wait_for_timeout(200)

    assert frame_element.evaluate("e => e.getBoundingClientRect().height") > 900


def test_rerun_starts_a_new_run_with_the_same_inputs(page: Page) -> None:
    start_slow(page, "0.2")
    wait_for_state(page, "Succeeded")
    first = run_id(page)

    page.get_by_role("button", name="Rerun").click()

    expect(page).not_to_have_url(re.compile(first))
    expect(page).to_have_url(RUN_URL)
    expect(page.locator(".run-meta")).to_contain_text("(rerun)")
    expect(page.locator(".input-list")).to_contain_text("0.2")
    wait_for_state(page, "Succeeded")


def test_new_inputs_opens_the_form_filled_with_the_runs_inputs(page: Page) -> None:
    start_slow(page, "0.3")
    wait_for_state(page, "Succeeded")

    page.get_by_role("link", name="New Inputs").click()

    expect(page).to_have_url(re.compile(r"/interactive-flows/slow-report\?pause=0\.3$"))
    expect(page.get_by_label("Pause in seconds")).to_have_value("0.3")


def test_failed_run_says_why(page: Page) -> None:
    page.goto("/interactive-flows/broken-job")
    page.get_by_role("button", name="Start Flow").click()

    wait_for_state(page, "Failed")
    expect(page.get_by_role("status")).to_have_text("The source system did not answer.")
    expect(page.locator(".status-card .indicator-failed")).to_be_visible()
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()


def test_cancel_stops_the_run(page: Page) -> None:
    start_slow(page, "30")
    wait_for_state(page, "Running")

    page.get_by_role("button", name="Cancel").click()

    wait_for_state(page, "Cancelled")
    expect(page.get_by_role("status")).to_have_text("The flow was cancelled.")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)


def test_run_page_reaches_the_end_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto(SLOW)
    page.get_by_label("Pause in seconds").fill("0.5")
    page.get_by_role("button", name="Start Flow").click()

    expect(page.locator("[data-state-label]")).to_have_text(
        re.compile("Queued|Running")
    )
    wait_for_state(page, "Succeeded", timeout=20_000)
    expect(page.get_by_role("link", name="New Inputs")).to_be_visible()


def test_run_of_another_user_is_not_found(page: Page, site: Site) -> None:
    start_slow(page, "0")
    url = page.url
    # Let the page settle first: a swap of its live area still under way when
    # the session changes would reload the page and abort the navigation below.
    wait_for_state(page, "Succeeded")
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
    site.sign_in(page.context, "fiona")

    response = page.goto(url)

    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")


def test_run_page_fits_a_phone_screen(page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    start_slow(page, "0")
    wait_for_state(page, "Succeeded")

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()


def test_run_page_links_a_started_run_while_it_runs(page: Page) -> None:
    page.goto("/interactive-flows/batch-report")
    page.get_by_role("button", name="Start Flow").click()
    expect(page).to_have_url(RUN_URL)
    page.evaluate("window.sameDocument = true")

    children = page.locator("[data-child-runs]")
    link = children.get_by_role("link", name=re.compile(r"Slow report · run"))
    expect(link).to_be_visible(timeout=5000)
    # Live: the parent still runs, and the page was not reloaded for it.
    expect(page.locator("[data-state-label]")).to_have_text("Running")
    assert page.evaluate("window.sameDocument") is True

    link.click()
    expect(page.locator("[data-parent-run]")).to_contain_text("Batch report")
