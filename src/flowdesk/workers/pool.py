"""A warm pool of `python` step workers, one pool per process.

Workers are started before they are needed and reused across steps and runs,
so a small step costs a pipe round trip instead of a fresh interpreter. A worker
whose step timed out, ran out of memory or crashed is killed and replaced.

Each worker confines itself with Landlock (`sandbox`) before it takes any step
code, and reports how in its first line; the pool passes it the server's paths
(data dir, database) that must stay closed, and says once in the log what is
and is not enforced. `PythonWorkerPool.sandbox` tells the same to code and
tests.

The pool is not tied to an event loop: each call talks to its worker from one of
the pool's own threads, so the server's loop, the CLI's and a test's can all use
the same pool. `shared_pool()` is the process's pool; the executor shuts it down
with `shutdown_shared_pool()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flowdesk.errors import ConfigError
from flowdesk.workers import python_worker, sandbox
from flowdesk.workers.sandbox import Confinement

logger = logging.getLogger(__name__)

WORKER_PROGRAM = Path(python_worker.__file__).resolve()
DEFAULT_SIZE = 2
DEFAULT_MAX_MEMORY_MB = 512
DEFAULT_SANDBOX = "auto"

# An answer longer than this is refused; the worker itself keeps results far
# smaller, so only a broken worker sends one.
_MAX_ANSWER_BYTES = 2 * python_worker.MAX_RESULT_BYTES
_READ_CHUNK = 1024 * 1024
_MB = 1024 * 1024


@dataclass(frozen=True)
class PythonCall:
    """One step execution: its code (and the code's hash, the key the worker
    caches the compiled function by), its names as JSON, and its limits."""

    code: str
    key: str
    names_json: str
    timeout: float
    memory_mb: int


@dataclass(frozen=True)
class PythonOutcome:
    """How a call ended. `failure` is None on success, else one of
    `exception`, `result`, `memory`, `timeout`, `crash`."""

    value: Any = None
    stdout: str = ""
    stderr: str = ""
    failure: str | None = None
    message: str = ""
    line: int | None = None
    traceback: str = ""
    memory_mb: int = 0  # the limit the step ran with
    sandboxed: bool = False  # whether the worker ran it under Landlock

    @property
    def reusable(self) -> bool:
        """Whether the worker may run another step after this one."""
        return self.failure in (None, "exception", "result")


class _WorkerGone(Exception):
    """The worker process ended or sent something that is not an answer."""


class _Worker:
    """One worker process, driven from one thread at a time."""

    def __init__(
        self, max_memory_mb: int, sandbox_mode: str, protected: tuple[str, ...]
    ) -> None:
        self.workdir = tempfile.mkdtemp(prefix="flowdesk-python-")
        options = {
            "sandbox": sandbox_mode,
            "workdir": self.workdir,
            "protected": protected,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                str(WORKER_PROGRAM),
                str(max_memory_mb * _MB),
                json.dumps(options),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
            env=_clean_environment(self.workdir),
            close_fds=True,
            # Its own process group, so that killing it also kills whatever
            # the step's code started.
            start_new_session=True,
        )
        assert self.process.stdin and self.process.stdout
        self._stdin: IO[bytes] = self.process.stdin
        self._stdout: IO[bytes] = self.process.stdout
        os.set_blocking(self._stdin.fileno(), False)
        self._buffer = bytearray()
        self._killed = False
        # Known from the worker's first line, read before its first request.
        self.confinement: Confinement | None = None

    def call(self, request: bytes, timeout: float) -> dict[str, Any] | None:
        """Send one request and return the answer, or None when the timeout
        passed first. Raises `_WorkerGone`."""
        deadline = time.monotonic() + timeout
        if self.confinement is None and not self._greet(deadline):
            return None
        if not self._send(request, deadline):
            return None
        return self._receive(deadline)

    def _greet(self, deadline: float) -> bool:
        hello = self._receive(deadline)
        if hello is None:
            return False
        if not isinstance(hello.get("sandbox"), dict):
            raise _WorkerGone("it did not say how it is sandboxed")
        confinement = Confinement.from_json(hello["sandbox"])
        self.confinement = confinement
        if confinement.mode == "required" and not confinement.enforced:
            raise _WorkerGone(
                "it could not enable its sandbox, which FLOWDESK_PYTHON_SANDBOX"
                f" requires: {confinement.problem}"
            )
        return True

    def _send(self, request: bytes, deadline: float) -> bool:
        view = memoryview(request)
        descriptor = self._stdin.fileno()
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _readable, writable, _failed = select.select(
                [], [descriptor], [], remaining
            )
            if not writable:
                continue
            try:
                written = os.write(descriptor, view)
            except BlockingIOError:
                continue
            except OSError as error:  # a broken pipe: the worker is gone
                raise _WorkerGone(str(error)) from None
            view = view[written:]
        return True

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        descriptor = self._stdout.fileno()
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                try:
                    answer: dict[str, Any] = json.loads(line)
                except ValueError:
                    raise _WorkerGone("it sent an answer that is not JSON") from None
                return answer

            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _writable, _failed = select.select(
                [descriptor], [], [], remaining
            )
            if not readable:
                continue
            chunk = os.read(descriptor, _READ_CHUNK)
            if not chunk:
                raise _WorkerGone(self._how_it_ended())
            self._buffer += chunk
            if len(self._buffer) > _MAX_ANSWER_BYTES:
                raise _WorkerGone("it sent an answer larger than any result may be")

    def _how_it_ended(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "it closed its output"
        if code < 0:
            return f"it was ended by signal {signal.Signals(-code).name}"
        return f"it exited with code {code}"

    def stop(self) -> None:
        """Kill the process and its group; a thread waiting on it wakes up.
        Safe from any thread, since the pipes stay open."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """Stop the process and clean up after it; only once no thread talks
        to it any more."""
        if self._killed:
            return
        self._killed = True
        self.stop()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _clean_environment(workdir: str) -> dict[str, str]:
    # Nothing of the server's environment: no FLOWDESK_* settings, no secret key,
    # no database URL.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
    }


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[_Worker]"]


class PythonWorkerPool:
    """At most `size` worker processes, each with at most `max_memory_mb` of
    address space; calls beyond `size` wait for a free worker."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
        *,
        sandbox_mode: str = DEFAULT_SANDBOX,
        protected: tuple[str, ...] = (),
    ) -> None:
        if size < 1:
            raise ValueError(f"A pool needs at least one worker, got {size}.")
        if sandbox_mode not in sandbox.MODES:
            raise ValueError(
                f"The sandbox mode must be one of {', '.join(sandbox.MODES)};"
                f" got {sandbox_mode!r}."
            )
        self.size = size
        self.max_memory_mb = max_memory_mb
        self.sandbox_mode = sandbox_mode
        self.protected = protected
        self._sandbox = expected_sandbox(sandbox_mode)
        self._sandbox_reported = False
        announce_sandbox(self._sandbox)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._count = 0  # idle plus busy
        self._waiters: deque[_Waiter] = deque()
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="python-step")
        self._closed = False

    def start(self) -> None:
        """Start workers up to the pool's size, without waiting for them."""
        while True:
            with self._lock:
                if self._closed or self._count >= self.size:
                    return
                self._count += 1
            worker = self._spawn()
            if worker is None:
                with self._lock:
                    self._count -= 1
                return
            self._give_back(worker)

    async def call(self, call: PythonCall) -> PythonOutcome:
        """Run one step on a free worker (starting the pool if needed)."""
        memory_mb = min(call.memory_mb, self.max_memory_mb)
        request = _request_line(call, memory_mb)
        worker = await self._acquire()
        try:
            talking = self._threads.submit(
                _talk, worker, request, call.timeout, memory_mb
            )
        except RuntimeError:  # the pool was closed meanwhile
            self._release(worker, reusable=False)
            raise
        try:
            outcome = await asyncio.wrap_future(talking)
        except asyncio.CancelledError:
            # The killed worker ends the thread's wait; the worker is cleaned
            # up and replaced once the thread has let go of it.
            worker.stop()
            talking.add_done_callback(lambda _done: self._release(worker, False))
            raise
        if not self._sandbox_reported and worker.confinement is not None:
            self._note_sandbox(worker.confinement)
        self._release(worker, outcome.reusable)
        return outcome

    @property
    def sandbox(self) -> Confinement:
        """What the sandbox enforces: as a worker reported it, or, before the
        first step, what the kernel's Landlock support promises."""
        return self._sandbox

    def _note_sandbox(self, confinement: Confinement) -> None:
        # Once per pool: every worker is set up alike.
        self._sandbox_reported = True
        self._sandbox = confinement
        if confinement.enforced != expected_sandbox(self.sandbox_mode).enforced:
            announce_sandbox(confinement)
        for path in confinement.dropped:
            logger.warning(
                "python steps may NOT read %s: it would expose the server's"
                " files to them; keep the data dir and database outside"
                " Python's installation and sys.path",
                path,
            )

    def close(self) -> None:
        """Stop every worker; calls still running fail as crashed."""
        with self._lock:
            self._closed = True
            idle, busy = list(self._idle), list(self._busy)
            self._idle.clear()
            self._count -= len(idle)
            waiters = list(self._waiters)
            self._waiters.clear()
        for worker in idle:
            worker.kill()
        # Their threads wake up, and the calls release them as crashed.
        for worker in busy:
            worker.stop()
        for loop, waiter in waiters:
            _call_in(loop, _fail_waiter, waiter)
        self._threads.shutdown(wait=False)
        if idle or busy:
            logger.debug("stopped %s python step workers", len(idle) + len(busy))

    @property
    def closed(self) -> bool:
        return self._closed

    async def _acquire(self) -> _Worker:
        self.start()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError("the python worker pool was shut down")
            if self._idle:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
            waiter: asyncio.Future[_Worker] = loop.create_future()
            self._waiters.append((loop, waiter))
        return await waiter

    def _release(self, worker: _Worker, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
        if reusable and not self._closed:
            self._give_back(worker)
            return

        worker.kill()
        replacement = None if self._closed else self._spawn()
        if replacement is None:
            with self._lock:
                self._count -= 1
        else:
            self._give_back(replacement)

    def _give_back(self, worker: _Worker) -> None:
        """Hand a free worker to the longest waiting call, else keep it idle."""
        with self._lock:
            if self._closed:
                self._count -= 1
                closed = True
            else:
                closed = False
                while self._waiters:
                    loop, waiter = self._waiters.popleft()
                    if waiter.done():
                        continue
                    self._busy.add(worker)
                    if _call_in(loop, self._deliver, waiter, worker):
                        return
                    self._busy.discard(worker)
                self._idle.append(worker)
        if closed:
            worker.kill()

    def _deliver(self, waiter: asyncio.Future[_Worker], worker: _Worker) -> None:
        # On the waiter's loop. A waiter cancelled meanwhile passes the worker on.
        if waiter.done():
            with self._lock:
                self._busy.discard(worker)
            self._give_back(worker)
        else:
            waiter.set_result(worker)

    def _spawn(self) -> _Worker | None:
        try:
            return _Worker(self.max_memory_mb, self.sandbox_mode, self.protected)
        except OSError:
            logger.exception("could not start a python step worker")
            return None


def _request_line(call: PythonCall, memory_mb: int) -> bytes:
    # `names` arrive already encoded, so they are spliced in rather than parsed.
    head = json.dumps(
        {
            "key": call.key,
            "code": call.code,
            "memory_bytes": memory_mb * _MB,
            "timeout": call.timeout,
        }
    )
    return f'{head[:-1]}, "names": {call.names_json}}}\n'.encode()


def _talk(
    worker: _Worker, request: bytes, timeout: float, memory_mb: int
) -> PythonOutcome:
    """Run in a pool thread: one request and its answer, as an outcome."""
    try:
        answer = worker.call(request, timeout)
    except _WorkerGone as gone:
        return PythonOutcome(failure="crash", message=str(gone), memory_mb=memory_mb)
    if answer is None:
        return PythonOutcome(failure="timeout", memory_mb=memory_mb)

    captured = {"stdout": answer.get("stdout", ""), "stderr": answer.get("stderr", "")}
    sandboxed = worker.confinement is not None and worker.confinement.enforced
    if answer.get("ok"):
        return PythonOutcome(
            value=answer.get("value"),
            memory_mb=memory_mb,
            sandboxed=sandboxed,
            **captured,
        )
    return PythonOutcome(
        failure=answer.get("failure", "exception"),
        message=answer.get("message", ""),
        line=answer.get("line"),
        traceback=answer.get("traceback", ""),
        memory_mb=memory_mb,
        sandboxed=sandboxed,
        **captured,
    )


def _call_in(loop: asyncio.AbstractEventLoop, function: Any, *args: Any) -> bool:
    """Schedule `function` on `loop` from any thread; False if the loop closed."""
    try:
        loop.call_soon_threadsafe(function, *args)
    except RuntimeError:
        return False
    return True


def _fail_waiter(waiter: asyncio.Future[_Worker]) -> None:
    if not waiter.done():
        waiter.set_exception(RuntimeError("the python worker pool was shut down"))


@functools.cache
def _landlock_abi() -> tuple[int, str]:
    return sandbox.landlock_abi()  # the kernel's answer does not change


def expected_sandbox(mode: str) -> Confinement:
    """What workers started now in `mode` will enforce, as far as this
    process can tell without starting one."""
    if mode == "off":
        return Confinement(mode, problem="FLOWDESK_PYTHON_SANDBOX is off")
    abi, problem = _landlock_abi()
    return Confinement(mode, abi=abi, problem=problem, scoped=abi >= 6)


_announced: set[Confinement] = set()


def announce_sandbox(confinement: Confinement) -> None:
    """Log once per process what python steps are kept from, and what not."""
    if confinement in _announced:
        return
    _announced.add(confinement)
    gaps = confinement.gaps()
    if not gaps:
        logger.info("python steps are %s", confinement.describe())
    elif not confinement.enforced:
        logger.warning(
            "python steps are NOT sandboxed (%s): a step can %s. Only the"
            " separate process, its clean environment and the time and memory"
            " limits apply; FLOWDESK_PYTHON_SANDBOX=required refuses to start"
            " without the sandbox",
            confinement.problem,
            "; ".join(gaps),
        )
    else:
        logger.warning(
            "python steps are %s, but a step can still %s",
            confinement.describe(),
            "; ".join(gaps),
        )


def protected_paths(data_dir: Path, database_url: str) -> tuple[str, ...]:
    """The server's paths that no allowed path of the sandbox may hold: the
    data dir (database, secret key), a SQLite database kept elsewhere, and the
    `.env` file the settings are read from."""
    paths = [data_dir, Path(".env")]
    if database_url.startswith("sqlite") and ":///" in database_url:
        database = database_url.split(":///", 1)[1].split("?", 1)[0]
        if database and database != ":memory:":
            paths += [Path(database), Path(database).parent]
    return tuple(dict.fromkeys(str(path.resolve()) for path in paths))


_shared: PythonWorkerPool | None = None
_shared_lock = threading.Lock()
_shared_size = DEFAULT_SIZE
_shared_memory_mb = DEFAULT_MAX_MEMORY_MB
_shared_sandbox = DEFAULT_SANDBOX
_shared_protected: tuple[str, ...] = ()


def check_sandbox_mode(mode: str) -> Confinement:
    """What workers started in `mode` will enforce; raises ConfigError when the
    sandbox is required and this kernel cannot provide it, so that a command
    can refuse to start before it serves anything."""
    expected = expected_sandbox(mode)
    if mode == "required" and not expected.enforced:
        raise ConfigError(
            "FLOWDESK_PYTHON_SANDBOX=required, but python steps cannot be"
            f" sandboxed: {expected.problem}. Set FLOWDESK_PYTHON_SANDBOX=auto"
            " to run them with process isolation only."
        )
    return expected


def configure_shared_pool(
    size: int,
    max_memory_mb: int,
    *,
    sandbox_mode: str = DEFAULT_SANDBOX,
    protected: tuple[str, ...] = (),
) -> None:
    """Set the size, memory ceiling and sandbox of this process's pool; a
    running pool with other settings is stopped, and the next step starts a
    new one. Logs what the sandbox enforces; raises ConfigError when it is
    required and the kernel cannot provide it."""
    announce_sandbox(check_sandbox_mode(sandbox_mode))

    global _shared_size, _shared_memory_mb, _shared_sandbox, _shared_protected
    wanted = (size, max_memory_mb, sandbox_mode, protected)
    with _shared_lock:
        _shared_size, _shared_memory_mb = size, max_memory_mb
        _shared_sandbox, _shared_protected = sandbox_mode, protected
        stale = _shared
        if stale is not None and _pool_settings(stale) != wanted:
            _drop_shared()
        else:
            stale = None
    if stale is not None:
        stale.close()


def _pool_settings(pool: PythonWorkerPool) -> tuple[int, int, str, tuple[str, ...]]:
    return pool.size, pool.max_memory_mb, pool.sandbox_mode, pool.protected


def shared_pool() -> PythonWorkerPool:
    """This process's pool, made on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = PythonWorkerPool(
                _shared_size,
                _shared_memory_mb,
                sandbox_mode=_shared_sandbox,
                protected=_shared_protected,
            )
        return _shared


def shutdown_shared_pool() -> None:
    """Stop this process's workers; a later step starts the pool again."""
    with _shared_lock:
        pool = _drop_shared()
    if pool is not None:
        pool.close()


def _drop_shared() -> PythonWorkerPool | None:
    global _shared
    pool, _shared = _shared, None
    return pool
