"""Migrations: an empty database reaches the schema the code expects, on SQLite
and PostgreSQL, and running them again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select

from flowdesk.db import Database
from flowdesk.db.migrate import alembic_config
from flowdesk.db.models import Base, Group
from flowdesk.system import System

pytestmark = pytest.mark.postgres

TABLES = {
    "flows",
    "flow_versions",
    "runs",
    "run_events",
    "users",
    "groups",
    "user_groups",
    "web_sessions",
}


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, Base.metadata))


def test_migrate_brings_an_empty_database_to_head(any_system: System) -> None:
    engine = any_system.db.engine

    assert set(inspect(engine).get_table_names()) >= TABLES
    assert current_revision(engine) == head_revision()


def test_migrate_result_matches_the_models(any_system: System) -> None:
    # A difference here means the code would read or write a column, key or
    # index that the migrated database does not have.
    assert schema_differences(any_system.db.engine) == []


def test_migrate_again_keeps_schema_and_data(any_system: System) -> None:
    with any_system.db.transaction() as session:
        session.add(Group(name="finance"))

    any_system.db.upgrade()
    any_system.db.upgrade()

    assert current_revision(any_system.db.engine) == head_revision()
    with any_system.db.reading() as session:
        assert session.scalars(select(Group.name)).all() == ["finance"]


def test_migrate_down_to_nothing_and_up_again(any_system: System) -> None:
    engine = any_system.db.engine

    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) & TABLES == set()

    any_system.db.upgrade()
    assert schema_differences(engine) == []


def test_migrate_creates_the_sqlite_file_in_a_fresh_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "flowdesk.db"
    path.parent.mkdir()
    database = Database(f"sqlite:///{path}")

    database.upgrade()

    assert path.exists()
    assert current_revision(database.engine) == head_revision()
    database.dispose()
