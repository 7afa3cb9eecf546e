"""The parts one flowdesk process runs with: settings, database, event bus and
executor, built once at start-up and handed to the web app or the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flowdesk.db import Database
from flowdesk.runs.events import EventBus
from flowdesk.runs.executor import Executor, LocalExecutor
from flowdesk.runs.recovery import process_owner
from flowdesk.settings import Settings, load_settings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class System:
    """With `FLOWDESK_EXECUTOR=celery` the bus is Redis and runs go to the
    workers, unless this process executes them itself (`executes_runs`: the
    worker, and `flowdesk run` in a terminal)."""

    settings: Settings
    db: Database
    executes_runs: bool = False
    owner: str = field(default_factory=process_owner)
    bus: EventBus = field(init=False)
    executor: Executor = field(init=False)

    def __post_init__(self) -> None:
        # Celery and Redis are imported only in the mode that uses them: they
        # cost every command start-up time.
        broker_url = self.settings.broker_url
        if self.settings.executor == "celery" and broker_url:
            from flowdesk.runs.redis_bus import RedisEventBus

            self.bus = RedisEventBus(broker_url)
        else:
            self.bus = EventBus()
        if self.settings.executor == "celery" and not self.executes_runs:
            from flowdesk.runs.celery_executor import CeleryExecutor

            self.executor = CeleryExecutor(self)
        else:
            self.executor = LocalExecutor(self, self.settings.max_concurrent_runs)


def open_system(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    executes_runs: bool = False,
) -> System:
    """Connect to the configured database, bringing its schema up to date."""
    settings = settings or load_settings()
    settings.prepare_data_dir()
    db = Database(settings.resolved_database_url)
    if migrate:
        db.upgrade()
    return System(settings=settings, db=db, executes_runs=executes_runs)
