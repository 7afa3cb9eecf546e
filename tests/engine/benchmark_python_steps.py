"""Cost of `python` steps on the warm pool:
`python tests/engine/benchmark_python_steps.py`.

Not collected by pytest. Prints the first run (which starts the workers), then
the best of several runs of 40 sequential steps computing fibonacci(10), the
goal of the benchmark issue being 0.4 s in all, and the cost of an empty step.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from flowdesk.engine import compile_flow
from flowdesk.workers.pool import shutdown_shared_pool

ROUNDS = 10
FIBONACCI = """\
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
return fib(10)
"""


class SilentReporter:
    async def log(
        self, message: str, *, level: str = "info", step: str | None = None
    ) -> None:
        pass

    async def status(self, message: str, progress: float | None = None) -> None:
        pass

    async def step_started(self, path: str, kind: str) -> None:
        pass


async def timed(steps: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds of the first run, and of the best of the later ones."""
    flow = compile_flow(steps)
    started = time.perf_counter()
    await flow.execute({}, {}, SilentReporter())
    first = time.perf_counter() - started

    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await flow.execute({}, {}, SilentReporter())
        best = min(best, time.perf_counter() - started)
    return first, best


async def main() -> None:
    first, best = await timed([{"python": FIBONACCI, "save_as": "fib"}] * 40)
    print(f"40 fibonacci(10) steps, first run (starts the pool): {first * 1000:.1f} ms")
    print(f"40 fibonacci(10) steps, warm: {best * 1000:.1f} ms in all")

    _first, empty = await timed([{"python": "return 1", "save_as": "x"}] * 200)
    print(f"an empty python step: {empty / 200 * 1e6:.0f} µs")
    shutdown_shared_pool()


if __name__ == "__main__":
    asyncio.run(main())
