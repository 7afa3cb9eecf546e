"""The database engine and the transaction helper every service uses."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Marks the connections of `Database.reading()`, which need no write lock.
READ_ONLY_OPTION = "flowdesk_read_only"
# Threads for the writes of runs (`Database.write`): SQLite lets one writer in
# at a time anyway; a server database takes a few at once.
SQLITE_WRITE_THREADS = 1
SERVER_WRITE_THREADS = 4

T = TypeVar("T")


class Database:
    """One engine and session factory per process, shared by every request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        # SQLite lets one writer in at a time, and one that finds the database
        # locked sleeps in growing steps (1, 2, 5, 10, 15 ms ...) before trying
        # again. Writers of this process queue on a lock instead, so that each
        # gets the database the moment the last one lets go of it.
        self._writers: AbstractContextManager[Any] = (
            threading.RLock() if self.is_sqlite else nullcontext()
        )
        self._write_pool: ThreadPoolExecutor | None = None
        self._write_pool_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back on error."""
        with self._writers, self._sessions.begin() as session:
            yield session

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)`, which writes, in a thread kept for writes. Not
        asyncio's default pool, which the pages' reads share: a thousand event
        streams reading at once held a run's final write back by 350 ms."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._writes(), functools.partial(work, *args)
        )

    def _writes(self) -> ThreadPoolExecutor:
        # Started on first use: most commands never write from a loop.
        with self._write_pool_lock:
            if self._write_pool is None:
                threads = (
                    SQLITE_WRITE_THREADS if self.is_sqlite else SERVER_WRITE_THREADS
                )
                self._write_pool = ThreadPoolExecutor(
                    threads, thread_name_prefix="flowdesk-writes"
                )
            return self._write_pool

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only; nothing it does is committed."""
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection for Core reads, without a session's bookkeeping, for
        the small reads that every request makes (its viewer, a launch check,
        an event stream's backlog); nothing it does is committed."""
        with self._read_engine.connect() as connection:
            yield connection

    def upgrade(self) -> None:
        from flowdesk.db.migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        with self._write_pool_lock:
            if self._write_pool is not None:
                self._write_pool.shutdown(wait=True)
                self._write_pool = None
        self.engine.dispose()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}
        )
        event.listen(engine, "connect", _configure_sqlite)
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins, so
        # that writers take the lock at BEGIN instead of failing mid-way.
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin(connection: Any) -> None:
    # Readers take no lock at all: in WAL mode they read beside a writer, and a
    # read session held open must not block (or deadlock) a write.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
