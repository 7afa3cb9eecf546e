"""A run that uses secrets, from start to end: the API it calls gets the real
value, while the stored run, its events and its result show only `***`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from flowdesk.runs import states
from flowdesk.runs.service import get_run, run_events, start_run
from flowdesk.secrets.connections import build_auth, set_connection
from flowdesk.secrets.store import secret_box, set_secret
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.support.http_api import ApiServer, serve_api
from tests.support.stored_flows import apply_flow

TOKEN = "tok-9c2e-do-not-show"
PASSWORD = "pw with spaces & symbols!"

USES_SECRETS = """
    id: uses-secrets
    name: Uses secrets
    steps:
      - http: /orders
        connection: shop
        save_as: answer
      - log: "The API saw {{ answer.body.headers.authorization }}"
      - status: "Token {{ secrets.TOKEN }}"
      - set:
          echoed: "{{ answer.body.headers.authorization }}"
          nested: {deep: ["{{ secrets.PASSWORD }}"]}
      - python: |
          print("python saw", echoed)
          return echoed + "!"
        save_as: shouted
      - html: "<p>{{ secrets.TOKEN }}</p>"
"""

FAILS_WITH_SECRET = """
    id: fails-with-secret
    name: Fails with secret
    steps:
      - fail: "Could not log in with {{ secrets.PASSWORD }}"
"""


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with serve_api() as server:
        yield server


@pytest.fixture
async def system_with_secrets(tmp_path: Path, api: ApiServer) -> AsyncIterator[System]:
    system = open_system(Settings(data_dir=tmp_path / "data", load_examples=False))
    await system.executor.start()
    box = secret_box(system.settings)
    with system.db.transaction() as session:
        set_secret(session, box, "TOKEN", TOKEN)
        set_secret(session, box, "PASSWORD", PASSWORD)
        set_connection(
            session, "shop", f"{api.url}/api/v1", {}, build_auth("bearer", "TOKEN")
        )
    yield system
    await system.executor.stop()
    system.db.dispose()


def everything_stored(system: System, run_id: str) -> str:
    with system.db.reading() as session:
        run = get_run(session, run_id)
        events = run_events(session, run_id)
        parts = [
            run.inputs,
            run.outputs,
            run.html,
            run.error,
            run.status_message,
            [(event.message, event.data) for event in events],
        ]
    return repr(parts)


async def test_masking_run_sends_the_secret_and_stores_only_masks(
    system_with_secrets: System, api: ApiServer
) -> None:
    system = system_with_secrets
    apply_flow(system, USES_SECRETS)

    run = start_run(system, "uses-secrets", {}, "api")
    assert await system.executor.wait(run.id) == states.SUCCEEDED

    assert api.last()["headers"]["authorization"] == f"Bearer {TOKEN}"
    stored = everything_stored(system, run.id)
    assert TOKEN not in stored
    assert PASSWORD not in stored
    with system.db.reading() as session:
        finished = get_run(session, run.id)
        messages = [event.message for event in run_events(session, run.id)]
    assert finished.html == "<p>***</p>"
    assert finished.outputs is not None
    assert finished.outputs["echoed"] == "Bearer ***"
    assert finished.outputs["nested"] == {"deep": ["***"]}
    assert finished.outputs["shouted"] == "Bearer ***!"
    assert "The API saw Bearer ***" in messages
    assert "python saw Bearer ***" in messages
    assert "Token ***" in messages


async def test_masking_failure_message_hides_the_secret(
    system_with_secrets: System,
) -> None:
    system = system_with_secrets
    apply_flow(system, FAILS_WITH_SECRET)

    run = start_run(system, "fails-with-secret", {}, "api")
    assert await system.executor.wait(run.id) == states.FAILED

    stored = everything_stored(system, run.id)
    assert PASSWORD not in stored
    with system.db.reading() as session:
        assert get_run(session, run.id).error == "Could not log in with ***"
