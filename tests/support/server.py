"""A real `flowdesk serve` process on a free loopback port, for the tests that
need the whole system: browser tests, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.interactive import sign_in_fields_of
from tests.support.postgres import free_port

ADMIN_PASSWORD = "admin-password-for-tests"


@dataclass
class LiveServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LiveServer:
        env = {
            **os.environ,
            "FLOWDESK_DATA_DIR": str(self.data_dir),
            "FLOWDESK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **self.env,
        }
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The child writes to its own copy of the descriptor; ours is closed.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowdesk", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flowdesk serve exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"flowdesk serve did not answer in time:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def signed_in_client(
    server: LiveServer, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10)
    form = sign_in_fields_of(client.get("/login").text)
    response = client.post(
        "/login", data={**form, "username": username, "password": password}
    )
    assert response.status_code == 303, response.text
    return client
