"""`flowdesk run`: a run executed in this process, shown live in the terminal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from flowdesk.formatting import format_duration, format_time, html_to_text, run_duration
from flowdesk.inputs import parse_cli_inputs
from flowdesk.runs import states
from flowdesk.runs.service import create_run, get_run, load_current_version, run_events
from flowdesk.system import System

LEVEL_STYLES = {"error": "red", "warning": "yellow", "info": ""}


async def run_in_terminal(
    system: System,
    flow_id: str,
    pairs: list[str],
    json_text: str | None,
    console: Console,
) -> str:
    """Create a run of `flow_id` with trigger `cli`, execute it here while
    printing its log, and return its final state."""
    await system.executor.start()
    try:
        with system.db.transaction() as session:
            schema = load_current_version(session, flow_id).definition.input_schema
            inputs = parse_cli_inputs(schema, pairs, json_text)
            run = create_run(session, flow_id, inputs, "cli")
        run_id = run.id

        async with system.bus.subscribe(run_id) as events:
            system.executor.submit(run_id)
            execution = asyncio.ensure_future(system.executor.wait(run_id))
            # A run that never reaches its end event (claimed by another
            # process, or an internal error) must not leave the display waiting.
            execution.add_done_callback(lambda _done: events.queue.put_nowait(None))
            await _follow(events, console, run_id)
            await execution
    finally:
        await system.executor.stop()

    with system.db.reading() as session:
        finished = get_run(session, run_id)
        _print_end(
            finished.state,
            finished.status_message,
            finished.outputs,
            finished.html,
            console,
        )
        return finished.state


async def _follow(events: Any, console: Console, run_id: str) -> None:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(states.DEFAULT_MESSAGES[states.QUEUED], total=None)
    with progress:
        async for event in events:
            kind = event.get("kind")
            message = str(event.get("message", ""))
            if kind == "log":
                style = LEVEL_STYLES.get(str(event.get("level")), "")
                line = escape(message)
                progress.console.print(f"[{style}]{line}[/]" if style else line)
            elif kind == "status":
                value = event.get("progress")
                progress.update(
                    task,
                    description=escape(message),
                    total=100 if value is not None else None,
                    completed=value or 0,
                )
            elif kind == "state":
                progress.update(task, description=escape(message))
                if event.get("state") in states.FINISHED:
                    return


def _print_end(
    state: str,
    message: str,
    outputs: dict[str, Any] | None,
    html: str | None,
    console: Console,
) -> None:
    style = "green" if state == states.SUCCEEDED else "red"
    console.print(f"[{style}]{state}[/]: {escape(message)}")
    if outputs:
        console.print("[bold]Outputs[/]")
        console.print(json.dumps(outputs, indent=2, ensure_ascii=False), markup=False)
    if html:
        console.print("[bold]Result[/]")
        console.print(html_to_text(html), markup=False)


def print_run(system: System, run_id: str, console: Console) -> None:
    with system.db.reading() as session:
        run = get_run(session, run_id)
        console.print(f"[bold]Run[/] {run.id} of {escape(run.flow_id)}")
        console.print(f"state: {run.state}   trigger: {run.trigger}")
        console.print(f"created: {format_time(run.created_at)}")
        if run.started_at:
            console.print(f"started: {format_time(run.started_at)}")
        duration = run_duration(run.started_at, run.finished_at)
        if duration is not None:
            console.print(f"duration: {format_duration(duration)}")
        console.print("[bold]Inputs[/]")
        console.print(
            json.dumps(run.inputs, indent=2, ensure_ascii=False), markup=False
        )
        console.print("[bold]Log[/]")
        for event in run_events(session, run_id):
            stamp = event.created_at.strftime("%H:%M:%S")
            console.print(f"{stamp} {event.kind:<6} {event.message}", markup=False)
        if run.state in states.FINISHED:
            _print_end(run.state, run.status_message, run.outputs, run.html, console)
