"""A bare HTTP/1.1 client on one kept-alive connection, for the figures that are
timed on the client's side.

httpx costs this machine about 2.5 ms of its own per request (measured against
`/healthz`: 3.6 ms through httpx, 1.0 ms through this client), which a browser's
network stack does not; timing with it would put httpx into flowdesk's figures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from client import SESSION_COOKIE, BenchError

HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class BareConnection:
    """Requests one after the other on one connection, as a signed-in browser
    tab sends them."""

    def __init__(self, host: str, port: int, session_token: str) -> None:
        self.host = host
        self.port = port
        self.cookie = f"{SESSION_COOKIE}={session_token}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> BareConnection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    async def get(self, path: str) -> Answer:
        self._send("GET", path)
        return await self._answer()

    async def post_form(self, path: str, fields: dict[str, str]) -> Answer:
        self._send("POST", path, urlencode(fields).encode())
        return await self._answer()

    async def events(self, path: str) -> AsyncIterator[tuple[dict[str, Any], float]]:
        """Each server-sent event's data with its arrival (`perf_counter`),
        until the server ends the stream."""
        self._send("GET", path, accept="text/event-stream")
        status, headers = await self._head()
        if status != 200 or headers.get("transfer-encoding") != "chunked":
            raise BenchError(f"{path} answered {status} without a chunked stream")
        buffer = b""
        while True:
            chunk = await self._chunk()
            if not chunk:
                return
            arrived = time.perf_counter()
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"data:"):
                        yield json.loads(line[5:]), arrived

    def _send(
        self, method: str, path: str, body: bytes = b"", accept: str = "*/*"
    ) -> None:
        assert self._writer is not None, "the connection was not opened"
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Cookie: {self.cookie}",
            f"Accept: {accept}",
        ]
        if method == "POST":
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def _answer(self) -> Answer:
        status, headers = await self._head()
        if headers.get("transfer-encoding") == "chunked":
            parts = []
            while chunk := await self._chunk():
                parts.append(chunk)
            return Answer(status, headers, b"".join(parts))
        assert self._reader is not None
        length = int(headers.get("content-length", "0"))
        return Answer(status, headers, await self._reader.readexactly(length))

    async def _head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None, "the connection was not opened"
        head = (await self._reader.readuntil(HEAD_END)).decode("latin-1")
        status_line, *header_lines = head[: -len(HEAD_END)].split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    async def _chunk(self) -> bytes:
        """The next chunk of a chunked body; empty at its end."""
        assert self._reader is not None
        size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
        data = await self._reader.readexactly(size + 2)  # and its CRLF
        return data[:-2]
