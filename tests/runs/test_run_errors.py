"""Errors inside flowdesk on a run's path are logged once, where they are
handled, even when one follows another."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flowdesk.engine import CompiledFlow
from flowdesk.runs.runner import RunExecution
from flowdesk.runs.service import start_run
from flowdesk.system import System
from tests.support.stored_flows import SLEEPY_FLOW, apply_flow


def logged_errors(records: list[logging.LogRecord]) -> list[BaseException]:
    """Every exception the records show, with those each was raised during."""
    shown = []
    for record in records:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            shown.append(error)
            error = None if error.__suppress_context__ else error.__context__
    return shown


async def test_run_error_logged_once_when_its_end_cannot_be_stored_either(
    running_system: System,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    apply_flow(running_system, SLEEPY_FLOW)
    engine_bug = KeyError("a bug in a step")
    database_gone = RuntimeError("the database went away")

    async def execute(*_args: Any, **_kwargs: Any) -> None:
        raise engine_bug

    store = RunExecution._store

    def store_all_but_the_end(
        self: RunExecution, events: Any, status: Any, final: Any
    ) -> None:
        if final is not None:
            raise database_gone
        store(self, events, status, final)

    monkeypatch.setattr(CompiledFlow, "execute", execute)
    monkeypatch.setattr(RunExecution, "_store", store_all_but_the_end)
    caplog.set_level(logging.ERROR, logger="flowdesk")

    run = start_run(running_system, "sleepy", {}, "api")
    await running_system.executor.wait(run.id)

    shown = logged_errors(caplog.records)
    assert shown.count(engine_bug) == 1
    assert shown.count(database_gone) == 1
