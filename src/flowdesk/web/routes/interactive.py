"""Interactive Flows for flow users: the list, the launch form (also opened by
shared links), starting a run from it, and a flow's past runs."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.types import Receive, Scope, Send

from flowdesk.auth.scopes import FLOW_RUN
from flowdesk.runs.service import list_runs
from flowdesk.web.auth import Viewer, csrf_protected, require, system_of
from flowdesk.web.launch import (
    LaunchPage,
    Outcome,
    find_flows,
    launchable_flow,
    open_link,
    submit_form,
)
from flowdesk.web.limits import read_form
from flowdesk.web.run_page import starter_name
from flowdesk.web.templating import render

router = APIRouter(include_in_schema=False)


async def posted_form(request: Request) -> FormData:
    return await read_form(request)


@router.get("/interactive-flows")
def flow_list(
    request: Request, q: str = "", viewer: Viewer = Depends(require(FLOW_RUN))
) -> Response:
    with system_of(request).db.reading() as session:
        listing = find_flows(session, viewer, q)
    return render(
        request,
        "interactive/list.html",
        {"nav": "interactive", "listing": listing, "q": q.strip()},
    )


@router.get("/interactive-flows/{flow_id}")
def launch_page(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_RUN))
) -> Response:
    params = request.query_params.multi_items()
    outcome = open_link(system_of(request), flow_id, params, viewer)
    return show_outcome(request, outcome)


@router.post("/interactive-flows/{flow_id}/runs")
def start_from_form(
    request: Request,
    flow_id: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_RUN)),
    form: FormData = Depends(posted_form),
) -> Response:
    params = [
        (name, value) for name, value in form.multi_items() if isinstance(value, str)
    ]
    outcome = submit_form(system_of(request), flow_id, params, viewer)
    return show_outcome(request, outcome)


@router.get("/interactive-flows/{flow_id}/runs")
def past_runs(
    request: Request,
    flow_id: str,
    cursor: str | None = None,
    viewer: Viewer = Depends(require(FLOW_RUN)),
) -> Response:
    sees_all = viewer.sees_all_runs
    with system_of(request).db.reading() as session:
        target = launchable_flow(session, flow_id, viewer)
        page = list_runs(
            session,
            flow_id=flow_id,
            user_id=None if sees_all else viewer.user.id,
            cursor=cursor,
        )
        usernames = {run.id: starter_name(run) for run in page.runs}
    return render(
        request,
        "interactive/runs.html",
        {
            "nav": "interactive",
            "target": target,
            "page": page,
            "sees_all": sees_all,
            "usernames": usernames,
            "first_page": not cursor,
        },
    )


def show_outcome(request: Request, outcome: Outcome) -> Response:
    """A started run goes to its page; otherwise the launch form is shown."""
    if outcome.run is not None:
        assert outcome.begin is not None, "a started run comes with its begin"
        return RunStartedRedirect(f"/runs/{quote(outcome.run.id)}", outcome.begin)
    assert outcome.page is not None, "an outcome has either a run or a page"
    return render_launch(request, outcome.page)


class RunStartedRedirect(RedirectResponse):
    """The redirect to a new run's page, which begins the run once it has gone
    out, however sending it ended."""

    def __init__(self, url: str, begin: Callable[[], None]) -> None:
        super().__init__(url, status_code=303)
        self._begin = begin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._begin()


def render_launch(request: Request, page: LaunchPage) -> Response:
    return render(
        request,
        "interactive/launch.html",
        {"nav": "interactive", "page": page, "target": page.target, "form": page.form},
        status_code=page.status_code,
    )
