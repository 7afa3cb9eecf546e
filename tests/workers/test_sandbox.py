"""The Landlock sandbox of `python` step workers: real steps through the real
pool cannot read the data dir, the server's /proc entries or the home directory,
cannot write outside their own directory or signal the server, and can still
use the standard library, their directory and the network. Without Landlock
the pool says what is not enforced and steps still run."""

from __future__ import annotations

import logging
import os
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowdesk.engine import compile_flow
from flowdesk.engine.steps.python import SANDBOX_HINT
from flowdesk.errors import ConfigError, StepFailed
from flowdesk.runs import states
from flowdesk.runs.service import start_run
from flowdesk.settings import SECRET_KEY_FILE, Settings
from flowdesk.system import System, open_system
from flowdesk.workers import pool as pool_module
from flowdesk.workers.pool import (
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_SIZE,
    PythonCall,
    PythonWorkerPool,
    configure_shared_pool,
    protected_paths,
    shared_pool,
    shutdown_shared_pool,
)
from flowdesk.workers.sandbox import landlock_abi, without_protected
from tests.conftest import unavailable
from tests.runs.conftest import stored_run
from tests.support.http_api import ApiServer, serve_api
from tests.support.stored_flows import apply_flow

KERNEL_ABI, NO_LANDLOCK = landlock_abi()


class SilentReporter:
    async def log(
        self, message: str, *, level: str = "info", step: str | None = None
    ) -> None:
        pass

    async def status(self, message: str, progress: float | None = None) -> None:
        pass

    async def step_started(self, path: str, kind: str) -> None:
        pass


async def run_python(code: str, **inputs: Any) -> Any:
    """Run `code` as a flow's python step, with `inputs` as the run's input;
    its return value, or StepFailed."""
    flow = compile_flow([{"python": code, "save_as": "result"}])
    result = await flow.execute(inputs, {}, SilentReporter())
    return result.outputs["result"]


@pytest.fixture
def landlock() -> None:
    if KERNEL_ABI == 0:
        unavailable(f"Landlock is not available: {NO_LANDLOCK}")


@pytest.fixture
def data_dir(system: System) -> Iterator[Path]:
    """A real data dir, with its SQLite database and secret key file, whose
    paths the shared pool keeps closed, as the executor configures it."""
    settings = system.settings
    settings.resolved_secret_key()
    configure_shared_pool(
        2,
        512,
        protected=protected_paths(settings.data_dir, settings.resolved_database_url),
    )
    yield settings.data_dir.resolve()
    shutdown_shared_pool()
    configure_shared_pool(DEFAULT_SIZE, DEFAULT_MAX_MEMORY_MB)


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with serve_api() as server:
        yield server


async def assert_refused(code: str, named: str, **inputs: Any) -> None:
    """The step fails with a PermissionError naming `named`, and says why."""
    with pytest.raises(StepFailed) as failure:
        await run_python(code, **inputs)

    reason = failure.value.reason
    assert "PermissionError" in reason
    assert named in reason
    assert reason.endswith(SANDBOX_HINT)


# What a step cannot reach


@pytest.mark.usefixtures("landlock")
@pytest.mark.parametrize("name", ["flowdesk.db", SECRET_KEY_FILE])
async def test_sandbox_step_cannot_read_the_server_files(
    data_dir: Path, name: str
) -> None:
    path = data_dir / name
    assert path.is_file()  # the server's own file is there to be read

    await assert_refused(
        "return open(inputs['path'], 'rb').read(16).hex()", str(path), path=str(path)
    )


@pytest.mark.usefixtures("landlock")
async def test_sandbox_step_cannot_list_the_data_dir(data_dir: Path) -> None:
    await assert_refused(
        "import os\nreturn os.listdir(inputs['path'])",
        str(data_dir),
        path=str(data_dir),
    )


@pytest.mark.usefixtures("landlock")
async def test_sandbox_step_cannot_link_the_database_into_its_directory(
    data_dir: Path,
) -> None:
    database = data_dir / "flowdesk.db"
    code = (
        "import os\n"
        "os.link(inputs['path'], 'copy.db')\n"
        "return open('copy.db', 'rb').read(16).hex()"
    )

    # Landlock refuses a link that would give the file more rights (EXDEV).
    with pytest.raises(StepFailed, match="Invalid cross-device link"):
        await run_python(code, path=str(database))


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_cannot_read_the_servers_proc_environment() -> None:
    # The worker's parent is this test process, standing in for the server.
    path = f"/proc/{os.getpid()}/environ"
    code = "import os\nreturn open(f'/proc/{os.getppid()}/environ').read()"

    await assert_refused(code, path)


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_cannot_read_the_home_directory() -> None:
    home = str(Path.home().resolve())
    if home == "/":
        pytest.skip("this user's home directory is the root directory")

    await assert_refused(
        "import os\nreturn os.listdir(inputs['path'])", home, path=home
    )


@pytest.mark.usefixtures("landlock")
async def test_sandbox_step_cannot_write_outside_its_directory(
    data_dir: Path, tmp_path: Path
) -> None:
    for target in (tmp_path / "outside.txt", data_dir / "planted.txt"):
        await assert_refused(
            "open(inputs['path'], 'w').write('x')", str(target), path=str(target)
        )
        assert not target.exists()


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_cannot_signal_the_server() -> None:
    if KERNEL_ABI < 6:
        pytest.skip(f"signal scoping needs Landlock ABI 6, the kernel has {KERNEL_ABI}")

    # Signal 0 only checks the permission, so nothing happens if it is granted.
    with pytest.raises(StepFailed, match=r"PermissionError.*not permitted"):
        await run_python("import os\nos.kill(os.getppid(), 0)")
    assert await run_python("import os\nos.kill(os.getpid(), 0)\nreturn 'own'") == (
        "own"
    )


# What a step can still do


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_can_use_the_standard_library() -> None:
    code = """\
import datetime, decimal, json, ssl, urllib.parse, urllib.request, zoneinfo
berlin = datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
return {
    "offset": berlin.utcoffset().total_seconds(),
    "sum": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
    "json": json.loads('{"a": [1]}'),
    "query": urllib.parse.urlencode({"q": "a b"}),
    "certificates": ssl.create_default_context().cert_store_stats()["x509_ca"],
}
"""
    result = await run_python(code)

    assert result == {
        "offset": 7200.0,
        "sum": "0.3",
        "json": {"a": [1]},
        "query": "q=a+b",
        # The step trusts the same certificate authorities as the server.
        "certificates": ssl.create_default_context().cert_store_stats()["x509_ca"],
    }


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_writes_and_reads_its_own_directory() -> None:
    code = """\
import os, shutil, tempfile
with tempfile.NamedTemporaryFile("w+", delete=False) as handle:
    handle.write("kept")
os.makedirs("out/deeper")
os.rename(handle.name, "out/deeper/file.txt")
text = open("out/deeper/file.txt").read()
shutil.rmtree("out")
return {
    "text": text,
    "tempdir_is_cwd": tempfile.gettempdir() == os.getcwd(),
    "left": os.listdir("."),
}
"""
    result = await run_python(code)

    assert result == {"text": "kept", "tempdir_is_cwd": True, "left": []}


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_step_makes_http_requests(api: ApiServer) -> None:
    # By name, so that /etc/hosts and the resolver's files are read as well.
    url = api.url.replace("127.0.0.1", "localhost") + "/json"
    code = (
        "import json, urllib.request\n"
        "with urllib.request.urlopen(inputs['url'], timeout=5) as answer:\n"
        "    return json.load(answer)"
    )

    assert await run_python(code, url=url) == {"hello": "world"}


@pytest.mark.usefixtures("landlock", "data_dir")
async def test_sandbox_is_reported_by_the_pool() -> None:
    await run_python("return 1")

    sandbox = shared_pool().sandbox
    assert sandbox.enforced
    assert sandbox.abi == KERNEL_ABI
    assert sandbox.scoped == (KERNEL_ABI >= 6)
    assert sandbox.dropped == ()


# The guard for server files inside an allowed folder


def test_sandbox_leaves_out_allowed_paths_holding_a_protected_one() -> None:
    rules = {"/srv/app": 1, "/srv/app/.venv": 2, "/srv/other": 4, "/": 8}

    kept, dropped = without_protected(rules, ["/srv/app/.flowdesk"])

    # Parents of the data dir go; its siblings, like the virtualenv, stay.
    assert kept == {"/srv/app/.venv": 2, "/srv/other": 4}
    assert dropped == [
        "/srv/app (it holds /srv/app/.flowdesk)",
        "/ (it holds /srv/app/.flowdesk)",
    ]


def test_sandbox_protected_paths_name_the_data_dir_and_database(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "db" / "flows.db"

    paths = protected_paths(tmp_path / "data", f"sqlite:///{elsewhere}")

    assert str(tmp_path / "data") in paths
    assert str(elsewhere) in paths
    assert str(elsewhere.parent) in paths
    assert str(Path(".env").resolve()) in paths


@pytest.mark.usefixtures("landlock")
async def test_sandbox_data_dir_inside_the_virtualenv_is_kept_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv")
    inside = os.path.join(os.path.realpath(sys.prefix), "flowdesk-data")
    pool = PythonWorkerPool(1, protected=(inside,))
    code = "import os, sys\nreturn open(os.path.join(sys.prefix, 'pyvenv.cfg')).read()"

    try:
        with caplog.at_level(logging.WARNING, logger="flowdesk.workers.pool"):
            outcome = await pool.call(PythonCall(code, "venv", "{}", 10, 256))
    finally:
        pool.close()

    assert outcome.failure == "exception"
    assert outcome.message.startswith("PermissionError")
    assert any(os.path.realpath(sys.prefix) in path for path in pool.sandbox.dropped)
    assert f"python steps may NOT read {os.path.realpath(sys.prefix)}" in caplog.text


# Without Landlock


async def test_sandbox_off_still_runs_steps_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "_announced", set())
    readable = tmp_path / "server-file.txt"
    readable.write_text("not protected")
    code = f"return open({str(readable)!r}).read()"

    with caplog.at_level(logging.WARNING, logger="flowdesk.workers.pool"):
        pool = PythonWorkerPool(1, sandbox_mode="off")
    try:
        outcome = await pool.call(PythonCall(code, "off", "{}", 10, 256))
    finally:
        pool.close()

    assert outcome.value == "not protected"
    assert not outcome.sandboxed
    assert not pool.sandbox.enforced
    assert "python steps are NOT sandboxed (FLOWDESK_PYTHON_SANDBOX is off)" in (
        caplog.text
    )
    assert "read the data dir" in caplog.text


def test_sandbox_required_without_landlock_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        pool_module, "_landlock_abi", lambda: (0, "the kernel has no Landlock")
    )

    with pytest.raises(ConfigError, match="FLOWDESK_PYTHON_SANDBOX=required, but"):
        configure_shared_pool(2, 512, sandbox_mode="required")


def test_sandbox_auto_without_landlock_warns_once_naming_the_gaps(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        pool_module, "_landlock_abi", lambda: (0, "the kernel has no Landlock")
    )
    monkeypatch.setattr(pool_module, "_announced", set())

    with caplog.at_level(logging.INFO, logger="flowdesk.workers.pool"):
        configure_shared_pool(2, 512, sandbox_mode="auto")
        configure_shared_pool(2, 512, sandbox_mode="auto")
    configure_shared_pool(DEFAULT_SIZE, DEFAULT_MAX_MEMORY_MB)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "NOT sandboxed (the kernel has no Landlock)" in message
    assert "signal the server" in message


# Through the runner


@pytest.fixture
async def running_system(tmp_path: Path) -> AsyncIterator[System]:
    settings = Settings(data_dir=tmp_path / "data", load_examples=False)
    system = open_system(settings)
    await system.executor.start()
    yield system
    await system.executor.stop()
    system.db.dispose()


@pytest.mark.usefixtures("landlock")
async def test_sandbox_refusal_fails_the_run_with_the_path(
    running_system: System,
) -> None:
    key_file = running_system.settings.data_dir.resolve() / SECRET_KEY_FILE
    running_system.settings.resolved_secret_key()
    apply_flow(
        running_system,
        f"""
        id: snoop
        name: Snoop
        steps:
          - python: return open({str(key_file)!r}).read()
            save_as: key
        """,
    )

    run = start_run(running_system, "snoop", {}, "cli")
    final = await running_system.executor.wait(run.id)

    assert final == states.FAILED
    stored, _events = stored_run(running_system, run.id)
    assert stored.error is not None
    assert f"PermissionError: [Errno 13] Permission denied: '{key_file}'" in (
        stored.error
    )
    assert stored.error_step == "steps[0]"
