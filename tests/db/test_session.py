"""The SQLite connection set-up: WAL, a busy timeout, foreign keys, writers that
queue at BEGIN and readers that never wait for them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from flowdesk.db.models import Group, RunEvent
from flowdesk.db.session import SQLITE_BUSY_TIMEOUT_MS
from flowdesk.db.types import utcnow
from flowdesk.system import System


def test_session_sqlite_uses_wal_busy_timeout_and_foreign_keys(system: System) -> None:
    with system.db.reading() as session:
        mode = session.scalar(text("PRAGMA journal_mode"))
        timeout = session.scalar(text("PRAGMA busy_timeout"))
        foreign_keys = session.scalar(text("PRAGMA foreign_keys"))

    assert mode == "wal"
    assert timeout == SQLITE_BUSY_TIMEOUT_MS
    assert foreign_keys == 1


def test_session_sqlite_refuses_a_row_that_points_nowhere(system: System) -> None:
    with pytest.raises(IntegrityError), system.db.transaction() as session:
        session.add(RunEvent(run_id="no-such-run", seq=1, kind="log"))


def test_session_transaction_rolls_back_on_error(system: System) -> None:
    with pytest.raises(RuntimeError), system.db.transaction() as session:
        session.add(Group(name="half-done"))
        session.flush()
        raise RuntimeError("stop here")

    with system.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Group)) == 0


def test_session_open_read_does_not_block_a_write(system: System) -> None:
    # A reader holding its session open while the same thread writes would
    # wait for itself if reads took the write lock.
    with system.db.reading() as reader:
        assert reader.scalar(select(func.count()).select_from(Group)) == 0
        with system.db.transaction() as writer:
            writer.add(Group(name="written-while-reading"))

    with system.db.reading() as session:
        assert session.scalars(select(Group.name)).all() == ["written-while-reading"]


def test_session_concurrent_read_then_write_transactions_are_serialised(
    system: System,
) -> None:
    # Each writer counts the groups and adds the next number. With the lock taken
    # at BEGIN they queue up; with a deferred BEGIN two would read the same count
    # (a duplicate name) or fail with "database is locked" when upgrading.
    writers, rounds = 4, 10
    start = threading.Barrier(writers)

    def add_groups() -> None:
        start.wait()
        for _ in range(rounds):
            with system.db.transaction() as session:
                count = session.scalar(select(func.count()).select_from(Group))
                session.add(Group(name=f"group-{count}"))

    with ThreadPoolExecutor(writers) as pool:
        for future in [pool.submit(add_groups) for _ in range(writers)]:
            future.result()

    with system.db.reading() as session:
        names = set(session.scalars(select(Group.name)))
    assert names == {f"group-{number}" for number in range(writers * rounds)}


def test_session_refuses_a_naive_datetime(system: System) -> None:
    with (
        pytest.raises(StatementError, match="naive"),
        system.db.transaction() as session,
    ):
        session.add(Group(name="naive", created_at=datetime(2024, 5, 1, 12, 0)))


@pytest.mark.postgres
def test_session_datetimes_come_back_aware_in_utc(any_system: System) -> None:
    written = utcnow()
    with any_system.db.transaction() as session:
        session.add(Group(name="timed", created_at=written))

    with any_system.db.reading() as session:
        read = session.scalars(select(Group.created_at)).one()

    assert read == written
    assert read.utcoffset() is not None and read.utcoffset().total_seconds() == 0
