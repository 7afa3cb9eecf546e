"""Bring a database's schema up to date with the bundled Alembic migrations."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number, the same in every flowdesk process: "flowdesk" in ASCII.
LOCK_KEY = 0x666C6F776465736B


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    # Processes starting together would each apply the same migration; the
    # lock (held until this transaction ends) lets one do it while the others
    # wait, then find nothing left to do.
    with engine.begin() as connection:
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
        )
        command.upgrade(alembic_config(engine), "head")
