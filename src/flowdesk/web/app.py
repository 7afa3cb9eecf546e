"""The web application: pages, the JSON API and live run events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowdesk import __version__
from flowdesk.memory import freeze_start_up_objects
from flowdesk.runs.recovery import recover, sweep
from flowdesk.schedules.scheduler import Scheduler
from flowdesk.system import System
from flowdesk.web.errors import install_error_handlers
from flowdesk.web.limits import FORM_LIMITS, BodyLimit
from flowdesk.web.routes import (
    account,
    admin,
    api,
    connections,
    editor,
    interactive,
    runs,
    secrets,
    session,
)
from flowdesk.web.security import SecurityHeaders
from flowdesk.web.templating import STATIC

logger = logging.getLogger(__name__)


def create_app(system: System, *, freeze_start_up: bool = False) -> FastAPI:
    """The app for `system`. `freeze_start_up` is for a process that serves
    until it stops (`flowdesk serve`): once started, what start-up made is
    left out of the garbage collector's passes (`memory`). Tests, which build
    many apps in one process, leave it off."""
    scheduler = Scheduler(system.db, dispatch=system.executor.submit)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await system.executor.start()
        failed, queued = await asyncio.to_thread(recover, system)
        if failed or queued:
            logger.info(
                "recovered %s interrupted and %s queued runs", len(failed), len(queued)
            )
        sweeper = asyncio.get_running_loop().create_task(sweep(system))
        schedules = asyncio.get_running_loop().create_task(scheduler.run())
        if freeze_start_up:
            freeze_start_up_objects()
        try:
            yield
        finally:
            schedules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schedules
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await system.executor.stop()

    app = FastAPI(
        title="flowdesk",
        version=__version__,
        lifespan=lifespan,
        # The interactive docs page needs inline and CDN scripts, which the
        # pages' CSP forbids; the description itself is at openapi_url.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        # For any `Form()` parameter: the limits web.limits.read_form applies.
        form_limits=FORM_LIMITS,
    )
    app.state.system = system
    app.state.scheduler = scheduler
    install_error_handlers(app)
    # The last added runs first: headers go on everything, the 413 included.
    app.add_middleware(BodyLimit, max_bytes=system.settings.max_request_bytes)
    app.add_middleware(SecurityHeaders, https=system.settings.served_over_https)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(session.router)
    app.include_router(interactive.router)
    app.include_router(runs.router)
    app.include_router(api.router)
    app.include_router(editor.router)
    app.include_router(connections.router)
    app.include_router(secrets.router)
    app.include_router(admin.router)
    app.include_router(account.router)
    return app
