"""What the flow editor's browser tests share: the front-end bundle they need,
a server of their own with the flows of tests/browser/editor_flows, and typing
into CodeMirror."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page

from flowdesk.web.routes.editor import DIST
from tests.browser.conftest import PASSWORD, Site
from tests.conftest import unavailable
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
EDITOR_FLOWS = ROOT / "tests" / "browser" / "editor_flows"

# name: scopes
EDITOR_USERS = {
    "dev": ("flow:run", "flow:edit"),
    "alice": ("flow:run",),
}


def ensure_bundle() -> None:
    """Build the editor's bundle when it is missing (scripts/test builds it
    first; this covers running pytest on its own)."""
    if (DIST / "editor.js").is_file() and (DIST / "settings.js").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        unavailable(
            "the flow editor's bundle is not built and npm is not installed to "
            "build it (run scripts/test, or npm ci && npm run build in frontend/)"
        )
        return
    for command in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        done = subprocess.run(
            [npm, *command],
            cwd=FRONTEND,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            unavailable(f"npm {' '.join(command)} failed:\n{done.stderr[-2000:]}")


@contextmanager
def editor_site(data_dir: Path) -> Iterator[Site]:
    """A server with the editor flows and the users dev and alice."""
    server = LiveServer(data_dir, env={"FLOWDESK_LOAD_EXAMPLES": "false"})
    server.start()
    try:
        site = Site(server)
        site.cli("flows", "apply", str(EDITOR_FLOWS))
        for name, scopes in EDITOR_USERS.items():
            args = ["users", "create", name, "--password", PASSWORD]
            site.cli(*args, *[part for scope in scopes for part in ("--scope", scope)])
        yield site
    finally:
        server.stop()


def code_editor(page: Page, name: str) -> Locator:
    """The content of the CodeMirror editor labelled `name`."""
    return page.get_by_role("textbox", name=name)


def replace_code(page: Page, name: str, text: str) -> None:
    """Put `text` into a code editor as if pasted: no auto-indent, no closing
    brackets added."""
    editor = code_editor(page, name)
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


def append_code(page: Page, name: str, text: str) -> None:
    editor = code_editor(page, name)
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(text)
