"""Alembic environment: migrations run on the engine handed in by flowdesk."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from flowdesk.db.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    from flowdesk.settings import get_settings

    return create_engine(get_settings().resolved_database_url)


def run_migrations() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
