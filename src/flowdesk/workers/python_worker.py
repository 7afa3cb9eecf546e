"""The program of a `python` step worker: a separate process that runs step code.

Started by `flowdesk.workers.pool` as `python -I <this file> MAX_MEMORY_BYTES
SANDBOX_JSON` with a clean environment in a temporary directory. Before it reads
any step code it confines itself (`sandbox.py`, with the mode, the temporary
directory and the server's paths to keep closed from SANDBOX_JSON) and says how
in its first line: `{"sandbox": {...}}`. In `required` mode a worker that could
not confine itself exits after that line. Then it talks JSON lines: one request
per line on standard input, one answer per line on standard output.

A request: `{"key": ..., "code": ..., "names": {...}, "memory_bytes": n,
"timeout": s}`. The answer: `{"ok": true, "value": ..., "stdout": ...,
"stderr": ...}`, or `{"ok": false, "failure": "exception" | "memory" |
"result", "message": ..., "line": n, "traceback": ..., "stdout": ...,
"stderr": ...}`.

This module imports only the standard library, never flowdesk: the server
imports it to check the syntax of step code, and the worker must not load
anything that could reach the server's settings, database or secret key.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import io
import json
import os
import resource
import signal
import sys
import traceback
import types
from collections import OrderedDict
from typing import Any, BinaryIO

STEP_FILENAME = "<python step>"
FUNCTION_NAME = "step"

MAX_CAPTURED_CHARS = 64 * 1024  # of stdout and of stderr, per step
MAX_RESULT_BYTES = 16 * 1024 * 1024
COMPILED_CACHE_SIZE = 256

# If the server dies while a step runs, nobody is left to stop the step; the
# worker then stops itself this long after the step's own timeout.
BACKSTOP_SECONDS = 30


def compile_step(code: str, names: tuple[str, ...] = ()) -> types.CodeType:
    """Compile step code as the body of a function taking `names` as keyword
    arguments, so that `return` works and names are local variables.

    Line numbers stay those of the code as written. Raises `SyntaxError`.
    """
    module = ast.parse(code, STEP_FILENAME)
    arguments = ast.arguments(
        posonlyargs=[],
        args=[],
        vararg=None,
        kwonlyargs=[ast.arg(arg=name) for name in names],
        kw_defaults=[None] * len(names),
        kwarg=None,
        defaults=[],
    )
    function = ast.FunctionDef(
        name=FUNCTION_NAME,
        args=arguments,
        body=module.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    if sys.version_info >= (3, 12):
        function.type_params = []
    wrapper = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(wrapper)
    compiled = compile(wrapper, STEP_FILENAME, "exec", dont_inherit=True)
    return next(
        constant
        for constant in compiled.co_consts
        if isinstance(constant, types.CodeType)
    )


class _Capture(io.TextIOBase):
    """Collects what the step prints, up to a limit."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = MAX_CAPTURED_CHARS - self._size
        if len(text) > room:
            self.truncated = True
        if room > 0:
            kept = text[:room]
            self._parts.append(kept)
            self._size += len(kept)
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self.truncated:
            text += f"\n[output cut off after {MAX_CAPTURED_CHARS} characters]"
        return text


class _Worker:
    def __init__(self, hard_memory_bytes: int) -> None:
        self.hard_memory_bytes = hard_memory_bytes
        self.functions: OrderedDict[tuple[str, tuple[str, ...]], types.CodeType] = (
            OrderedDict()
        )

    def handle(self, request: dict[str, Any]) -> bytes:
        stdout, stderr = _Capture(), _Capture()
        try:
            names: dict[str, Any] = request["names"]
            code = self._function(request["key"], request["code"], tuple(names))
            encoded = self._execute(code, names, request, stdout, stderr)
        except MemoryError:
            return self._failure("memory", "", stdout, stderr)
        except _ResultError as error:
            return self._failure("result", str(error), stdout, stderr)
        except BaseException as error:  # the step's own errors, SystemExit too
            return self._exception(error, stdout, stderr)

        captured = json.dumps(
            {"stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        )
        # The value is spliced in as encoded, instead of being encoded twice.
        return b'{"ok": true, "value": ' + encoded + b", " + captured[1:].encode()

    def _function(self, key: str, code: str, names: tuple[str, ...]) -> types.CodeType:
        cache_key = (key, names)
        compiled = self.functions.get(cache_key)
        if compiled is None:
            compiled = compile_step(code, names)
            self.functions[cache_key] = compiled
            if len(self.functions) > COMPILED_CACHE_SIZE:
                self.functions.popitem(last=False)
        else:
            self.functions.move_to_end(cache_key)
        return compiled

    def _execute(
        self,
        code: types.CodeType,
        names: dict[str, Any],
        request: dict[str, Any],
        stdout: _Capture,
        stderr: _Capture,
    ) -> bytes:
        # Fresh globals and builtins per step, so that one step's `global x` or
        # patched builtin does not reach the next step run by this worker.
        scope = {"__builtins__": dict(builtins.__dict__), "__name__": FUNCTION_NAME}
        function = types.FunctionType(code, scope, FUNCTION_NAME)
        memory = min(int(request["memory_bytes"]), self.hard_memory_bytes)

        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        resource.setrlimit(resource.RLIMIT_AS, (memory, self.hard_memory_bytes))
        signal.alarm(int(request["timeout"]) + BACKSTOP_SECONDS)
        try:
            value = function(**names)
            return _encode_result(value)
        finally:
            signal.alarm(0)
            resource.setrlimit(
                resource.RLIMIT_AS, (self.hard_memory_bytes, self.hard_memory_bytes)
            )
            sys.stdout, sys.stderr = saved

    @staticmethod
    def _failure(
        failure: str,
        message: str,
        stdout: _Capture,
        stderr: _Capture,
        line: int | None = None,
        trace: str = "",
    ) -> bytes:
        answer = {
            "ok": False,
            "failure": failure,
            "message": message,
            "line": line,
            "traceback": trace,
            "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue(),
        }
        return json.dumps(answer).encode()

    def _exception(
        self, error: BaseException, stdout: _Capture, stderr: _Capture
    ) -> bytes:
        # Only the step's own frames: the worker's are noise to a flow author.
        frames = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if frame.filename == STEP_FILENAME
        ]
        line = frames[-1].lineno if frames else getattr(error, "lineno", None)
        summary = traceback.format_exception_only(type(error), error)[-1].strip()
        if isinstance(error, SystemExit):
            summary = f"SystemExit: the code called exit({error.code!r})"
        trace = "".join(traceback.format_list(frames)) + summary
        return self._failure("exception", summary, stdout, stderr, line, trace)


class _ResultError(Exception):
    """The step returned something that is not JSON data."""


def _encode_result(value: Any) -> bytes:
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError) as error:
        raise _ResultError(_describe_bad_result(value, error)) from None
    except RecursionError:
        raise _ResultError("nested too deeply to store as JSON") from None
    if len(encoded) > MAX_RESULT_BYTES:
        raise _ResultError(
            f"{len(encoded)} bytes of JSON; the limit is {MAX_RESULT_BYTES} bytes"
        )
    return encoded


def _describe_bad_result(value: Any, error: Exception) -> str:
    if isinstance(error, ValueError):
        return f"a value JSON cannot hold ({error})"
    found = str(error).removeprefix("Object of type ").split(" ", 1)[0]
    if isinstance(value, dict | list | tuple):
        return f"a {type(value).__name__} holding a {found}"
    return f"a {found}"


def _protocol_channels() -> tuple[BinaryIO, BinaryIO]:
    """Private copies of standard input and output for the protocol; file
    descriptors 0 to 2 then lead to /dev/null, so that step code writing to
    them directly cannot garble the answers."""
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)
    return requests, answers


def _confine(options: dict[str, Any]) -> dict[str, Any]:
    """Apply the sandbox; its outcome as JSON, for the first answer line."""
    # This runs as a script without flowdesk on its path, and must not import
    # flowdesk anyway, so its sibling module is loaded by file name.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox.py")
    spec = importlib.util.spec_from_file_location("_step_sandbox", path)
    assert spec is not None and spec.loader is not None
    sandbox = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sandbox)

    mode = options.get("sandbox", "auto")
    workdir = options.get("workdir") or os.getcwd()
    try:
        outcome = sandbox.confine(mode, workdir, options.get("protected", ()))
    except OSError as error:
        outcome = sandbox.Confinement(mode, problem=str(error))
    confinement: dict[str, Any] = outcome.as_json()
    return confinement


def main(argv: list[str]) -> int:
    hard_memory_bytes = int(argv[1])
    options: dict[str, Any] = json.loads(argv[2]) if len(argv) > 2 else {}
    requests, answers = _protocol_channels()

    confinement = _confine(options)
    answers.write(json.dumps({"sandbox": confinement}).encode() + b"\n")
    answers.flush()
    if options.get("sandbox") == "required" and not confinement["abi"]:
        return 3

    resource.setrlimit(resource.RLIMIT_AS, (hard_memory_bytes, hard_memory_bytes))
    worker = _Worker(hard_memory_bytes)

    # The loop ends when the server closes the pipe (or dies).
    for line in requests:
        answers.write(worker.handle(json.loads(line)) + b"\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
