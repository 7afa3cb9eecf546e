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
from flowdesk.runs.recovery import (
    ORPHAN_AFTER,
    fail_interrupted,
    recover,
    redispatch_queued,
)
from flowdesk.system import System
from flowdesk.web.errors import install_error_handlers
from flowdesk.web.routes import api, session
from flowdesk.web.security import SecurityHeaders
from flowdesk.web.templating import STATIC

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 15.0


def create_app(system: System) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await system.executor.start()
        failed, queued = await asyncio.to_thread(recover, system)
        if failed or queued:
            logger.info(
                "recovered %s interrupted and %s queued runs", len(failed), len(queued)
            )
        sweeper = asyncio.get_running_loop().create_task(_sweep(system))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await system.executor.stop()

    app = FastAPI(
        title="flowdesk",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.system = system
    install_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(session.router)
    app.include_router(api.router)
    return app


async def _sweep(system: System) -> None:
    """Catch runs whose process died while this one runs (another CLI or
    server process on the same database)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await asyncio.to_thread(fail_interrupted, system)
            await asyncio.to_thread(redispatch_queued, system, older_than=ORPHAN_AFTER)
        except Exception:
            logger.exception("the sweep for interrupted runs failed")
