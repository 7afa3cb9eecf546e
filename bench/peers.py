"""The same one-step parameterised flow on Prefect 3, on the same machine and in
the same benchmark run: a local Prefect server on loopback, the flow served as a
deployment by a runner that polls for work every second, launched through the
REST API and watched until its run has completed.

Prefect lives in a virtual environment of its own (bench/.peers/, ignored by
git), made on first use, so that none of its dependencies reach flowdesk's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from measures import Plan
from stats import p50_p99, rounded

PEERS = Path(__file__).resolve().parent / ".peers"
PREFECT_VENV = PEERS / "prefect-venv"
PREFECT_REQUIREMENT = "prefect>=3,<4"
HOST = "127.0.0.1"
POLL_SECONDS = 1  # how often the runner asks the server for scheduled runs
# How often the benchmark asks whether the run has completed: far below the
# runner's poll, so that it adds next to nothing to Prefect's figure.
WATCH_SECONDS = 0.01
SAMPLES = {"smoke": 2, "quick": 10, "full": 30}

SERVED_FLOW = """\
from prefect import flow


@flow(name="bench-one-step")
def one_step(n: int = 1) -> int:
    return n * 2


if __name__ == "__main__":
    one_step.serve(name="bench")
"""


def measure_prefect(plan: Plan, ours_ms: float, notes: dict[str, str]) -> Any:
    """Prefect's launch-to-done latency and how many times ours it is; None
    (with a note) when Prefect cannot be installed or started here."""
    try:
        python = _prefect_python()
    except (OSError, subprocess.CalledProcessError) as error:
        notes["peers"] = f"Prefect could not be installed: {error}"
        return None
    with tempfile.TemporaryDirectory(prefix="prefect-bench-") as home:
        try:
            latencies = _measure(python, Path(home), SAMPLES[plan.name])
        except (OSError, RuntimeError, httpx.HTTPError) as error:
            notes["peers"] = f"Prefect could not be measured: {error}"
            return None
    figures = p50_p99(latencies)
    return {
        "prefect": {
            "version": _version(python),
            "launch_to_done_ms": figures,
            "runner_poll_seconds": POLL_SECONDS,
            "samples": len(latencies),
        },
        "prefect_ratio": rounded(figures["p50"] / ours_ms, 1),
    }


def _prefect_python() -> Path:
    python = PREFECT_VENV / "bin" / "python"
    if not (PREFECT_VENV / "bin" / "prefect").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PREFECT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PREFECT_REQUIREMENT],
            check=True,
        )
    return python


def _version(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import prefect; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _measure(python: Path, home: Path, samples: int) -> list[float]:
    port = _free_port()
    api = f"http://{HOST}:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": str(POLL_SECONDS),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    prefect = str(python.parent / "prefect")
    server_command = [prefect, "server", "start", "--host", HOST, "--port", str(port)]
    script = home / "served_flow.py"
    script.write_text(SERVED_FLOW, encoding="utf-8")

    processes: list[subprocess.Popen[bytes]] = []
    log = (home / "prefect.log").open("ab")
    try:
        processes.append(_start(server_command, env, log))
        _wait_until_healthy(api, processes[0])
        processes.append(_start([str(python), str(script)], env, log))
        with httpx.Client(base_url=api, timeout=30) as client:
            deployment = _wait_for_deployment(client, processes[1])
            _launch_and_wait(client, deployment, 0)  # the first run warms up
            return [
                _launch_and_wait(client, deployment, index + 1)
                for index in range(samples)
            ]
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


def _start(
    command: list[str], env: dict[str, str], log: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_until_healthy(
    api: str, process: subprocess.Popen[bytes], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Prefect server exited while starting")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the Prefect server did not answer within {timeout:g} s")


def _wait_for_deployment(
    client: httpx.Client, runner: subprocess.Popen[bytes], timeout: float = 180
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise RuntimeError("the Prefect runner exited while starting")
        answer = client.get("/deployments/name/bench-one-step/bench")
        if answer.status_code == 200:
            deployment_id: str = answer.json()["id"]
            return deployment_id
        time.sleep(0.2)
    raise RuntimeError(f"the Prefect deployment did not appear within {timeout:g} s")


def _launch_and_wait(
    client: httpx.Client, deployment: str, n: int, timeout: float = 120
) -> float:
    """Create a flow run of the deployment and wait until it has completed;
    returns the time taken in milliseconds, from the creation that the
    server accepted."""
    began, run_id = _create_flow_run(client, deployment, n)
    deadline = began + timeout
    while time.perf_counter() < deadline:
        answer = client.get(f"/flow_runs/{run_id}")
        state = (answer.json().get("state") or {}) if answer.is_success else {}
        if state.get("type") == "COMPLETED":
            return (time.perf_counter() - began) * 1000
        if state.get("type") in ("FAILED", "CRASHED", "CANCELLED"):
            raise RuntimeError(f"the Prefect run ended {state.get('type')}")
        time.sleep(WATCH_SECONDS)
    raise RuntimeError(f"the Prefect run did not complete within {timeout:g} s")


def _create_flow_run(
    client: httpx.Client, deployment: str, n: int, attempts: int = 5
) -> tuple[float, str]:
    """When the flow run was created (a `perf_counter` reading) and its id.
    The local Prefect server now and then answers 503 while it is busy; such
    an attempt is repeated, and the clock starts at the one that succeeds."""
    for _attempt in range(attempts):
        began = time.perf_counter()
        created = client.post(
            f"/deployments/{deployment}/create_flow_run",
            json={"parameters": {"n": n}},
        )
        if created.status_code != 503:
            created.raise_for_status()
            return began, str(created.json()["id"])
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server answered 503 {attempts} times")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # Each was started in a session of its own: end its children too.
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port
