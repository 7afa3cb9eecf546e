"""Per-step cost of the engine: `python tests/engine/benchmark_steps.py`.

Not collected by pytest; it prints microseconds per step for a few flow shapes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from flowdesk.engine import compile_flow

STEPS = 10_000
ROUNDS = 5


class SilentReporter:
    async def log(
        self, message: str, *, level: str = "info", step: str | None = None
    ) -> None:
        pass

    async def status(self, message: str, progress: float | None = None) -> None:
        pass

    async def step_started(self, path: str, kind: str) -> None:
        pass


FLOWS: dict[str, list[dict[str, Any]]] = {
    "set, expression": [
        {"set": {f"v{i % 50}": "{{ inputs.items * 2 }}"}} for i in range(STEPS)
    ],
    "set, constant": [{"set": {f"v{i % 50}": i}} for i in range(STEPS)],
    "set, text": [
        {"set": {f"v{i % 50}": "n={{ inputs.items }}"}} for i in range(STEPS)
    ],
    "log, text": [{"log": "item {{ inputs.items }}"} for _ in range(STEPS)],
}


async def measure(steps: list[dict[str, Any]]) -> float:
    flow = compile_flow(steps)
    reporter = SilentReporter()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await flow.execute({"items": 3}, {}, reporter)
        best = min(best, time.perf_counter() - started)
    return best / len(steps) * 1e6


async def main() -> None:
    for label, steps in FLOWS.items():
        print(f"{label:>16}: {await measure(steps):6.2f} µs/step")


if __name__ == "__main__":
    asyncio.run(main())
