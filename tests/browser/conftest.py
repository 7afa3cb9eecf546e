"""Browser tests: Chromium driven by Playwright against a real `flowdesk serve`.

The session shares one server (started once, with the flows of
tests/browser/flows and a few users made through the command line, which costs
several seconds a command) and one browser; each test gets a fresh browser
context. Tests that change stored state use flows and users of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import unavailable
from tests.support.interactive import sign_in_fields_of
from tests.support.server import LiveServer

FLOWS = Path(__file__).with_name("flows")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "browser-password"
SESSION_COOKIE = "flowdesk_session"
TIMEOUT_MS = 10_000

# name: (scopes, groups)
USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "alice": (("flow:run",), ()),
    "fiona": (("flow:run",), ("finance",)),
    "dev": (("flow:run", "flow:edit"), ()),
}


@dataclass
class Site:
    """A running flowdesk with its data dir, for pages and for the CLI."""

    server: LiveServer
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def cli(self, *args: str) -> str:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("FLOWDESK_")
        }
        env["FLOWDESK_DATA_DIR"] = str(self.server.data_dir)
        done = subprocess.run(
            [sys.executable, "-m", "flowdesk", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"flowdesk {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def session_cookie(self, username: str) -> str:
        """A signed-in session of `username`, made once per server."""
        if username not in self.cookies:
            with httpx.Client(base_url=self.url, timeout=10) as client:
                form = sign_in_fields_of(client.get("/login").text)
                response = client.post(
                    "/login",
                    data={**form, "username": username, "password": PASSWORD},
                )
                assert response.status_code == 303, response.text
                self.cookies[username] = response.cookies[SESSION_COOKIE]
        return self.cookies[username]

    def sign_in(self, context: BrowserContext, username: str = "alice") -> None:
        context.clear_cookies()
        context.add_cookies(
            [
                {
                    "name": SESSION_COOKIE,
                    "value": self.session_cookie(username),
                    "url": self.url,
                }
            ]
        )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("flowdesk") / "data"
    server = LiveServer(data_dir, env={"FLOWDESK_LOAD_EXAMPLES": "false"})
    server.start()
    try:
        running = Site(server)
        running.cli("flows", "apply", str(FLOWS))
        for name, (scopes, groups) in USERS.items():
            args = ["users", "create", name, "--password", PASSWORD]
            args += [part for scope in scopes for part in ("--scope", scope)]
            args += [part for group in groups for part in ("--group", group)]
            running.cli(*args)
        yield running
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        base_url=site.url, viewport={"width": 1280, "height": 900}
    )
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext, site: Site) -> Page:
    """A page signed in as alice, who has the Flow Run scope only."""
    site.sign_in(context, "alice")
    return context.new_page()


@pytest.fixture
def page_without_js(browser: Browser, site: Site) -> Iterator[Page]:
    """A page signed in as alice in a browser with JavaScript switched off."""
    opened = browser.new_context(
        base_url=site.url,
        viewport={"width": 1280, "height": 900},
        java_script_enabled=False,
    )
    opened.set_default_timeout(TIMEOUT_MS)
    site.sign_in(opened, "alice")
    yield opened.new_page()
    opened.close()
