"""The parts one flowdesk process runs with: settings, database, event bus and
executor, built once at start-up and handed to the web app or the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flowdesk.db import Database
from flowdesk.runs.events import EventBus
from flowdesk.runs.executor import LocalExecutor
from flowdesk.runs.recovery import process_owner
from flowdesk.settings import Settings, load_settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class System:
    settings: Settings
    db: Database
    bus: EventBus = field(default_factory=EventBus)
    owner: str = field(default_factory=process_owner)
    executor: LocalExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = LocalExecutor(self, self.settings.max_concurrent_runs)


def open_system(settings: Settings | None = None, *, migrate: bool = True) -> System:
    """Connect to the configured database, bringing its schema up to date."""
    settings = settings or load_settings()
    settings.prepare_data_dir()
    db = Database(settings.resolved_database_url)
    if migrate:
        db.upgrade()
    return System(settings=settings, db=db)
