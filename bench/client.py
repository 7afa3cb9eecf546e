"""What a browser does, done by the benchmark: sign in, open the launch form
for its CSRF token, post the form, follow the run's live events."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from server import ADMIN_PASSWORD

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
CSRF_PATTERN = re.compile(r'name="_csrf" value="([^"]+)"')
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
SESSION_COOKIE = "flowdesk_session"


class BenchError(Exception):
    """The server answered differently from what a working flowdesk does."""


async def signed_in(base_url: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """A client holding a fresh session of the admin user."""
    client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
    # The sign-in page's hidden fields carry its pre-session token (its cookie
    # stays in the client), as a browser sends them back.
    page = await client.get("/login")
    form = dict(HIDDEN_FIELD.findall(page.text))
    answer = await client.post(
        "/login",
        data={**form, "username": "admin", "password": ADMIN_PASSWORD},
    )
    if answer.status_code != 303:
        await client.aclose()
        raise BenchError(f"signing in answered {answer.status_code}: {answer.text}")
    return client


async def csrf_token(client: httpx.AsyncClient, flow_id: str) -> str:
    """The CSRF token of the launch form, as a browser finds it in the page."""
    page = await client.get(f"/interactive-flows/{flow_id}")
    found = CSRF_PATTERN.search(page.text)
    if page.status_code != 200 or found is None:
        raise BenchError(f"the launch page of {flow_id} answered {page.status_code}")
    return found.group(1)


async def launch(
    client: httpx.AsyncClient,
    flow_id: str,
    token: str,
    fields: Iterable[tuple[str, str]] = (),
) -> str:
    """Post the launch form; returns the id of the run the 303 points at."""
    form: dict[str, list[str]] = {"_csrf": [token]}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    answer = await client.post(f"/interactive-flows/{flow_id}/runs", data=form)
    location: str = answer.headers.get("location", "")
    if answer.status_code != 303 or not location.startswith("/runs/"):
        raise BenchError(
            f"starting {flow_id} answered {answer.status_code}: {answer.text[:500]}"
        )
    return location.removeprefix("/runs/")


@dataclass(frozen=True)
class Watched:
    """A run's events as its page received them, and when the last arrived
    (a `time.perf_counter()` reading)."""

    events: list[dict[str, Any]]
    done_at: float

    @property
    def final(self) -> dict[str, Any]:
        return self.events[-1]

    def first(self, kind: str, state: str | None = None) -> dict[str, Any]:
        for event in self.events:
            if event["kind"] == kind and (state is None or event.get("state") == state):
                return event
        raise BenchError(f"the run sent no {kind} event {state or ''}")


async def watch(client: httpx.AsyncClient, run_id: str) -> Watched:
    """Follow the run page's event stream until the run's final state."""
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"/runs/{run_id}/events") as stream:
        if stream.status_code != 200:
            raise BenchError(f"the event stream answered {stream.status_code}")
        async for event in sse_events(stream.aiter_text()):
            events.append(event)
            if is_final(event):
                return Watched(events, time.perf_counter())
    raise BenchError(f"the event stream of run {run_id} ended before the run did")


async def sse_events(chunks: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """The JSON data of each server-sent event in a stream of text chunks."""
    buffer = ""
    async for chunk in chunks:
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[5:] for line in block.split("\n") if line.startswith("data:")]
            if data:
                yield json.loads("\n".join(data))


def is_final(event: dict[str, Any]) -> bool:
    return event.get("kind") == "state" and event.get("state") in FINAL_STATES


def server_time(event: dict[str, Any], key: str = "at") -> float:
    """An event's time stamp (set by the server, same clock as `time.time()`)."""
    return datetime.fromisoformat(event[key]).timestamp()


class RawWatcher(asyncio.Protocol):
    """One live run page on a bare socket, as a protocol whose callback stamps
    each chunk the moment it arrives: a thousand httpx streams, or even stream
    readers, would add the client's own queueing to what is measured."""

    def __init__(self, base_url: str, session_token: str, run_id: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.request = (
            f"GET /runs/{run_id}/events HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\n"
            f"Cookie: {SESSION_COOKIE}={session_token}\r\n\r\n"
        ).encode()
        self.subscribed = asyncio.Event()
        self.final: dict[str, Any] | None = None
        self.final_at: float | None = None  # time.time() on arrival
        self._buffer = b""
        self._head_seen = False
        self._ended: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Open the stream and wait for the run's final state; `subscribed`
        is set with the first event (the server subscribes the page before it
        sends the stored events), `final` and `final_at` at the end."""
        loop = asyncio.get_running_loop()
        self._ended = loop.create_future()
        transport, _protocol = await loop.create_connection(
            lambda: self, self.host, self.port
        )
        try:
            await self._ended
        finally:
            transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes.
        cast(asyncio.WriteTransport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self._buffer += data
        if not self._head_seen:
            head, separator, rest = self._buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            if not head.startswith(b"HTTP/1.1 200"):
                self._end(BenchError(f"a watcher was answered {head[:40]!r}"))
                return
            self._head_seen, self._buffer = True, rest
        self._take_events(arrived)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.final is None:
            self._end(BenchError("a watcher's stream closed before the end"))

    def _take_events(self, arrived: float) -> None:
        # The body is chunked; chunk sizes land on lines of their own and are
        # skipped because they do not start with "data:".
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                self.subscribed.set()
                if is_final(event):
                    self.final, self.final_at = event, arrived
                    self._end(None)

    def _end(self, error: Exception | None) -> None:
        if self._ended is None or self._ended.done():
            return
        if error is None:
            self._ended.set_result(None)
        else:
            self._ended.set_exception(error)
