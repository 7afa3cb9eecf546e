"""A small HTTP API on a free loopback port, served from a thread, for the tests
of `http` steps. It records what it was sent and can fail on purpose.

    /json          {"hello": "world"} as JSON
    /text          plain text
    /bad-json      says JSON, sends something else
    /echo          (any method) the request as JSON: method, path, query,
                   headers, body
    /status/N      answers with status N
    /flaky/KEY     ?fails=2&how=503|drop: fails that often per KEY, then 200
                   with {"attempts": n}
    /slow          ?seconds=S: waits, then answers
    /big           ?bytes=N[&chunked=1]: N bytes, with or without a length
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ApiServer:
    url: str
    attempts: Counter[str] = field(default_factory=Counter)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
    api: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests look at what was recorded instead

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        seen = {
            "method": self.command,
            "path": parts.path,
            "query": query,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body,
        }
        self.api.requests.append(seen)
        path = parts.path

        if path == "/json":
            self._send(200, json.dumps({"hello": "world"}), "application/json")
        elif path == "/text":
            self._send(200, "just text", "text/plain; charset=utf-8")
        elif path == "/bad-json":
            self._send(200, "{not json", "application/json")
        elif path.startswith("/api/v1/") or path == "/echo":
            self._send(200, json.dumps(seen), "application/json")
        elif path.startswith("/status/"):
            status = int(path.removeprefix("/status/"))
            self._send(
                status, json.dumps({"error": f"status {status}"}), "application/json"
            )
        elif path.startswith("/flaky/"):
            self._flaky(path.removeprefix("/flaky/"), query)
        elif path == "/slow":
            time.sleep(float(query.get("seconds", ["1"])[0]))
            self._send(200, "finally", "text/plain")
        elif path == "/big":
            self._big(int(query["bytes"][0]), "chunked" in query)
        else:
            self._send(404, "no such thing", "text/plain")

    def _flaky(self, key: str, query: dict[str, list[str]]) -> None:
        self.api.attempts[key] += 1
        attempt = self.api.attempts[key]
        fails = int(query.get("fails", ["2"])[0])
        how = query.get("how", ["503"])[0]
        if attempt <= fails:
            if how == "drop":
                self.close_connection = True  # hang up without an answer
                return
            self._send(int(how), "try later", "text/plain", {"Retry-After": "0"})
            return
        self._send(200, json.dumps({"attempts": attempt}), "application/json")

    def _big(self, size: int, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        block = b"x" * 65536
        sent = 0
        try:
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                if chunked:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    self.wfile.write(piece)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should
        self.close_connection = True

    def _send(
        self,
        status: int,
        text: str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


@contextmanager
def serve_api() -> Iterator[ApiServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    api = ApiServer(f"http://127.0.0.1:{server.server_address[1]}")
    handler = type("Handler", (_Handler,), {"api": api})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
