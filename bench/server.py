"""The flowdesk server under test: a data dir prepared the way `flowdesk serve`
prepares one, and a real `flowdesk serve` process on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

import fixtures
from flowdesk.bootstrap import ADMIN_NAME, first_start
from flowdesk.db.models import User
from flowdesk.flows.definition import load_file
from flowdesk.flows.service import apply_definition
from flowdesk.settings import Settings
from flowdesk.system import open_system

ADMIN_PASSWORD = "benchmark-admin-password"
HOST = "127.0.0.1"
# Enough for a thousand watchers and the benchmark's own connections.
OPEN_FILES = 8192
# "Quiet": at most this much CPU time in this long (a clock tick is 10 ms).
QUIET_WINDOW_SECONDS = 0.25
QUIET_CPU_SECONDS = 0.02


def raise_open_file_limit(wanted: int = OPEN_FILES) -> int:
    """Raise this process's soft limit on open files (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def prepare_data_dir(data_dir: Path, history_runs: int) -> None:
    """Migrate, run the first start (the admin user and the example flows),
    apply the benchmark's flows and store the long history of one of them."""
    settings = Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD)
    system = open_system(settings)
    try:
        first_start(system)
        paths = fixtures.write_flow_files(data_dir.parent / "flows")
        with system.db.transaction() as session:
            for path in paths:
                source = path.read_text(encoding="utf-8")
                apply_definition(session, load_file(path), source, "benchmark")
            admin_id = session.scalars(
                select(User.id).where(User.username == ADMIN_NAME)
            ).one()
    finally:
        system.db.dispose()
    fixtures.insert_history(
        data_dir / "flowdesk.db", fixtures.HISTORY, admin_id, history_runs
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "server.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server was not started"
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "FLOWDESK_DATA_DIR": str(self.data_dir),
            "FLOWDESK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        command = [sys.executable, "-m", "flowdesk", "serve"]
        command += ["--host", HOST, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flowdesk serve exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"flowdesk serve did not answer in time:\n{self.log()}")

    def cpu_seconds(self) -> float:
        """The user and system CPU time the server has used so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The fields after the command name, which is in brackets and may
        # itself hold spaces; utime and stime are the 14th and 15th fields.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def quiet(self, timeout: float = 15.0) -> None:
        """Wait until the server has been all but idle for a moment, so that
        what it still had to do does not delay what is measured next."""
        deadline = time.monotonic() + timeout
        used = self.cpu_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(QUIET_WINDOW_SECONDS)
            now_used = self.cpu_seconds()
            if now_used - used <= QUIET_CPU_SECONDS:
                return
            used = now_used

    def rss_mb(self) -> float:
        """The server's resident memory (VmRSS), in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("the server's /proc status has no VmRSS line")

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
