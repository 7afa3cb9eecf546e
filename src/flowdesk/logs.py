"""Logging is configured once, at start-up of a command."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=FORMAT)
    # Alembic announces every migration context at INFO; keep start-up quiet.
    logging.getLogger("alembic").setLevel(logging.WARNING)
