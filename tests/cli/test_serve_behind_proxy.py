"""`flowdesk serve` behind a reverse proxy: the proxy's X-Forwarded-For and
X-Forwarded-Proto are believed from the allowed addresses only, which decides
the client address of sign-in throttling and logs, and Secure cookies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.interactive import sign_in_fields_of
from tests.support.server import ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow

FORWARDED = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}


def started(data_dir: Path, **env: str) -> Iterator[LiveServer]:
    server = LiveServer(data_dir, env={"FLOWDESK_LOAD_EXAMPLES": "false", **env})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def behind_local_proxy(tmp_path: Path) -> Iterator[LiveServer]:
    yield from started(tmp_path / "data")


@pytest.fixture
def behind_other_proxy(tmp_path: Path) -> Iterator[LiveServer]:
    yield from started(tmp_path / "data", FLOWDESK_FORWARDED_ALLOW_IPS="192.0.2.1")


def sign_in(server: LiveServer, password: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers=FORWARDED, timeout=10) as client:
        page = client.get("/login")
        # Sent back by hand: over https its cookie is Secure, which httpx keeps
        # from this plain-http connection, as a browser would from one.
        cookie = f"flowdesk_sign_in={page.cookies['flowdesk_sign_in']}"
        return client.post(
            "/login",
            data={
                **sign_in_fields_of(page.text),
                "username": "admin",
                "password": password,
            },
            headers={"cookie": cookie},
        )


def test_serve_believes_the_proxy_it_is_told_about(
    behind_local_proxy: LiveServer,
) -> None:
    sign_in(behind_local_proxy, "not-the-password")
    signed = sign_in(behind_local_proxy, ADMIN_PASSWORD)

    log = behind_local_proxy.log()
    assert "failed sign-in for 'admin' from 203.0.113.9" in log
    assert "user admin signed in from 203.0.113.9" in log
    assert "; secure" in signed.headers["set-cookie"].lower()
    assert "strict-transport-security" in signed.headers


def test_serve_ignores_forwarded_headers_from_anyone_else(
    behind_other_proxy: LiveServer,
) -> None:
    sign_in(behind_other_proxy, "not-the-password")
    signed = sign_in(behind_other_proxy, ADMIN_PASSWORD)

    log = behind_other_proxy.log()
    assert "failed sign-in for 'admin' from 127.0.0.1" in log
    assert "203.0.113.9" not in log
    assert "secure" not in signed.headers["set-cookie"].lower()
