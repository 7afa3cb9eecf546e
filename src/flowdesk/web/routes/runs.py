"""The run page, its live events, its HTML result, and Cancel and Rerun."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.types import Receive, Scope, Send

from flowdesk.errors import FlowdeskError
from flowdesk.web.auth import RUN_SCOPES, Viewer, csrf_protected, require, system_of
from flowdesk.web.routes.interactive import show_outcome
from flowdesk.web.run_page import (
    RESULT_CSP,
    LiveEvents,
    cancel_visible_run,
    framed_result,
    open_event_stream,
    rerun_visible_run,
    result_html,
    run_view,
)
from flowdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}")
def run_page(
    request: Request, run_id: str, viewer: Viewer = Depends(require(*RUN_SCOPES))
) -> Response:
    with system_of(request).db.reading() as session:
        view = run_view(session, run_id, viewer)
    return render(request, "runs/run.html", {"nav": "interactive", "view": view})


@router.get("/runs/{run_id}/events")
async def run_events_stream(
    request: Request,
    run_id: str,
    after: int = 0,
    viewer: Viewer = Depends(require(*RUN_SCOPES)),
) -> Response:
    # EventSource sends the last id it saw when it reconnects.
    after = _last_event_id(request) or after
    events = await open_event_stream(
        system_of(request), run_id, after, viewer.may_see_run
    )
    if events is None:
        # 204 tells EventSource to stop reconnecting: the run is over.
        return Response(status_code=204)
    return EventStreamResponse(events)


class EventStreamResponse(StreamingResponse):
    """Server-sent events that let go of their subscription however the
    response ends: a client gone before the first chunk never starts the
    generator, whose own clean-up would then never run."""

    def __init__(self, events: LiveEvents) -> None:
        super().__init__(
            events.messages(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.close()


@router.get("/runs/{run_id}/result")
def run_result(
    request: Request, run_id: str, viewer: Viewer = Depends(require(*RUN_SCOPES))
) -> Response:
    with system_of(request).db.reading() as session:
        html = result_html(session, run_id, viewer)
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        framed_result(html, nonce),
        headers={
            "content-security-policy": RESULT_CSP.format(nonce=nonce),
            "x-frame-options": "SAMEORIGIN",
            "cache-control": "private, no-store",
        },
    )


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request, run_id: str, viewer: Viewer = Depends(csrf_protected(*RUN_SCOPES))
) -> Response:
    await cancel_visible_run(system_of(request), run_id, viewer)
    return RedirectResponse(f"/runs/{quote(run_id)}", status_code=303)


@router.post("/runs/{run_id}/rerun")
def rerun_run(
    request: Request, run_id: str, viewer: Viewer = Depends(csrf_protected(*RUN_SCOPES))
) -> Response:
    outcome = rerun_visible_run(system_of(request), run_id, viewer)
    return show_outcome(request, outcome)


def _last_event_id(request: Request) -> int:
    value = request.headers.get("last-event-id", "").strip()
    if not value:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        raise FlowdeskError(
            f"The Last-Event-ID header must be a whole number, got {value!r}."
        ) from None
