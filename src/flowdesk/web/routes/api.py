"""The JSON API under /api/v1, described at /api/v1/openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from flowdesk.auth.scopes import ALL_SCOPES
from flowdesk.db.models import Flow, Run
from flowdesk.errors import NotFound
from flowdesk.flows.service import flow_visible_to, get_flow, list_interactive_flows
from flowdesk.runs.service import list_runs, start_run
from flowdesk.web.auth import (
    RUN_SCOPES,
    Viewer,
    csrf_protected,
    require,
    signed_in,
    system_of,
)
from flowdesk.web.run_page import visible_child_ids, visible_run

router = APIRouter(prefix="/api/v1", tags=["api"])


class FlowOut(BaseModel):
    id: str
    name: str
    location: str
    tags: list[str]
    description: str
    interactive: bool


class RunOut(BaseModel):
    id: str
    flow_id: str
    state: str
    trigger: str
    inputs: dict[str, Any]
    status_message: str
    progress: float | None
    outputs: dict[str, Any] | None
    error: str | None
    error_step: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str
    parent_run_id: str | None = Field(
        default=None, description="The run whose run_flow step started this one."
    )


class RunDetail(RunOut):
    child_run_ids: list[str] = Field(
        description="The runs this run's run_flow steps started, oldest first;"
        " those the caller may see."
    )


class RunList(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None


class CallerOut(BaseModel):
    username: str
    scopes: list[str]
    groups: list[str]
    by_token: bool


class StartRun(BaseModel):
    inputs: dict[str, Any] = Field(default_factory=dict)


def _flow_out(flow: Flow) -> FlowOut:
    return FlowOut(
        id=flow.id,
        name=flow.name,
        location=flow.location,
        tags=flow.tags,
        description=flow.description,
        interactive=flow.interactive,
    )


def _run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        flow_id=run.flow_id,
        state=run.state,
        trigger=run.trigger,
        inputs=run.inputs,
        status_message=run.status_message,
        progress=run.progress,
        outputs=run.outputs,
        error=run.error,
        error_step=run.error_step,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        url=f"/runs/{run.id}",
        parent_run_id=run.parent_run_id,
    )


def _visible_flow(request: Request, viewer: Viewer, flow_id: str) -> Flow:
    with system_of(request).db.reading() as session:
        flow = get_flow(session, flow_id)
    if not flow.interactive and not viewer.has("flow:edit"):
        raise NotFound(f"There is no flow with the id '{flow_id}'.")
    if not flow_visible_to(flow, viewer.groups):
        raise NotFound(f"There is no flow with the id '{flow_id}'.")
    return flow


@router.get("/me", response_model=CallerOut)
def api_caller(viewer: Viewer = Depends(signed_in)) -> CallerOut:
    """Who the caller is and the scopes this request may use: for an API
    token its own, within those its user holds."""
    return CallerOut(
        username=viewer.user.username,
        scopes=[scope for scope in ALL_SCOPES if viewer.has(scope)],
        groups=sorted(viewer.user.group_names),
        by_token=viewer.by_token,
    )


@router.get("/flows", response_model=list[FlowOut])
def api_list_flows(
    request: Request, q: str = "", viewer: Viewer = Depends(require("flow:run"))
) -> list[FlowOut]:
    """Interactive flows the caller may launch."""
    with system_of(request).db.reading() as session:
        flows = list_interactive_flows(session, viewer.groups, q)
    return [_flow_out(flow) for flow in flows]


@router.get("/flows/{flow_id}", response_model=FlowOut)
def api_get_flow(
    request: Request, flow_id: str, viewer: Viewer = Depends(require("flow:run"))
) -> FlowOut:
    return _flow_out(_visible_flow(request, viewer, flow_id))


@router.post("/flows/{flow_id}/runs", response_model=RunOut, status_code=201)
def api_start_run(
    request: Request,
    flow_id: str,
    body: StartRun,
    viewer: Viewer = Depends(csrf_protected("flow:run")),
) -> RunOut:
    """Validate the inputs and start a run; 422 names each bad field."""
    _visible_flow(request, viewer, flow_id)
    run = start_run(system_of(request), flow_id, body.inputs, "api", user=viewer.user)
    return _run_out(run)


@router.get("/runs/{run_id}", response_model=RunDetail)
def api_get_run(
    request: Request, run_id: str, viewer: Viewer = Depends(require(*RUN_SCOPES))
) -> RunDetail:
    with system_of(request).db.reading() as session:
        run = visible_run(session, run_id, viewer)
        children = visible_child_ids(session, run_id, viewer)
    return RunDetail(**_run_out(run).model_dump(), child_run_ids=children)


@router.get("/runs", response_model=RunList)
def api_list_runs(
    request: Request,
    flow: str | None = None,
    cursor: str | None = None,
    limit: int = 25,
    viewer: Viewer = Depends(require(*RUN_SCOPES)),
) -> RunList:
    """Newest runs first; the caller's own unless they may see every run."""
    with system_of(request).db.reading() as session:
        page = list_runs(
            session,
            flow_id=flow,
            user_id=None if viewer.sees_all_runs else viewer.user.id,
            cursor=cursor,
            limit=max(1, min(limit, 200)),
        )
    return RunList(
        runs=[_run_out(run) for run in page.runs], next_cursor=page.next_cursor
    )
