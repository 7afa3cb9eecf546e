"""What the figures were measured on, so that two result files can be told
apart and a slow figure can be put down to a busy machine."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flowdesk

REPOSITORY = Path(__file__).resolve().parent.parent


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (`/proc/stat`, in ticks), for
    `stolen_percent`; None where there are none."""
    try:
        first_line = Path("/proc/stat").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return [int(value) for value in first_line.split()[1:]]


def stolen_percent(since: list[int] | None) -> float | None:
    """The share of CPU time since `since` that the hypervisor gave to other
    guests ("steal"): on a virtual machine this moves every figure, and the
    load average does not show it."""
    now = cpu_times()
    if since is None or now is None or len(now) < 8:
        return None
    spent = [after - before for before, after in zip(since, now, strict=False)]
    # user, nice, system, idle, iowait, irq, softirq, steal; guest time is
    # counted in user time already.
    total = sum(spent[:8])
    return round(100 * spent[7] / total, 1) if total else None


def describe() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "flowdesk": flowdesk.__version__,
        "git_commit": _git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load_average(),
    }


def _cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _memory_gb() -> float | None:
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _git_commit() -> str | None:
    """The checked-out commit, marked `-dirty` when the tree has changes."""
    try:
        commit = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if changed else commit


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout.strip()
