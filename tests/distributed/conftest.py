"""Fixtures of the distributed mode: a throw-away Redis server beside the
throw-away PostgreSQL one, a database of its own per module, and settings for
`FLOWDESK_EXECUTOR=celery`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from flowdesk.settings import Settings
from tests.conftest import unavailable
from tests.support.redis import RedisServer, find_redis_server

SECRET_KEY = "distributed-tests-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = find_redis_server()
    if binary is None:
        unavailable("redis-server is not installed")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary).start()
    yield server
    server.remove()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test (and running again, should
    an earlier test have stopped it)."""
    import redis

    if not redis_server.answers():
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


def fresh_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server of `server_url`."""
    name = f"flowdesk_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> str:
    return fresh_database(postgres_url)


def celery_settings(
    data_dir: Path, database_url: str, broker_url: str, **values: object
) -> Settings:
    return Settings(  # type: ignore[arg-type]
        data_dir=data_dir,
        load_examples=False,
        executor="celery",
        database_url=database_url,
        broker_url=broker_url,
        secret_key=SECRET_KEY,
        **values,
    )
