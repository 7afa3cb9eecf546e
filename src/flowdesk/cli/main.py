"""The `flowdesk` command. Every command that touches the database brings its
schema up to date first; errors are one line and an exit code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from flowdesk.cli.connections import connections_app
from flowdesk.cli.schedules import schedules_app
from flowdesk.cli.secrets import secrets_app
from flowdesk.cli.tokens import tokens_app
from flowdesk.cli.users import groups_app, users_app
from flowdesk.errors import ConfigError, DefinitionError, FlowdeskError, InputError

app = typer.Typer(
    help="flowdesk: self-hosted flow automation with Interactive Flows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
flows_app = typer.Typer(help="Create, list and export flows.", no_args_is_help=True)
runs_app = typer.Typer(help="Look at past runs.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(groups_app, name="groups")
app.add_typer(tokens_app, name="tokens")
app.add_typer(flows_app, name="flows")
app.add_typer(runs_app, name="runs")
app.add_typer(schedules_app, name="schedules")
app.add_typer(secrets_app, name="secrets")
app.add_typer(connections_app, name="connections")

# Soft wrap: a long line stays one line, so that `file:line: message` and
# printed JSON survive a narrow terminal, a pipe and a grep.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Exit codes: 1 for a failed run or refused input, 2 for bad usage or settings.
EXIT_FAILED = 1
EXIT_CONFIG = 2

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turn flowdesk's own errors into a clear line and an exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DefinitionError as exc:
            for problem in exc.problems:
                err.print(str(problem), markup=False)
            raise typer.Exit(EXIT_FAILED) from None
        except InputError as exc:
            for error in exc.errors:
                where = f"{error.field}: " if error.field else ""
                err.print(f"error: {where}{error.message}", markup=False)
            raise typer.Exit(EXIT_FAILED) from None
        except ConfigError as exc:
            err.print(f"error: {exc.message}", markup=False)
            raise typer.Exit(EXIT_CONFIG) from None
        except FlowdeskError as exc:
            err.print(f"error: {exc.message}", markup=False)
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper  # type: ignore[return-value]


def print_table(table: Table) -> None:
    # Ids are copied into the next command, so a table takes the width its
    # rows need rather than cutting them short to fit the terminal.
    unlimited = out.options.update_width(10_000)
    natural = out.measure(table, options=unlimited).maximum
    if natural <= out.width:
        out.print(table)
        return
    wide = Console(file=out.file, highlight=False, width=natural)
    wide.print(table)


def _system() -> Any:
    from flowdesk.system import open_system

    return open_system()


# serve


@app.command()
@reports_errors
def serve(
    host: str | None = typer.Option(None, help="Address to listen on."),
    port: int | None = typer.Option(None, help="Port to listen on."),
    proxy_headers: bool = typer.Option(
        True,
        help="Believe X-Forwarded-For and X-Forwarded-Proto from the addresses "
        "of --forwarded-allow-ips (a reverse proxy in front).",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Comma-separated proxy addresses to believe, or '*'; default "
        "FLOWDESK_FORWARDED_ALLOW_IPS (127.0.0.1).",
    ),
) -> None:
    """Serve the whole system in one process (web, executor, scheduler)."""
    import uvicorn

    from flowdesk.bootstrap import first_start
    from flowdesk.logs import configure_logging
    from flowdesk.web.app import create_app
    from flowdesk.workers.pool import check_sandbox_mode

    configure_logging()
    system = _system()
    # Inside uvicorn's start-up this error would come out as a traceback.
    check_sandbox_mode(system.settings.python_sandbox)
    started = first_start(system)
    if started is not None:
        out.print(f"Loaded {len(started.examples)} example flows.")
        if started.admin_password:
            out.print(
                "Created the user [bold]admin[/bold] with the password "
                f"[bold]{started.admin_password}[/bold] (shown only this once)."
            )
    settings = system.settings
    uvicorn.run(
        create_app(system, freeze_start_up=True),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips or settings.forwarded_allow_ips,
    )


@app.command("scheduler")
@reports_errors
def scheduler_process() -> None:
    """Fire scheduled flows: the scheduler process of a distributed set-up."""
    from flowdesk.logs import configure_logging
    from flowdesk.schedules.scheduler import run_scheduler

    configure_logging()
    asyncio.run(run_scheduler(_system()))


@app.command("worker")
@reports_errors
def worker_process(
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        help="Runs executed at once (default: FLOWDESK_MAX_CONCURRENT_RUNS).",
    ),
) -> None:
    """Execute runs from the broker: the worker process of a distributed set-up."""
    from flowdesk.logs import configure_logging
    from flowdesk.runs.celery_worker import run_worker
    from flowdesk.system import open_system
    from flowdesk.workers.pool import check_sandbox_mode

    configure_logging()
    system = open_system(executes_runs=True)
    check_sandbox_mode(system.settings.python_sandbox)
    raise typer.Exit(run_worker(system, concurrency))


@app.command()
@reports_errors
def migrate() -> None:
    """Bring the database schema up to date, then exit."""
    _system()
    out.print("The database schema is up to date.")


# users


@users_app.command("create")
@reports_errors
def users_create(
    name: str,
    password: str | None = typer.Option(None, help="The new user's password."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    scope: list[str] = typer.Option([], help="A scope to grant; repeatable."),
    group: list[str] = typer.Option([], help="A group to join; repeatable."),
) -> None:
    """Create a user with scopes and groups."""
    from flowdesk.auth.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise FlowdeskError("Give the password with --password or --password-stdin.")
    system = _system()
    with system.db.transaction() as session:
        user = create_user(session, name, password, scope, group)
        scopes = ", ".join(user.scopes) or "no scopes"
    out.print(f"Created user {name} ({scopes}).", markup=False)


@users_app.command("list")
@reports_errors
def users_list() -> None:
    """List users with their scopes and groups."""
    from flowdesk.auth.users import list_users

    system = _system()
    table = Table("user", "scopes", "groups", "state")
    with system.db.reading() as session:
        for user in list_users(session):
            table.add_row(
                user.username,
                ", ".join(user.scopes),
                ", ".join(sorted(user.group_names)),
                "disabled" if user.disabled else "active",
            )
    print_table(table)


# flows


@flows_app.command("apply")
@reports_errors
def flows_apply(paths: list[Path]) -> None:
    """Create or update flows from files or folders."""
    from flowdesk.flows.definition import find_flow_files, load_file
    from flowdesk.flows.service import apply_definition

    files = find_flow_files(paths)
    if not files:
        raise FlowdeskError("No flow files (*.yaml, *.yml, *.json) were found there.")

    definitions = []
    problems = []
    for path in files:
        try:
            definitions.append((path, load_file(path)))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        # Nothing is applied while any file is wrong: a folder goes in whole.
        raise DefinitionError(problems)

    system = _system()
    with system.db.transaction() as session:
        outcomes = [
            apply_definition(session, definition, path.read_text(encoding="utf-8"))
            for path, definition in definitions
        ]
    for outcome in outcomes:
        note = "" if outcome.change == "unchanged" else f" (version {outcome.version})"
        out.print(f"{outcome.flow_id}: {outcome.change}{note}", markup=False)


@flows_app.command("list")
@reports_errors
def flows_list() -> None:
    """List flows with their location, tags and settings."""
    from flowdesk.flows.service import list_flows

    system = _system()
    table = Table("id", "name", "location", "tags", "interactive", "scheduled")
    with system.db.reading() as session:
        for flow in list_flows(session):
            table.add_row(
                flow.id,
                flow.name,
                flow.location,
                ", ".join(flow.tags),
                "yes" if flow.interactive else "no",
                "yes" if flow.scheduled else "no",
            )
    print_table(table)


@flows_app.command("export")
@reports_errors
def flows_export(flow_id: str) -> None:
    """Print a flow's current definition as YAML."""
    from flowdesk.flows.definition import definition_from_data, dump_definition
    from flowdesk.flows.service import current_version

    system = _system()
    with system.db.reading() as session:
        version = current_version(session, flow_id)
        text = dump_definition(definition_from_data(version.definition))
    sys.stdout.write(text)


# run


@app.command("run")
@reports_errors
def run_flow(
    flow_id: str,
    input: list[str] = typer.Option(
        [], "--input", "-i", help="An input value as key=value; repeatable."
    ),
    json_text: str | None = typer.Option(
        None, "--json", help="The input as a JSON object."
    ),
) -> None:
    """Run a flow here, showing its progress and log, then its outputs."""
    from flowdesk.cli.terminal_run import run_in_terminal
    from flowdesk.system import open_system

    # Here even in the distributed mode: the terminal shows this process's run.
    system = open_system(executes_runs=True)
    state = asyncio.run(run_in_terminal(system, flow_id, input, json_text, out))
    raise typer.Exit(0 if state == "succeeded" else EXIT_FAILED)


# runs


@runs_app.command("list")
@reports_errors
def runs_list(
    flow: str | None = typer.Option(None, help="Only runs of this flow."),
    limit: int = typer.Option(20, min=1, max=1000, help="How many runs."),
) -> None:
    """List the newest runs."""
    from flowdesk.formatting import format_duration, run_duration
    from flowdesk.runs.service import list_runs

    system = _system()
    table = Table("id", "flow", "trigger", "state", "started", "duration")
    with system.db.reading() as session:
        for run in list_runs(session, flow_id=flow, limit=limit).runs:
            started = run.started_at or run.created_at
            table.add_row(
                run.id,
                run.flow_id,
                run.trigger,
                run.state,
                started.strftime("%Y-%m-%d %H:%M:%S"),
                format_duration(run_duration(run.started_at, run.finished_at)),
            )
    print_table(table)


@runs_app.command("show")
@reports_errors
def runs_show(run_id: str) -> None:
    """Show one run: state, inputs, log, outputs and result."""
    from flowdesk.cli.terminal_run import print_run

    system = _system()
    print_run(system, run_id, out)


def main() -> None:
    app()
