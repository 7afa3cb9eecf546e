"""The `http` step: one HTTP request, its answer saved as `{status, headers,
body}` (the body parsed when the answer says it is JSON, else text).

An answer of 400 or more fails the step unless `allow_status` lists it.
Idempotent requests may be retried (`retries`) on connection errors, timeouts
and the statuses that mean "try again later". Answers are read as a stream and
refused beyond the run's size limit. A `connection` supplies the base URL,
default headers and credentials, the latter read from the run's secrets.

All requests of a process share one `httpx.AsyncClient` per event loop, so
connections to the same host are pooled across steps and runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from flowdesk import __version__
from flowdesk.engine.connections import Connection
from flowdesk.engine.expressions import Literal, Value
from flowdesk.engine.steps.base import (
    Step,
    StepCompiler,
    invalid,
    register_step,
    save_as_name,
    timeout_seconds,
    type_name,
)
from flowdesk.errors import StepFailed

if TYPE_CHECKING:
    from flowdesk.engine.runner import Execution

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Sending these twice does no more than sending them once, so they may be retried.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRIES = 10
MAX_RETRY_WAIT_SECONDS = 60.0  # however long a Retry-After header asks for

_PAYLOAD_KEYS = ("json", "form", "body")
_SNIPPET_CHARS = 200

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    """The HTTP client of the running event loop, made on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            follow_redirects=True,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"User-Agent": f"flowdesk/{__version__}"},
        )
        _clients[loop] = client
    return client


async def close_shared_client() -> None:
    """Close the running loop's client and its pooled connections."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


@dataclass(frozen=True)
class _Request:
    method: str
    url: httpx.URL
    headers: dict[str, str]
    content: bytes | None
    shown_as: str  # "GET https://..." with secrets masked, for logs and messages


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: httpx.Headers
    content: bytes
    charset: str | None
    milliseconds: int


class _Retryable(Exception):
    """A failure worth another attempt: connection errors and timeouts."""


@register_step
class HttpStep(Step):
    """Sends one HTTP request; the value of `http` is the URL."""

    kind = "http"
    options = frozenset(
        {
            "method",
            "headers",
            "query",
            *_PAYLOAD_KEYS,
            "timeout",
            "connection",
            "allow_status",
            "retries",
            "save_as",
        }
    )
    __slots__ = (
        "allowed",
        "connection",
        "headers",
        "method",
        "payload",
        "payload_kind",
        "query",
        "retries",
        "target",
        "timeout",
        "url",
    )

    def __init__(
        self,
        path: str,
        name: str | None,
        *,
        url: Value,
        method: Value,
        headers: Value | None,
        query: Value | None,
        payload: tuple[str, Value] | None,
        timeout: Value | None,
        connection: Value | None,
        allowed: frozenset[int],
        retries: int,
        target: str | None,
    ) -> None:
        super().__init__(path, name)
        self.url = url
        self.method = method
        self.headers = headers
        self.query = query
        self.payload_kind: str | None = payload[0] if payload else None
        self.payload: Value | None = payload[1] if payload else None
        self.timeout = timeout
        self.connection = connection
        self.allowed = allowed
        self.retries = retries
        self.target = target

    @classmethod
    def compile(
        cls, spec: Mapping[str, Any], path: str, compiler: StepCompiler
    ) -> HttpStep:
        given = [key for key in _PAYLOAD_KEYS if key in spec]
        if len(given) > 1:
            raise invalid(
                path,
                f"'http' sends one body, but the step has {' and '.join(given)};"
                " keep one of them",
            )
        payload = None
        if given:
            key = given[0]
            field = compiler.text if key == "body" else compiler.value
            payload = (key, field(spec[key], path, key))

        method = _compile_method(spec.get("method", "GET"), path, compiler)
        retries = _retries(spec.get("retries", 0), path)
        literal_method = method.value if isinstance(method, Literal) else None
        if retries and literal_method not in (None, *IDEMPOTENT_METHODS):
            raise invalid(
                path,
                f"'retries' applies to {', '.join(sorted(IDEMPOTENT_METHODS))};"
                f" a repeated {literal_method} could do its work twice",
            )

        def optional(key: str, text: bool = False) -> Value | None:
            if key not in spec:
                return None
            field = compiler.text if text else compiler.value
            return field(spec[key], path, key)

        return cls(
            path,
            spec.get("name"),
            url=compiler.text(spec["http"], path, "http"),
            method=method,
            headers=optional("headers"),
            query=optional("query"),
            payload=payload,
            timeout=optional("timeout"),
            connection=optional("connection", text=True),
            allowed=_allowed_statuses(spec.get("allow_status", []), path),
            retries=retries,
            target=save_as_name(spec, path),
        )

    async def run(self, execution: Execution) -> None:
        request = self._request(execution)
        timeout = self._timeout(execution)
        answer = await self._send(execution, request, timeout)

        if answer.status >= 400 and answer.status not in self.allowed:
            raise StepFailed(
                self.path,
                f"{request.shown_as} answered {answer.status} {answer.reason}"
                f"{_snippet(answer)}",
            )
        if self.target is not None:
            value = {
                "status": answer.status,
                "headers": {
                    name.lower(): text for name, text in answer.headers.items()
                },
                "body": await self._body(execution, answer, request),
            }
            execution.assign(self.target, value, self.path)

    # Building the request.

    def _request(self, execution: Execution) -> _Request:
        names = execution.names
        method = str(self.method.evaluate(names)).strip().upper()
        if method not in METHODS:
            raise StepFailed(
                self.path,
                f"method must be one of {', '.join(METHODS)}, got {method!r}",
            )

        connection = self._connection(execution)
        url_text = self.url.evaluate(names).strip()
        if connection is not None:
            url_text = _under_base(connection, url_text, self.path, execution)

        headers: dict[str, str] = {}
        params: list[tuple[str, str | int | float | bool | None]] = []
        if connection is not None:
            headers.update(connection.headers)
            _authenticate(connection, execution, headers, params, self.path)
        headers.update(self._mapping(self.headers, "headers", names, scalar_only=True))
        params.extend(
            _pairs(self._mapping(self.query, "query", names, scalar_only=False))
        )
        content = self._content(names, headers)

        shown = execution.redact(url_text)
        if params:
            joiner = "&" if "?" in shown else "?"
            shown += joiner + "&".join(
                f"{key}={execution.redact(str(value))}" for key, value in params
            )
        try:
            url = httpx.URL(url_text)
            if params:
                url = url.copy_merge_params(params)
        except (httpx.InvalidURL, TypeError, ValueError) as error:
            raise StepFailed(
                self.path, f"the URL {shown!r} is not valid: {error}"
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            hint = "" if connection else ", or name a connection for a relative URL"
            raise StepFailed(
                self.path,
                f"the URL {shown!r} must start with http:// or https://{hint}",
            )
        return _Request(method, url, headers, content, f"{method} {shown}")

    def _connection(self, execution: Execution) -> Connection | None:
        if self.connection is None:
            return None
        name = self.connection.evaluate(execution.names).strip()
        connection = execution.connections.get(name)
        if connection is None:
            known = ", ".join(sorted(execution.connections)) or "none yet"
            raise StepFailed(
                self.path,
                f"there is no connection named {name!r} (known: {known});"
                " add it on the Connections page or with"
                f" 'flowdesk connections set {name} --base-url ...'",
            )
        return connection

    def _mapping(
        self,
        field: Value | None,
        key: str,
        names: dict[str, Any],
        *,
        scalar_only: bool,
    ) -> dict[str, Any]:
        if field is None:
            return {}
        value = field.evaluate(names)
        if not isinstance(value, Mapping):
            raise StepFailed(
                self.path, f"{key} must be a mapping of names to values, got {value!r}"
            )
        mapping: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue  # an optional parameter left out
            if isinstance(item, list | tuple) and not scalar_only:
                mapping[str(name)] = [_as_text(part) for part in item]
            elif isinstance(item, Mapping | list | tuple):
                raise StepFailed(
                    self.path,
                    f"{key} '{name}' must be text or a number, got {type_name(item)}",
                )
            else:
                mapping[str(name)] = _as_text(item)
        return mapping

    def _content(self, names: dict[str, Any], headers: dict[str, str]) -> bytes | None:
        if self.payload is None:
            return None
        value = self.payload.evaluate(names)
        present = {name.lower() for name in headers}

        def default_type(content_type: str) -> None:
            if "content-type" not in present:
                headers["Content-Type"] = content_type

        if self.payload_kind == "json":
            try:
                text = json.dumps(value, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise StepFailed(
                    self.path, f"json must be JSON data, got {_short(value)} ({error})"
                ) from None
            default_type("application/json")
            return text.encode()

        if self.payload_kind == "form":
            if not isinstance(value, Mapping):
                raise StepFailed(
                    self.path, f"form must be a mapping of fields, got {_short(value)}"
                )
            fields = self._mapping(Literal(value), "form", names, scalar_only=False)
            default_type("application/x-www-form-urlencoded")
            return urlencode(_pairs(fields)).encode()

        default_type("text/plain; charset=utf-8")
        return str(value).encode()

    def _timeout(self, execution: Execution) -> float:
        return timeout_seconds(
            self.timeout,
            execution.limits.http_timeout_seconds,
            execution.names,
            self.path,
        )

    # Sending it.

    async def _send(
        self, execution: Execution, request: _Request, timeout: float
    ) -> _Answer:
        attempts = 1 + (self.retries if request.method in IDEMPOTENT_METHODS else 0)
        delay = execution.limits.http_retry_delay_seconds
        limit = execution.limits.http_max_response_bytes

        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                answer = await _attempt(request, timeout, limit, self.path)
            except _Retryable as problem:
                if last:
                    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                    raise StepFailed(
                        self.path, f"{request.shown_as} {problem}{tries}"
                    ) from None
                await self._log_retry(execution, f"{request.shown_as} {problem}", delay)
            else:
                await self._log_answer(execution, request, answer)
                if answer.status not in RETRY_STATUSES or last:
                    return answer
                wait = max(delay, _retry_after(answer))
                summary = f"{request.shown_as} answered {answer.status}"
                await self._log_retry(execution, summary, wait)
                delay = wait
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_WAIT_SECONDS)
        raise AssertionError("the last attempt returns or raises")

    async def _log_answer(
        self, execution: Execution, request: _Request, answer: _Answer
    ) -> None:
        # The reason phrase comes from the other end, so it is masked too.
        await execution.reporter.log(
            execution.redact(
                f"{request.shown_as} answered {answer.status} {answer.reason}"
                f" in {answer.milliseconds} ms"
            ),
            level="warning" if answer.status >= 400 else "info",
            step=self.label,
        )

    async def _log_retry(self, execution: Execution, problem: str, wait: float) -> None:
        await execution.reporter.log(
            execution.redact(f"{problem}; trying again in {wait:g} s"),
            level="warning",
            step=self.label,
        )

    async def _body(
        self, execution: Execution, answer: _Answer, request: _Request
    ) -> Any:
        text = _decode(answer)
        content_type = answer.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return text
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            await execution.reporter.log(
                f"{request.shown_as} said its answer is JSON, but it is not;"
                " keeping it as text",
                level="warning",
                step=self.label,
            )
            return text


async def _attempt(request: _Request, timeout: float, limit: int, path: str) -> _Answer:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with shared_client().stream(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                timeout=timeout,
            ) as response:
                content = await _read_limited(response, limit, request, path)
    except (TimeoutError, httpx.TimeoutException):
        raise _Retryable(f"did not answer within {timeout:g} s") from None
    except httpx.ConnectError as error:
        raise _Retryable(f"could not connect: {_reason(error)}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
        raise _Retryable(f"failed: {_reason(error)}") from None
    except httpx.HTTPError as error:
        raise StepFailed(path, f"{request.shown_as} failed: {_reason(error)}") from None

    return _Answer(
        status=response.status_code,
        reason=response.reason_phrase,
        headers=response.headers,
        content=content,
        charset=response.charset_encoding,
        milliseconds=round((time.perf_counter() - started) * 1000),
    )


async def _read_limited(
    response: httpx.Response, limit: int, request: _Request, path: str
) -> bytes:
    """The answer's body, stopping as soon as it grows past `limit` bytes."""
    too_large = StepFailed(
        path,
        f"the answer to {request.shown_as} is larger than the limit of {_size(limit)}",
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large

    chunks = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _compile_method(raw: Any, path: str, compiler: StepCompiler) -> Value:
    if isinstance(raw, str) and "{" not in raw:
        method = raw.strip().upper()
        if method not in METHODS:
            raise invalid(
                path, f"'method' must be one of {', '.join(METHODS)}, got {raw!r}"
            )
        return Literal(method)
    return compiler.text(raw, path, "method")


def _retries(raw: Any, path: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_RETRIES:
        raise invalid(
            path,
            f"'retries' must be a whole number from 0 to {MAX_RETRIES}, got {raw!r}",
        )
    return raw


def _allowed_statuses(raw: Any, path: str) -> frozenset[int]:
    if not isinstance(raw, list) or not all(
        isinstance(status, int)
        and not isinstance(status, bool)
        and 100 <= status <= 599
        for status in raw
    ):
        raise invalid(
            path,
            f"'allow_status' must be a list of HTTP statuses such as [404];"
            f" got {raw!r}",
        )
    return frozenset(raw)


def _under_base(
    connection: Connection, url_text: str, path: str, execution: Execution
) -> str:
    """The URL of a request through `connection`: a relative URL joined to its
    base URL; an absolute one only on the base URL's own site, so that the
    connection's credentials never go to another."""
    base = connection.base_url
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url_text):
        if not url_text:
            return base
        return base.rstrip("/") + "/" + url_text.lstrip("/")

    given, own = httpx.URL(url_text), httpx.URL(base)
    if (given.scheme, given.host, given.port) != (own.scheme, own.host, own.port):
        raise StepFailed(
            path,
            f"the URL {execution.redact(url_text)!r} is not on the site of the"
            f" connection '{connection.name}' ({base}); use a relative URL, or no"
            " connection for other sites",
        )
    return url_text


def _authenticate(
    connection: Connection,
    execution: Execution,
    headers: dict[str, str],
    params: list[tuple[str, str | int | float | bool | None]],
    path: str,
) -> None:
    auth = connection.auth
    if auth is None:
        return
    secret = execution.secrets.get(auth.secret)
    if secret is None:
        raise StepFailed(
            path,
            f"the connection '{connection.name}' needs the secret '{auth.secret}',"
            f" which is not set; set it with 'flowdesk secrets set {auth.secret}'",
        )

    if auth.kind == "bearer":
        headers["Authorization"] = f"Bearer {secret}"
    elif auth.kind == "basic":
        pair = f"{auth.username or ''}:{secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif auth.location == "query":
        params.append((auth.param_name or "api_key", secret))
    else:
        headers[auth.param_name or "X-API-Key"] = secret


def _pairs(mapping: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in mapping.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, item) for item in values)
    return pairs


def _as_text(value: Any) -> str:
    # JSON's spelling, which is what an API on the other end expects.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(answer: _Answer) -> str:
    try:
        return answer.content.decode(answer.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return answer.content.decode("utf-8", errors="replace")


def _snippet(answer: _Answer) -> str:
    text = " ".join(_decode(answer).split())
    if not text:
        return ""
    if len(text) > _SNIPPET_CHARS:
        text = text[: _SNIPPET_CHARS - 3] + "..."
    return f": {text}"


def _retry_after(answer: _Answer) -> float:
    # Only the number-of-seconds form; a date is rare and its clock unknown.
    value = answer.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_WAIT_SECONDS)


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MB"
    if count % 1024 == 0:
        return f"{count // 1024} KB"
    return f"{count} bytes"
