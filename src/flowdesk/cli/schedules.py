"""`flowdesk schedules ...`: looking at the flows that run on a timer."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table
from rich.text import Text

schedules_app = typer.Typer(
    help="Look at scheduled flows and when they fire.", no_args_is_help=True
)

TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


@schedules_app.command("list")
def schedules_list() -> None:
    """List flows with a schedule: cron, timezone, next fire time, last run."""
    # Imported here because the main module imports this one to register it.
    from flowdesk.cli.main import reports_errors

    reports_errors(_print_schedules)()


def _print_schedules() -> None:
    from flowdesk.cli.main import out
    from flowdesk.db.types import utcnow
    from flowdesk.schedules.service import schedule_overview
    from flowdesk.system import open_system

    system = open_system()
    with system.db.reading() as session:
        summaries = schedule_overview(session, utcnow())
    if not summaries:
        out.print("No flow has a schedule.")
        return

    table = Table("flow", "cron", "timezone", "next fire", "last run")
    for summary in summaries:
        if summary.problem is not None:
            next_fire = f"cannot fire: {summary.problem}"
        elif summary.next_fire is None:
            next_fire = "disabled"
        else:
            next_fire = summary.next_fire.strftime(TIME_FORMAT)
        last_run = "-"
        if summary.last_run is not None:
            run = summary.last_run
            last_run = f"{run.state} {_utc(run.created_at)}\n{run.id}"
        # Text, not markup: a cron or a message may hold square brackets.
        cells = (summary.flow_id, summary.cron, summary.timezone, next_fire, last_run)
        table.add_row(*(Text(cell) for cell in cells))
    out.print(table)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)
