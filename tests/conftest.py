"""Fixtures shared by the whole suite: settings in a temporary data dir, a
system on SQLite or PostgreSQL, and a real server process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowdesk.flows.cache import versions
from flowdesk.settings import Settings
from flowdesk.system import System, open_system
from tests.support.postgres import find_bindir, throwaway_postgres
from tests.support.server import LiveServer

# Set by .ci/run: nothing may be skipped for want of a browser or a server.
STRICT = os.environ.get("FLOWDESK_TEST_STRICT") == "1"


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI."""
    if STRICT:
        pytest.fail(f"{reason} (FLOWDESK_TEST_STRICT is set, so this is an error)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own FLOWDESK_* variables must not leak into the tests.
    for name in list(os.environ):
        if name.startswith("FLOWDESK_") and name != "FLOWDESK_TEST_STRICT":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _fresh_version_cache() -> Iterator[None]:
    # Every test database numbers its flow versions from 1.
    versions.clear()
    yield
    versions.clear()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("FLOWDESK_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if find_bindir() is None:
        unavailable("PostgreSQL binaries are not installed")
    with throwaway_postgres() as url:
        yield url


def make_settings(data_dir: Path, **values: object) -> Settings:
    return Settings(data_dir=data_dir, load_examples=False, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def system(settings: Settings) -> Iterator[System]:
    built = open_system(settings)
    yield built
    built.db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    """A system on each supported database; PostgreSQL gets a fresh schema."""
    if request.param == "sqlite":
        built = open_system(make_settings(tmp_path / "data"))
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
        built = open_system(make_settings(tmp_path / "data", database_url=url))
    yield built
    built.db.dispose()


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "server-data").start()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Playwright's sync API keeps an event loop running in this thread for as
    # long as its session-wide browser lives, and asyncio tests cannot start
    # beside it; so the browser tests run last, after every other test.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
