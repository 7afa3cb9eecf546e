"""What the engine may ask of whoever executes it, beyond reporting: starting
other flows and waiting for them (`run_flow`).

The engine knows nothing of databases, so the runner implements `RunServices`
for each run and hands it to `CompiledFlow.execute`. Without services, steps
that need them fail with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChildRun:
    """How a run started by `run_flow` ended."""

    run_id: str
    state: str  # succeeded, failed or cancelled
    outputs: dict[str, Any] | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"


class RunServices(Protocol):
    async def start_child_run(self, flow_id: str, inputs: dict[str, Any]) -> str:
        """Start `flow_id` as a child of this run and return the new run's id.

        Raises `FlowdeskError` (no such flow, inputs that do not fit its input
        schema, sub-flows nested too deep) with a message for the flow's author.
        """
        ...

    async def wait_run(self, run_id: str) -> ChildRun:
        """Wait until the run has ended and return its outcome."""
        ...
