"""Each figure of the benchmark, measured against a running server the way a
browser or a user would meet it."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

import fixtures
import machine
from bare import Answer, BareConnection
from client import (
    SESSION_COOKIE,
    BenchError,
    RawWatcher,
    Watched,
    csrf_token,
    is_final,
    launch,
    server_time,
    signed_in,
    watch,
)
from stats import median, p50_p99, percentile, rounded


@dataclass(frozen=True)
class Plan:
    """How many samples of each figure a mode takes."""

    name: str
    launches: int  # sequential launches, each followed to its end
    warmup_launches: int
    closed_loop_seconds: float
    clients: int
    python_runs: int
    set_runs: int
    page_samples: int
    history_runs: int
    watchers: int
    watcher_rounds: int


PLANS = {
    "smoke": Plan("smoke", 3, 2, 1.0, 16, 1, 1, 3, 1_000, 50, 1),
    "quick": Plan("quick", 300, 20, 10.0, 16, 5, 3, 100, 100_000, 1_000, 3),
    "full": Plan("full", 1_000, 50, 30.0, 16, 15, 5, 300, 100_000, 1_000, 5),
}


@dataclass
class Findings:
    """The figures so far, and a note for each that could not be measured
    as asked or needs a word of explanation."""

    figures: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _ms(seconds: float) -> float:
    return seconds * 1000


async def sequential_launches(
    client: httpx.AsyncClient, plan: Plan, findings: Findings
) -> None:
    """One run at a time through the form: the 303, the first step's start
    and the run page's view of the end, each on an otherwise idle server. A
    browser tab's two connections: one for the form, one for the events."""
    token = await csrf_token(client, fixtures.ONE_STEP)
    form, events = await bare_connections(client, 2)
    acks: list[float] = []
    dones: list[float] = []
    starts: list[float] = []
    try:
        for index in range(plan.warmup_launches + plan.launches):
            began = time.perf_counter()
            answer = await form.post_form(
                f"/interactive-flows/{fixtures.ONE_STEP}/runs",
                {"_csrf": token, "n": str(index)},
            )
            acked = time.perf_counter()
            run_id = _started_run(answer)
            watched = await _watch_bare(events, run_id)
            if watched.final["state"] != "succeeded":
                raise BenchError(f"the one-step run {run_id} ended {watched.final}")
            if index < plan.warmup_launches:
                continue
            acks.append(_ms(acked - began))
            dones.append(_ms(watched.done_at - began))
            started = _created_to_started(watched)
            if started is not None:
                starts.append(started)
    finally:
        await form.close()
        await events.close()

    findings.figures["launch_ack_ms"] = p50_p99(acks)
    findings.figures["launch_to_done_ms"] = p50_p99(dones)
    findings.figures["created_to_started_ms"] = p50_p99(starts) if starts else None
    if not starts:
        findings.notes["created_to_started_ms"] = (
            "The server's final state event carries no first_step_at."
        )


async def bare_connections(
    client: httpx.AsyncClient, count: int
) -> list[BareConnection]:
    """`count` bare connections with the session of the signed-in `client`."""
    session_token = client.cookies.get(SESSION_COOKIE)
    if session_token is None:
        raise BenchError("the signed-in client holds no session cookie")
    parts = urlsplit(str(client.base_url))
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return [
        await BareConnection(host, port, session_token).open() for _ in range(count)
    ]


def _started_run(answer: Answer) -> str:
    location = answer.headers.get("location", "")
    if answer.status != 303 or not location.startswith("/runs/"):
        raise BenchError(f"starting a run answered {answer.status}: {answer.body!r}")
    return location.removeprefix("/runs/")


async def _watch_bare(connection: BareConnection, run_id: str) -> Watched:
    received = []
    done_at = None
    # The stream ends right after the final event; it is read to its end, so
    # that the connection is ready for the next request.
    async for event, arrived in connection.events(f"/runs/{run_id}/events"):
        received.append(event)
        if is_final(event):
            done_at = arrived
    if done_at is None:
        raise BenchError(f"the event stream of run {run_id} ended before the run")
    return Watched(received, done_at)


def _created_to_started(watched: Watched) -> float | None:
    """From the run's creation (its queued event) to its first step's start,
    both stamped by the server."""
    final = watched.final
    if "first_step_at" not in final:
        return None
    created = server_time(watched.first("state", "queued"))
    return _ms(server_time(final, "first_step_at") - created)


async def closed_loop(base_url: str, database: Path, plan: Plan) -> float:
    """Runs completed per second with `plan.clients` users each posting the
    form again as soon as the last post was answered, counted from the first
    run's creation to the last run's end."""
    clients = [await signed_in(base_url) for _ in range(plan.clients)]
    try:
        tokens = [await csrf_token(client, fixtures.ONE_STEP) for client in clients]
        began = datetime.now(UTC)
        deadline = time.perf_counter() + plan.closed_loop_seconds
        started: list[str] = []

        async def user(client: httpx.AsyncClient, token: str) -> None:
            while time.perf_counter() < deadline:
                fields = [("n", str(len(started)))]
                started.append(await launch(client, fixtures.ONE_STEP, token, fields))

        await asyncio.gather(*map(user, clients, tokens))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    count, first_created, last_finished = await _wait_for_ends(
        database, began, len(started)
    )
    return count / (last_finished - first_created).total_seconds()


async def _wait_for_ends(
    database: Path, since: datetime, expected: int, timeout: float = 120.0
) -> tuple[int, datetime, datetime]:
    """Wait until the `expected` one-step runs created since `since` have all
    finished; returns their count, first creation and last end."""
    stamp = since.replace(tzinfo=None).strftime(fixtures.SQLITE_TIME_FORMAT)
    query = (
        "SELECT COUNT(*), MIN(created_at), MAX(finished_at),"
        " SUM(state = 'succeeded') FROM runs WHERE flow_id = ? AND created_at >= ?"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(database)) as connection:
            count, first, last, succeeded = connection.execute(
                query, (fixtures.ONE_STEP, stamp)
            ).fetchone()
        if count >= expected and succeeded == count:
            return count, _stored_time(first), _stored_time(last)
        await asyncio.sleep(0.05)
    raise BenchError(
        f"of {expected} runs, only some succeeded in {timeout:g} s: "
        + _unfinished(database, stamp)
    )


def _unfinished(database: Path, stamp: str) -> str:
    """The one-step runs by state, and the first few that did not succeed."""
    with closing(sqlite3.connect(database)) as connection:
        by_state = connection.execute(
            "SELECT state, COUNT(*) FROM runs WHERE flow_id = ? AND created_at >= ?"
            " GROUP BY state",
            (fixtures.ONE_STEP, stamp),
        ).fetchall()
        examples = connection.execute(
            "SELECT id, state, owner, created_at, started_at, heartbeat_at, error"
            " FROM runs WHERE flow_id = ? AND created_at >= ?"
            " AND state != 'succeeded' ORDER BY created_at LIMIT 5",
            (fixtures.ONE_STEP, stamp),
        ).fetchall()
    counts = ", ".join(f"{count} {state}" for state, count in by_state)
    return f"{counts}; the first that did not: {examples}"


def _stored_time(text: str) -> datetime:
    return datetime.strptime(text, fixtures.SQLITE_TIME_FORMAT).replace(tzinfo=UTC)


async def launch_and_watch(
    client: httpx.AsyncClient, flow_id: str, runs: int, warmup: int = 1
) -> list[Watched]:
    """Start `flow_id` from its form `warmup + runs` times, one at a time,
    and return what the run page saw of the last `runs`."""
    token = await csrf_token(client, flow_id)
    watched = []
    for _index in range(warmup + runs):
        run_id = await launch(client, flow_id, token)
        watched.append(await watch(client, run_id))
    return watched[warmup:]


async def python_steps(
    client: httpx.AsyncClient, plan: Plan, findings: Findings
) -> None:
    """The 40 light sequential python steps: from the run's creation to its end.
    The first run (which starts the warm worker pool) is not counted."""
    runs = await launch_and_watch(client, fixtures.PYTHON_STEPS, plan.python_runs)
    failed = [run.final for run in runs if run.final["state"] != "succeeded"]
    if failed:
        findings.figures["steps40_total_s"] = None
        findings.notes["steps40_total_s"] = (
            f"The python steps did not succeed here: {failed[0].get('message')}"
        )
        return
    totals = [
        server_time(run.final) - server_time(run.first("state", "queued"))
        for run in runs
    ]
    findings.figures["steps40_total_s"] = rounded(median(totals), 4)


async def set_steps(client: httpx.AsyncClient, plan: Plan, findings: Findings) -> None:
    """The cost of one core step, from a run of 10,000 `set` steps: from the
    first step's start to the run's end, over the number of steps."""
    runs = await launch_and_watch(client, fixtures.SET_STEPS, plan.set_runs)
    per_step = []
    for run in runs:
        if run.final["state"] != "succeeded":
            raise BenchError(f"the set-steps run ended {run.final}")
        first = run.final.get("first_step_at")
        began = (
            server_time(run.final, "first_step_at")
            if first
            else server_time(run.first("state", "running"))
        )
        per_step.append((server_time(run.final) - began) / fixtures.SET_STEP_COUNT)
    findings.figures["builtin_step_us"] = rounded(median(per_step) * 1e6, 2)


async def page_time(client: httpx.AsyncClient, path: str, samples: int) -> float:
    """The median time to fetch a page whole, in milliseconds."""
    [connection] = await bare_connections(client, 1)
    timings = []
    try:
        for index in range(samples + 3):
            began = time.perf_counter()
            answer = await connection.get(path)
            elapsed = time.perf_counter() - began
            if answer.status != 200:
                raise BenchError(f"{path} answered {answer.status}")
            if index >= 3:  # the first few fill caches that stay warm afterwards
                timings.append(_ms(elapsed))
    finally:
        await connection.close()
    return rounded(median(timings))


async def sse_watchers(
    client: httpx.AsyncClient,
    plan: Plan,
    findings: Findings,
    quiet: Callable[[], Awaitable[None]],
) -> None:
    """`plan.watchers` live pages of one run: from the run's state change to
    its arrival at each page. Each round gives a p99 over its pages; the figure
    is the median round, so that one round disturbed by the machine's other
    work does not stand for all of them."""
    session_token = client.cookies.get(SESSION_COOKIE)
    if session_token is None:
        raise BenchError("the signed-in client holds no session cookie")
    token = await csrf_token(client, fixtures.WAITING)
    rounds: list[list[float]] = []
    stolen: list[float | None] = []
    for _round in range(plan.watcher_rounds):
        run_id = await launch(client, fixtures.WAITING, token)
        watchers = [
            RawWatcher(str(client.base_url), session_token, run_id)
            for _index in range(plan.watchers)
        ]
        tasks = await _connect_all(watchers)
        # Each stream re-reads the store shortly after it opens, a thousand
        # reads queued for the server's worker threads, where the run's own
        # final write would wait behind them: only the state change itself is
        # to be measured, so the server is let finish them first.
        await quiet()
        # The thousand streams' arrivals are stamped in this process: a pass
        # of its own collector meanwhile would be counted as the server's.
        gc.disable()
        cpu_before = machine.cpu_times()
        try:
            answer = await client.post(
                f"/runs/{run_id}/cancel", headers={"x-csrf-token": token}
            )
            if answer.status_code != 303:
                raise BenchError(f"cancelling answered {answer.status_code}")
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        finally:
            gc.enable()
        stolen.append(machine.stolen_percent(cpu_before))
        latencies = []
        for watcher in watchers:
            assert watcher.final is not None and watcher.final_at is not None
            latencies.append(_ms(watcher.final_at - server_time(watcher.final)))
        rounds.append(sorted(latencies))

    p99s = [percentile(latencies, 0.99) for latencies in rounds]
    findings.figures["sse_watchers"] = {
        "count": plan.watchers,
        "p99_ms": rounded(median(p99s)),
    }
    findings.notes["sse_watchers"] = "; ".join(
        f"round {index + 1}: first {latencies[0]:.1f} ms, median"
        f" {median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms,"
        f" last {latencies[-1]:.1f} ms, {_stolen(share)} stolen"
        for index, (latencies, share) in enumerate(zip(rounds, stolen, strict=True))
    )


def _stolen(share: float | None) -> str:
    return "unknown CPU" if share is None else f"{share}% of the CPU"


async def _connect_all(
    watchers: list[RawWatcher], at_once: int = 100
) -> list[asyncio.Task[None]]:
    """Open the watchers' streams, `at_once` at a time, until each has had
    its first event (and so is subscribed to the live ones)."""
    tasks = []
    for start in range(0, len(watchers), at_once):
        batch = watchers[start : start + at_once]
        tasks += [asyncio.ensure_future(watcher.run()) for watcher in batch]
        waits = [watcher.subscribed.wait() for watcher in batch]
        await asyncio.wait_for(_first_of(asyncio.gather(*waits), tasks), 60)
    return tasks


async def _first_of(waiting: Awaitable[Any], tasks: list[asyncio.Task[None]]) -> None:
    """Wait for `waiting`, but fail at once when a watcher fails."""
    waiter = asyncio.ensure_future(waiting)
    pending: set[asyncio.Future[Any]] = {waiter, *tasks}
    while not waiter.done():
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            if finished is not waiter and finished.exception() is not None:
                waiter.cancel()
                raise BenchError(f"a watcher failed: {finished.exception()!r}")
