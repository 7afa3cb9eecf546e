from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from flowdesk.engine import RunResult, compile_flow


class RecordingReporter:
    """Keeps everything the engine reports, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    async def log(
        self,
        message: str,
        *,
        level: str = "info",
        step: str | None = None,
        child_run_id: str | None = None,
    ) -> None:
        self.events.append(("log", message, step))

    async def status(self, message: str, progress: float | None = None) -> None:
        self.events.append(("status", message, progress))

    async def step_started(self, path: str, kind: str) -> None:
        self.events.append(("step", path, kind))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event[1:] for event in self.events if event[0] == kind]


RunFlow = Callable[..., Coroutine[Any, Any, RunResult]]


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def run_flow(reporter: RecordingReporter) -> RunFlow:
    """Compile and execute steps once, reporting to the test's `reporter`."""

    async def run(
        steps: list[dict[str, Any]],
        inputs: dict[str, Any] | None = None,
        *,
        outputs: list[str] | None = None,
        **options: Any,
    ) -> RunResult:
        flow = compile_flow(steps, outputs)
        return await flow.execute(inputs or {}, {"id": "run-1"}, reporter, **options)

    return run
