"""The `run_flow` step: start another flow as a child of this run, and by default
wait for its end.

With `wait: true` (the default) `save_as` receives `{state, outputs, run_id}`
(and `error` when the child failed), and a child that did not succeed fails the
step. With `wait: false` it receives `{run_id}` at once. Starting and waiting go
through the run's `RunServices`, which the runner provides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowdesk.engine.expressions import Value
from flowdesk.engine.steps.base import (
    Step,
    StepCompiler,
    invalid,
    register_step,
    save_as_name,
)
from flowdesk.errors import FlowdeskError, StepFailed

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution


@register_step
class RunFlowStep(Step):
    """Starts the flow named by the value of `run_flow`."""

    kind = "run_flow"
    options = frozenset({"inputs", "wait", "save_as"})
    __slots__ = ("flow_id", "inputs", "target", "wait")

    def __init__(
        self,
        path: str,
        name: str | None,
        flow_id: Value,
        inputs: Value | None,
        wait: bool,
        target: str | None,
    ) -> None:
        super().__init__(path, name)
        self.flow_id = flow_id
        self.inputs = inputs
        self.wait = wait
        self.target = target

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> RunFlowStep:
        wait = spec.get("wait", True)
        if not isinstance(wait, bool):
            raise invalid(path, f"'wait' must be true or false, got {wait!r}")
        raw_inputs = spec.get("inputs")
        inputs = (
            None if raw_inputs is None else compiler.value(raw_inputs, path, "inputs")
        )
        return cls(
            path,
            spec.get("name"),
            compiler.text(spec["run_flow"], path, "run_flow"),
            inputs,
            wait,
            save_as_name(spec, path),
        )

    async def run(self, execution: Execution) -> None:
        services = execution.services
        if services is None:
            raise StepFailed(
                self.path, "run_flow can start other flows only inside a flowdesk run"
            )
        flow_id = self.flow_id.evaluate(execution.names).strip()
        inputs = self._inputs(execution)

        try:
            run_id = await services.start_child_run(flow_id, inputs)
        except FlowdeskError as error:
            raise StepFailed(
                self.path, f"could not start the flow '{flow_id}': {error.message}"
            ) from None
        await execution.reporter.log(
            f"Started the flow '{flow_id}' as run {run_id}",
            step=self.label,
            child_run_id=run_id,
        )
        if not self.wait:
            self._save(execution, {"run_id": run_id})
            return

        child = await services.wait_run(run_id)
        result: dict[str, Any] = {
            "state": child.state,
            "outputs": child.outputs or {},
            "run_id": run_id,
        }
        if not child.succeeded:
            result["error"] = child.error or ""
        # Saved before failing, so that `on_error: continue` or a `catch` can
        # still see which run it was.
        self._save(execution, result)
        if not child.succeeded:
            why = f": {child.error}" if child.error else ""
            raise StepFailed(
                self.path, f"the flow '{flow_id}' (run {run_id}) {child.state}{why}"
            )

    def _inputs(self, execution: Execution) -> dict[str, Any]:
        if self.inputs is None:
            return {}
        inputs = self.inputs.evaluate(execution.names)
        if not isinstance(inputs, dict):
            raise StepFailed(
                self.path, f"inputs must be a mapping of input names, got {inputs!r}"
            )
        # A run's inputs are stored and shown as they are; a secret among them
        # would be there for anyone who can see the child run.
        if _holds_secret(inputs, execution):
            raise StepFailed(
                self.path,
                "the inputs hold the value of a secret, and run inputs are stored"
                " and shown in plain text; let the other flow read"
                " '{{ secrets.NAME }}' itself",
            )
        return inputs

    def _save(self, execution: Execution, value: dict[str, Any]) -> None:
        if self.target is not None:
            execution.assign(self.target, value, self.path)


def _holds_secret(value: Any, execution: Execution) -> bool:
    if isinstance(value, str):
        return execution.redact(value) != value
    if isinstance(value, dict):
        return any(
            _holds_secret(key, execution) or _holds_secret(item, execution)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_holds_secret(item, execution) for item in value)
    return False
