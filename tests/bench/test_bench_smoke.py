"""The benchmark harness in its smallest mode: it starts its own server, takes
a few samples of every figure and writes them all as numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
HARNESS = REPOSITORY / "bench" / "run.py"

# Each figure, and the numbers it holds when it is a group of them.
EXPECTED = {
    "launch_ack_ms": ("p50", "p99"),
    "created_to_started_ms": ("p50", "p99"),
    "launch_to_done_ms": ("p50", "p99"),
    "runs_per_s": (),
    "steps40_total_s": (),
    "builtin_step_us": (),
    "history_first_page_ms": ("runs", "p50"),
    "big_form_ms": ("fields", "p50"),
    "sse_watchers": ("count", "p99_ms"),
    "idle_rss_mb": (),
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_bench_smoke_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    finished = subprocess.run(
        [sys.executable, str(HARNESS), "--smoke", "--out", str(out)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    report = json.loads(out.read_text(encoding="utf-8"))
    for name, parts in EXPECTED.items():
        figure = report[name]
        if parts:
            assert set(figure) == set(parts), name
            assert all(_is_number(figure[part]) for part in parts), (name, figure)
        else:
            assert _is_number(figure), (name, figure)
    assert report["history_first_page_ms"]["runs"] == 1_000
    assert report["sse_watchers"]["count"] == 50
    assert report["machine"]["cpu_count"] >= 1
    # Linux counts the time the hypervisor took away; it is a share.
    assert 0 <= report["machine"]["cpu_stolen_percent"] <= 100
