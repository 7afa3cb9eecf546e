"""A served app leaves its start-up objects out of the collector's passes; an
app built in a test does not touch the test process's collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flowdesk.system import System
from flowdesk.web.app import create_app
from tests.support.interactive import TestClient


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_served_app_freezes_what_start_up_made(
    system: System, unfrozen: None
) -> None:
    with TestClient(create_app(system, freeze_start_up=True)) as client:
        # In a test the whole process's objects are frozen with the app's.
        assert gc.get_freeze_count() > 10_000
        assert client.get("/healthz").status_code == 200


def test_an_app_built_in_a_test_freezes_nothing(system: System, unfrozen: None) -> None:
    with TestClient(create_app(system)) as client:
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
