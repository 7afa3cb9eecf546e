"""The distributed mode end to end: two web processes and two Celery workers on
one PostgreSQL database and one Redis, all real processes.

A run started through one web process streams live to a page of the other and
can be cancelled there; a worker killed with SIGKILL mid-run leaves its runs
failed as interrupted while the other worker goes on, and one frozen with
SIGSTOP is found by its stopped heartbeat within the stale-run time; runs
started while Redis is down execute once it is back, and a cancel asked for
then still reaches the worker, through the database. Queued runs survive a
restart of every process and of Redis, and a run of a flow with
`retry_interrupted` whose worker is killed succeeds on its next attempt. The
last test checks that every run the module started has ended, so the tests
run in this order, on one cluster.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import redis
from sqlalchemy import select

from flowdesk.bootstrap import first_start
from flowdesk.db.models import Run
from flowdesk.runs import states
from flowdesk.runs.executor import heartbeat_seconds
from flowdesk.runs.redis_bus import run_channel
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.distributed.cluster import Received, WebClient, WorkerProcess, wait_until
from tests.distributed.conftest import SECRET_KEY
from tests.support.redis import RedisServer
from tests.support.server import ADMIN_PASSWORD, LiveServer
from tests.support.stored_flows import apply_flow

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

# Low, so that a dead worker is found within seconds (its heartbeat comes
# every 2.5 s, the web processes' sweep every 10/3 s).
STALE_RUN_SECONDS = 10.0
# A loaded machine takes its time to start a Python process.
START_SECONDS = 90.0
DETECTION_BOUND = STALE_RUN_SECONDS + STALE_RUN_SECONDS / 3 + 2.0

FLOWS = [
    """
    id: two-steps
    name: Two steps
    steps:
      - status: Step one
      - sleep: 1.5
      - status: Step two
      - sleep: 0.5
      - html: "<p>done</p>"
    """,
    """
    id: long
    name: Long
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          seconds: {type: number, default: 10}
    steps:
      - status: Working for a while...
      - sleep: "{{ inputs.seconds }}"
    """,
    """
    id: quick
    name: Quick
    steps:
      - set: {done: true}
    """,
    """
    id: retrying
    name: Retrying
    retry_interrupted: 1
    steps:
      - status: Working...
      - if: "{{ run.attempt == 1 }}"
        then:
          - sleep: 60
      - set: {attempt: "{{ run.attempt }}"}
    """,
]


@dataclass
class Cluster:
    system: System  # the test's own view of the database
    redis: RedisServer
    webs: list[WebClient]
    workers: list[WorkerProcess]
    started: list[str] = field(default_factory=list)

    def start_run(
        self, web: int, flow_id: str, inputs: dict[str, object] | None = None
    ) -> str:
        run_id = self.webs[web].start_run(flow_id, inputs)
        self.started.append(run_id)
        return run_id

    def runs(self, run_ids: list[str] | None = None) -> dict[str, Run]:
        query = select(Run)
        if run_ids is not None:
            query = query.where(Run.id.in_(run_ids))
        with self.system.db.reading() as session:
            return {run.id: run for run in session.scalars(query)}

    def states(self, run_ids: list[str]) -> list[str]:
        runs = self.runs(run_ids)
        return [runs[run_id].state for run_id in run_ids]

    def all_in(self, run_ids: list[str], wanted: Set[str]) -> bool:
        return all(state in wanted for state in self.states(run_ids))

    def add_worker(self) -> WorkerProcess:
        first = self.workers[0]
        data_dir = first.log_path.parent / f"worker-{len(self.workers)}"
        worker = WorkerProcess(
            data_dir.with_suffix(".log"),
            env={**first.env, "FLOWDESK_DATA_DIR": str(data_dir)},
        )
        self.workers.append(worker.start(START_SECONDS))
        return worker

    def logs(self) -> str:
        parts = [f"--- web {web.server.port}\n{web.server.log()}" for web in self.webs]
        parts += [f"--- worker\n{worker.log()}" for worker in self.workers]
        return "\n".join(parts)

    def stop_workers(self) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(WorkerProcess.stop, self.workers))

    def stop_everything(self) -> None:
        """Stop every web process and worker (as a deployment's shutdown does,
        with SIGTERM), then Redis, which comes back empty."""
        for web in self.webs:
            web.close()
        with ThreadPoolExecutor(4) as pool:
            stopping = [pool.submit(web.server.stop) for web in self.webs]
            stopping += [pool.submit(worker.stop) for worker in self.workers]
            for future in stopping:
                future.result()
        self.redis.stop()

    def start_everything(self, workers: int = 2) -> None:
        """Start Redis, the web processes and the first `workers` workers."""
        self.redis.start()
        servers = [web.server for web in self.webs]
        with ThreadPoolExecutor(4) as pool:
            started = [pool.submit(server.start, START_SECONDS) for server in servers]
            started += [
                pool.submit(worker.start, START_SECONDS)
                for worker in self.workers[:workers]
            ]
            for future in started:
                future.result()
        self.webs = [WebClient(server) for server in servers]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_server: RedisServer,
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    if not redis_server.answers():
        redis_server.start()
    env = {
        "FLOWDESK_EXECUTOR": "celery",
        "FLOWDESK_BROKER_URL": redis_server.url,
        "FLOWDESK_DATABASE_URL": database_url,
        "FLOWDESK_SECRET_KEY": SECRET_KEY,
        "FLOWDESK_STALE_RUN_SECONDS": str(STALE_RUN_SECONDS),
        "FLOWDESK_LOAD_EXAMPLES": "false",
        "FLOWDESK_PYTHON_WORKERS": "1",
    }

    # The test's own system on the same database. The first user and the flows
    # go in before any process starts: web processes starting together on an
    # empty database would each try to create the first user.
    system = open_system(
        Settings(  # type: ignore[call-arg]
            data_dir=root / "test-data",
            database_url=database_url,
            admin_password=ADMIN_PASSWORD,
            load_examples=False,
        )
    )
    first_start(system)
    for text in FLOWS:
        apply_flow(system, text)

    servers = [LiveServer(root / f"web-{n}", env=env) for n in range(2)]
    workers = [
        WorkerProcess(
            root / f"worker-{n}.log",
            env={**env, "FLOWDESK_DATA_DIR": str(root / f"worker-{n}")},
        )
        for n in range(2)
    ]
    cluster: Cluster | None = None
    try:
        with ThreadPoolExecutor(4) as pool:
            started = [pool.submit(server.start, START_SECONDS) for server in servers]
            started += [pool.submit(worker.start, START_SECONDS) for worker in workers]
            for future in started:
                future.result()
        webs = [WebClient(server) for server in servers]
        cluster = Cluster(system, redis_server, webs, workers)
        yield cluster
    finally:
        # The cluster's own list: a restart gives it new clients.
        for web in cluster.webs if cluster is not None else []:
            web.close()
        with ThreadPoolExecutor(4) as pool:
            for process in [*servers, *workers]:
                pool.submit(process.stop)
        if not redis_server.answers():
            redis_server.start()
        system.db.dispose()


def test_cluster_run_started_on_one_web_process_streams_live_on_the_other(
    cluster: Cluster,
) -> None:
    run_id = cluster.start_run(0, "two-steps")

    received: list[Received] = []
    subscribers = 0
    for item in cluster.webs[1].events(run_id):
        received.append(item)
        if len(received) == 1:
            subscribers = channel_subscribers(cluster.redis, run_channel(run_id))

    run = cluster.runs([run_id])[run_id]
    assert run.state == states.SUCCEEDED, cluster.logs()
    assert run.finished_at is not None
    state_events = [item.data["state"] for item in received if item.kind == "state"]
    assert "running" in state_events
    assert state_events[-1] == "succeeded"
    # The second web process listened on the run's channel, and the events
    # came through it as they happened, not from a later look at the store.
    assert subscribers >= 1
    step_two = next(item for item in received if item.data["message"] == "Step two")
    assert step_two.at < run.finished_at.timestamp()
    assert received[-1].at - run.finished_at.timestamp() < 3.0


def test_cluster_cancel_through_the_other_web_process_stops_the_run(
    cluster: Cluster,
) -> None:
    run_id = cluster.start_run(0, "long", {"seconds": 30})
    wait_until(
        lambda: cluster.states([run_id]) == [states.RUNNING], 10, "the run is running"
    )

    cluster.webs[1].cancel(run_id)

    # The cancel waits for the worker to record the end.
    assert cluster.states([run_id]) == [states.CANCELLED], cluster.logs()


def test_cluster_killed_worker_leaves_its_runs_interrupted_and_the_other_goes_on(
    cluster: Cluster,
) -> None:
    # Three runs in four slots: the worker with two of them is killed, the
    # other keeps a slot free for the runs started afterwards.
    long_runs = [cluster.start_run(n % 2, "long", {"seconds": 6}) for n in range(3)]
    wait_until(
        lambda: cluster.all_in(long_runs, {states.RUNNING}), 15, "the runs are running"
    )
    owners = [run.owner for run in cluster.runs(long_runs).values()]
    victim = max(cluster.workers, key=lambda worker: owners.count(worker.owner))
    survivor = next(worker for worker in cluster.workers if worker is not victim)
    doomed = [
        run_id
        for run_id, run in cluster.runs(long_runs).items()
        if run.owner == victim.owner
    ]
    assert len(doomed) == 2, owners

    victim.kill()
    quick_runs = [cluster.start_run(1, "quick") for _ in range(3)]

    detected = wait_until(
        lambda: cluster.all_in(doomed, states.FINISHED),
        DETECTION_BOUND,
        "the killed worker's runs have ended",
    )
    wait_until(
        lambda: cluster.all_in(quick_runs + long_runs, states.FINISHED),
        15,
        "the other runs have ended",
    )

    runs = cluster.runs(long_runs + quick_runs)
    for run_id in doomed:
        assert runs[run_id].state == states.FAILED
        assert runs[run_id].error == states.INTERRUPTED_MESSAGE
    for run_id in [*quick_runs, *(set(long_runs) - set(doomed))]:
        assert runs[run_id].state == states.SUCCEEDED, cluster.logs()
        assert runs[run_id].owner == survivor.owner
    assert survivor.alive()
    logger.info("the killed worker's runs failed %.1fs after SIGKILL", detected)


def test_cluster_frozen_worker_is_found_by_its_heartbeat_alone(
    cluster: Cluster,
) -> None:
    # A process that is alive but silent, as a worker on another machine is to
    # the sweep: only its stopped heartbeat gives it away.
    joined = cluster.add_worker()
    runs = [cluster.start_run(n, "long", {"seconds": 3}) for n in range(2)]
    wait_until(lambda: cluster.all_in(runs, {states.RUNNING}), 15, "both run")
    owners = {run_id: run.owner for run_id, run in cluster.runs(runs).items()}
    victim = next(
        w for w in cluster.workers if w.alive() and w.owner == owners[runs[0]]
    )
    frozen = [run_id for run_id in runs if owners[run_id] == victim.owner]

    victim.freeze()
    try:
        detected = wait_until(
            lambda: cluster.all_in(frozen, states.FINISHED),
            DETECTION_BOUND,
            "the frozen worker's runs have ended",
        )
    finally:
        victim.kill()
    wait_until(lambda: cluster.all_in(runs, states.FINISHED), 10, "both have ended")

    stored = cluster.runs(runs)
    for run_id in runs:
        wanted = states.FAILED if run_id in frozen else states.SUCCEEDED
        assert stored[run_id].state == wanted, cluster.logs()
    assert stored[frozen[0]].error == states.INTERRUPTED_MESSAGE
    # Not sooner than its last heartbeat (at most a beat before the freeze)
    # had grown stale.
    assert detected > STALE_RUN_SECONDS - heartbeat_seconds(STALE_RUN_SECONDS) - 0.5
    assert joined.alive() or victim is joined
    logger.info("the frozen worker's runs failed %.1fs after SIGSTOP", detected)


def test_cluster_runs_started_while_redis_is_down_execute_once_it_is_back(
    cluster: Cluster,
) -> None:
    in_flight = cluster.start_run(0, "long", {"seconds": 4})
    wait_until(
        lambda: cluster.states([in_flight]) == [states.RUNNING], 10, "it is running"
    )

    cluster.redis.stop()
    try:
        asked_at = time.monotonic()
        while_down = [cluster.start_run(n % 2, "quick") for n in range(2)]
        answered_in = time.monotonic() - asked_at
        # A page opened meanwhile still follows the run, from the store.
        followed: list[Received] = []
        follower = threading.Thread(
            target=lambda: followed.extend(cluster.webs[1].events(while_down[0])),
            daemon=True,
        )
        follower.start()
        time.sleep(1.0)
        assert cluster.states(while_down) == [states.QUEUED] * 2
    finally:
        cluster.redis.start()

    wait_until(
        lambda: cluster.all_in([in_flight, *while_down], states.FINISHED),
        30,
        "the runs have ended",
    )
    follower.join(timeout=10)

    assert answered_in < 2.0
    assert cluster.states([in_flight, *while_down]) == [states.SUCCEEDED] * 3, (
        cluster.logs()
    )
    assert followed and followed[-1].data["state"] == "succeeded"


def test_cluster_cancel_reaches_the_worker_while_redis_is_down(
    cluster: Cluster,
) -> None:
    run_id = cluster.start_run(0, "long", {"seconds": 30})
    wait_until(
        lambda: cluster.states([run_id]) == [states.RUNNING], 10, "it is running"
    )

    cluster.redis.stop()
    try:
        asked_at = time.monotonic()
        # The cancel request cannot travel over Redis; the worker finds it in
        # the database with its next heartbeat, and the web process waits.
        cluster.webs[1].cancel(run_id)
        took = time.monotonic() - asked_at
        state = cluster.states([run_id])
    finally:
        cluster.redis.start()

    assert state == [states.CANCELLED], cluster.logs()
    # One heartbeat, the recording of the end, and the web process's next look
    # at the database (once a second).
    assert took < heartbeat_seconds(STALE_RUN_SECONDS) + 2.5
    run = cluster.runs([run_id])[run_id]
    assert run.cancel_requested_at is not None
    assert run.status_message == states.DEFAULT_MESSAGES[states.CANCELLED]


def test_cluster_queued_runs_survive_a_restart_of_every_process(
    cluster: Cluster,
) -> None:
    # Without workers the runs wait as queued, their tasks in Redis.
    cluster.stop_workers()
    queued = [cluster.start_run(n % 2, "quick") for n in range(3)]
    queued.append(cluster.start_run(1, "two-steps"))
    time.sleep(0.5)
    assert cluster.states(queued) == [states.QUEUED] * 4

    # Redis has no persistence: the tasks go with it, and only the database
    # still knows of the runs.
    cluster.stop_everything()
    assert cluster.states(queued) == [states.QUEUED] * 4
    cluster.start_everything(workers=2)

    wait_until(
        lambda: cluster.all_in(queued, states.FINISHED),
        30,
        "the queued runs have ended",
    )
    assert cluster.states(queued) == [states.SUCCEEDED] * 4, cluster.logs()
    assert len(cluster.runs(queued)) == 4


def test_cluster_interrupted_run_of_a_retrying_flow_succeeds_on_its_next_attempt(
    cluster: Cluster,
) -> None:
    run_id = cluster.start_run(0, "retrying")
    received: list[Received] = []
    follower = threading.Thread(
        target=lambda: received.extend(cluster.webs[1].events(run_id, timeout=60)),
        daemon=True,
    )
    follower.start()
    wait_until(
        lambda: cluster.states([run_id]) == [states.RUNNING], 15, "it is running"
    )
    first_owner = cluster.runs([run_id])[run_id].owner
    victim = next(w for w in cluster.workers if w.alive() and w.owner == first_owner)

    victim.kill()
    retried_in = wait_until(
        lambda: cluster.all_in([run_id], states.FINISHED),
        DETECTION_BOUND + 10,
        "the run has ended",
    )
    follower.join(timeout=10)

    run = cluster.runs([run_id])[run_id]
    assert run.state == states.SUCCEEDED, cluster.logs()
    assert run.attempt == 2
    assert run.outputs == {"attempt": 2}  # the second attempt started afresh
    assert run.owner != first_owner
    # The run page heard it all live: queued again, running again, the end.
    state_events = [item.data for item in received if item.kind == "state"]
    assert [data["state"] for data in state_events][-3:] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert state_events[-3]["message"] == (
        "The worker running this flow stopped; starting again (attempt 2 of 2)."
    )
    logger.info("the killed worker's run succeeded %.1fs after SIGKILL", retried_in)


def test_cluster_every_run_started_is_accounted_for(cluster: Cluster) -> None:
    wait_until(
        lambda: cluster.all_in(cluster.started, states.FINISHED),
        30,
        "every run has ended",
    )
    runs = cluster.runs()

    assert sorted(runs) == sorted(cluster.started)
    assert not [run for run in runs.values() if run.state in states.UNFINISHED]


def channel_subscribers(server: RedisServer, channel: str) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        counts = client.pubsub_numsub(channel)
        return int(counts[0][1]) if counts else 0
    finally:
        client.close()
