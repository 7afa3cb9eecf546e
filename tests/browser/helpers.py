"""Steps the browser tests share: reading a run's outcome from its page."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Page, expect

RUN_URL = re.compile(r"/runs/[0-9a-f]{32}$")


def wait_for_state(page: Page, label: str, timeout: float = 15_000) -> None:
    expect(page.locator("[data-state-label]")).to_have_text(label, timeout=timeout)


def result_data(page: Page) -> Any:
    """The inputs a run of the `widgets` flow received, read from its result."""
    expect(page).to_have_url(RUN_URL)
    wait_for_state(page, "Succeeded")
    echo = page.frame_locator("iframe[data-result-frame]").locator("#echo")
    return json.loads(echo.inner_text())


def run_id(page: Page) -> str:
    return page.url.rsplit("/", 1)[1]
