"""Measure what flowdesk's users feel, on a real `flowdesk serve` of the embedded
default, and write the figures as JSON.

    .venv/bin/python bench/run.py --quick --out bench/results/quick.json

Without `--quick` every figure takes more samples; `--smoke` only checks that
the harness works; `--peers` also measures Prefect 3 on the same machine. See
docs/benchmarks.md for the method and the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fixtures
import machine
import measures
from client import signed_in
from measures import PLANS, Findings, Plan
from server import Server, prepare_data_dir, raise_open_file_limit

# Start-up is over once the server answers; this much later its memory has
# settled (lazy imports of the first requests are not counted).
SETTLE_SECONDS = 1.0

FIGURES = (
    "launch_ack_ms",
    "created_to_started_ms",
    "launch_to_done_ms",
    "runs_per_s",
    "steps40_total_s",
    "builtin_step_us",
    "history_first_page_ms",
    "big_form_ms",
    "sse_watchers",
    "idle_rss_mb",
)


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    plan = PLANS["smoke" if options.smoke else "quick" if options.quick else "full"]
    open_files = raise_open_file_limit()
    report: dict[str, Any] = {"mode": plan.name, "machine": machine.describe()}
    cpu_at_start = machine.cpu_times()

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flowdesk-bench-") as folder:
        findings = _measure_flowdesk(Path(folder), plan, open_files)
    report.update({name: findings.figures.get(name) for name in FIGURES})

    if options.peers:
        from peers import measure_prefect

        ours = findings.figures["launch_to_done_ms"]["p50"]
        report["peers"] = measure_prefect(plan, ours, findings.notes)

    report["machine"]["load_average_at_end"] = machine.load_average()
    report["machine"]["cpu_stolen_percent"] = machine.stolen_percent(cpu_at_start)
    report["seconds_taken"] = round(time.monotonic() - began, 1)
    report["notes"] = findings.notes
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _say(f"wrote {options.out} in {report['seconds_taken']} s")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--quick", action="store_true", help="fewer samples; within 5 minutes"
    )
    modes.add_argument(
        "--smoke", action="store_true", help="a few samples, to check the harness"
    )
    parser.add_argument(
        "--peers", action="store_true", help="also measure Prefect 3 side by side"
    )
    parser.add_argument("--out", type=Path, required=True, help="the JSON file")
    return parser.parse_args(argv)


def _measure_flowdesk(folder: Path, plan: Plan, open_files: int) -> Findings:
    data_dir = folder / "data"
    _say(f"preparing a data dir with {plan.history_runs} stored runs")
    prepare_data_dir(data_dir, plan.history_runs)

    server = Server(data_dir)
    server.start()
    try:
        time.sleep(SETTLE_SECONDS)
        findings = Findings()
        findings.figures["idle_rss_mb"] = round(server.rss_mb(), 1)
        _run_loop(_measure_live(server, data_dir, plan, findings))
        findings.notes["open_file_limit"] = str(open_files)
        return findings
    except BaseException:
        _say(f"the server's log ends with:\n{server.log()}")
        raise
    finally:
        server.stop()


async def _measure_live(
    server: Server, data_dir: Path, plan: Plan, findings: Findings
) -> None:
    client = await signed_in(server.url)
    try:
        _say(f"{plan.launches} sequential launches")
        await measures.sequential_launches(client, plan, findings)

        _say("pages")
        big_form = f"/interactive-flows/{fixtures.BIG_FORM}"
        findings.figures["big_form_ms"] = {
            "fields": fixtures.BIG_FORM_FIELDS,
            "p50": await measures.page_time(client, big_form, plan.page_samples),
        }
        history = f"/interactive-flows/{fixtures.HISTORY}/runs"
        findings.figures["history_first_page_ms"] = {
            "runs": plan.history_runs,
            "p50": await measures.page_time(client, history, plan.page_samples),
        }

        _say(f"{fixtures.SET_STEP_COUNT} set steps")
        await measures.set_steps(client, plan, findings)
        _say(f"{fixtures.PYTHON_STEP_COUNT} python steps")
        await measures.python_steps(client, plan, findings)
        _say(f"{plan.watchers} watchers of one run")
        await measures.sse_watchers(client, plan, findings, server.quiet)
    finally:
        await client.aclose()

    _say(f"{plan.clients} clients in a closed loop for {plan.closed_loop_seconds:g} s")
    database = data_dir / "flowdesk.db"
    throughput = await measures.closed_loop(server.url, database, plan)
    findings.figures["runs_per_s"] = round(throughput, 1)


def _run_loop(work: Any) -> None:
    """Run the client side on uvloop where it is installed, so that the
    client's own overhead takes as little from the figures as it can."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(work)
    else:
        uvloop.run(work)


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
