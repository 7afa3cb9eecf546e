"""A distributed flowdesk on this machine for the end-to-end tests: web
processes and Celery workers as real subprocesses on one PostgreSQL database
and one Redis, and an HTTP client for each web process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import LiveServer, signed_in_client

_CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]+)"')


@dataclass
class WorkerProcess:
    """`python -m flowdesk worker`, its output in a log file."""

    log_path: Path
    env: dict[str, str]
    concurrency: int = 2
    process: subprocess.Popen[bytes] | None = None

    @property
    def owner(self) -> str:
        """What the worker writes into `runs.owner` of the runs it claims."""
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}"

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        """Start the worker (again, after a stop or a kill) and wait until it
        takes runs."""
        # The log is appended to: only what this start writes tells it is up.
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flowdesk",
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                ],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            lambda: self._running() and " started: " in self.log(offset),
            timeout,
            f"the worker is ready:\n{self.log()}",
        )
        return self

    def _running(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"flowdesk worker exited:\n{self.log()}")
        return True

    def log(self, offset: int = 0) -> str:
        """The worker's output, from byte `offset` on."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        # Reaped at once: a zombie would still pass for a live process.
        self.process.wait()

    def freeze(self) -> None:
        """Stop the process without ending it, as a hung machine would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class WebClient:
    """A signed-in HTTP client of one web process."""

    server: LiveServer
    http: httpx.Client = field(init=False)
    csrf_token: str = field(init=False)

    def __post_init__(self) -> None:
        self.http = signed_in_client(self.server)
        page = self.http.get("/interactive-flows")
        found = _CSRF_FIELD.search(page.text)
        assert found is not None, "the page has no CSRF field"
        self.csrf_token = found.group(1)

    def start_run(self, flow_id: str, inputs: dict[str, Any] | None = None) -> str:
        response = self.http.post(
            f"/api/v1/flows/{flow_id}/runs",
            json={"inputs": inputs or {}},
            headers={"X-CSRF-Token": self.csrf_token},
        )
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        return run_id

    def cancel(self, run_id: str) -> None:
        response = self.http.post(
            f"/runs/{run_id}/cancel",
            headers={"X-CSRF-Token": self.csrf_token},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text

    def events(self, run_id: str, timeout: float = 30.0) -> Iterator[Received]:
        """The run's server-sent events as they arrive, until its end."""
        with self.http.stream(
            "GET", f"/runs/{run_id}/events", timeout=timeout
        ) as response:
            assert response.status_code == 200, response.read()
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    yield Received(kind, data, time.time())
                    if kind == "state" and data.get("state") in FINAL_STATES:
                        return

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class Received:
    kind: str
    data: dict[str, Any]
    at: float  # seconds since the epoch, as the database's timestamps


FINAL_STATES = {"succeeded", "failed", "cancelled"}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until it holds; the seconds that took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.05)
    return time.monotonic() - started
