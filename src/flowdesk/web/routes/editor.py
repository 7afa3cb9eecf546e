"""The pages of flow developers: all flows, the flow editor, Flow Settings (a
dialog in the editor, and a page of its own for browsers without JavaScript),
version history with diffs, test runs and deleting a flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from flowdesk.auth.scopes import FLOW_EDIT
from flowdesk.errors import DefinitionError, Problem
from flowdesk.flows.editing import (
    EditorView,
    FlowFolder,
    SettingsForm,
    SettingsView,
    TestRunPage,
    apply_settings,
    create_flow,
    diff_sources,
    editor_view,
    flow_count,
    flow_overview,
    get_version,
    open_test_run,
    restore_version,
    run_count,
    save_source,
    settings_view,
    start_test_run,
    version_history,
)
from flowdesk.flows.service import current_version, delete_flow, get_flow
from flowdesk.web.auth import Viewer, csrf_protected, require, system_of
from flowdesk.web.limits import read_form
from flowdesk.web.routes import editor_api
from flowdesk.web.templating import STATIC, render

router = APIRouter(include_in_schema=False)
# The live checks' endpoints come first: `/flows/-/...` is no flow's id.
router.include_router(editor_api.router)

DIST = STATIC / "dist"


async def posted_form(request: Request) -> FormData:
    return await read_form(request)


def bundle_url(name: str) -> str | None:
    """The URL of a built front-end bundle, or None when it was not built (the
    pages then fall back to plain text areas and checks on Save)."""
    path = DIST / f"{name}.js"
    if not path.is_file():
        return None
    return f"/static/dist/{name}.js?v={int(path.stat().st_mtime)}"


def flow_url(flow_id: str, *rest: str) -> str:
    return "/".join([f"/flows/{quote(flow_id, safe='')}", *rest])


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _checked(form: FormData, name: str) -> bool:
    # A checkbox posts its value only when it is ticked.
    return _text(form, name) not in ("", "false")


def _author(viewer: Viewer) -> str:
    return viewer.user.username


def _wake_scheduler(request: Request) -> None:
    # A saved flow may have a new or changed schedule; the scheduler would
    # otherwise notice only at its next reload.
    request.app.state.scheduler.wake()


# All flows


@dataclass(frozen=True)
class NewFlowForm:
    """The New flow form as typed, with what was wrong with it."""

    flow_id: str = ""
    name: str = ""
    problems: Sequence[Problem] = ()


@router.get("/flows")
def flows_page(
    request: Request, q: str = "", viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        folders = flow_overview(session, q)
        total = flow_count(session)
    return _render_flows(request, folders, total, q.strip())


@router.post("/flows")
def new_flow(
    request: Request,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: FormData = Depends(posted_form),
) -> Response:
    flow_id = _text(form, "flow_id").strip()
    name = _text(form, "name").strip()
    system = system_of(request)
    try:
        with system.db.transaction() as session:
            create_flow(session, flow_id, name, _author(viewer))
    except DefinitionError as error:
        with system.db.reading() as session:
            folders = flow_overview(session)
            total = flow_count(session)
        new = NewFlowForm(flow_id, name, error.problems)
        return _render_flows(request, folders, total, "", new=new, status_code=422)
    return RedirectResponse(flow_url(flow_id) + "?created=1", status_code=303)


def _render_flows(
    request: Request,
    folders: list[FlowFolder],
    total: int,
    q: str,
    *,
    new: NewFlowForm | None = None,
    status_code: int = 200,
) -> Response:
    deleted = request.query_params.get("deleted", "")
    return render(
        request,
        "editor/flows.html",
        {
            "nav": "flows",
            "folders": folders,
            "total": total,
            "q": q,
            "new": new or NewFlowForm(),
            "deleted": deleted,
        },
        status_code=status_code,
    )


# The editor


@router.get("/flows/{flow_id}")
def editor_page(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        view = editor_view(session, flow_id)
    return _render_editor(request, view)


@router.post("/flows/{flow_id}")
def save_definition(
    request: Request,
    flow_id: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: FormData = Depends(posted_form),
) -> Response:
    text = _text(form, "source")
    system = system_of(request)
    try:
        with system.db.transaction() as session:
            outcome = save_source(session, flow_id, text, _author(viewer))
    except DefinitionError as error:
        with system.db.reading() as session:
            view = editor_view(session, flow_id)
        return _render_editor(
            request, view, text=text, problems=error.problems, status_code=422
        )
    _wake_scheduler(request)
    note = (
        "unchanged=1" if outcome.change == "unchanged" else f"saved={outcome.version}"
    )
    return RedirectResponse(f"{flow_url(flow_id)}?{note}", status_code=303)


def _render_editor(
    request: Request,
    view: EditorView,
    *,
    text: str | None = None,
    problems: Sequence[Problem] = (),
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "editor/editor.html",
        {
            "nav": "flows",
            "view": view,
            "text": text,
            "problems": list(problems),
            "notice": _notice(request),
            "bundle": bundle_url("editor"),
        },
        status_code=status_code,
    )


def _notice(request: Request) -> str | None:
    """The message of a redirect after a change, read from its query."""
    query = request.query_params
    if query.get("created"):
        return "The flow was created. Edit its definition and save."
    if query.get("unchanged"):
        return "Nothing changed, so no new version was made."
    for key, words in (
        ("saved", "Saved as version {}."),
        ("settings", "Flow Settings saved as version {}."),
        ("restored", "Restored as version {}."),
    ):
        number = query.get(key, "")
        if number.isdigit():
            return words.format(number)
    return None


# Flow Settings


@router.get("/flows/{flow_id}/settings")
def settings_page(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        view = settings_view(session, flow_id)
    return _render_settings(request, view)


@router.post("/flows/{flow_id}/settings")
def save_settings(
    request: Request,
    flow_id: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: FormData = Depends(posted_form),
) -> Response:
    typed = settings_form(form)
    system = system_of(request)
    try:
        with system.db.transaction() as session:
            outcome = apply_settings(session, flow_id, typed, _author(viewer))
    except DefinitionError as error:
        with system.db.reading() as session:
            view = settings_view(session, flow_id, typed, error.problems)
        return _render_settings(request, view, status_code=422)
    _wake_scheduler(request)
    note = (
        "unchanged=1"
        if outcome.change == "unchanged"
        else f"settings={outcome.version}"
    )
    return RedirectResponse(f"{flow_url(flow_id)}?{note}", status_code=303)


def settings_form(form: FormData) -> SettingsForm:
    return SettingsForm(
        name=_text(form, "name"),
        location=_text(form, "location"),
        tags=_text(form, "tags"),
        description=_text(form, "description"),
        cron=_text(form, "cron"),
        timezone=_text(form, "timezone"),
        schedule_inputs=_text(form, "schedule_inputs"),
        schedule_enabled=_checked(form, "schedule_enabled"),
        misfire=_text(form, "misfire") or "skip",
        interactive_enabled=_checked(form, "interactive_enabled"),
        input_schema=_text(form, "input_schema"),
        link_click=_checked(form, "link_click"),
        link_sharing=_checked(form, "link_sharing"),
        groups=_text(form, "groups"),
        retry_interrupted=_text(form, "retry_interrupted") or "0",
    )


def _render_settings(
    request: Request, view: SettingsView, *, status_code: int = 200
) -> Response:
    return render(
        request,
        "editor/settings.html",
        {"nav": "flows", "settings": view, "bundle": bundle_url("settings")},
        status_code=status_code,
    )


# Versions


@router.get("/flows/{flow_id}/versions")
def versions_page(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        flow = get_flow(session, flow_id)
        history = version_history(session, flow_id)
    return render(
        request,
        "editor/versions.html",
        {"nav": "flows", "flow": flow, "history": history},
    )


@router.get("/flows/{flow_id}/versions/{number}")
def version_page(
    request: Request,
    flow_id: str,
    number: int,
    viewer: Viewer = Depends(require(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.reading() as session:
        flow = get_flow(session, flow_id)
        version = get_version(session, flow_id, number)
        current = current_version(session, flow_id)
    return render(
        request,
        "editor/version.html",
        {
            "nav": "flows",
            "flow": flow,
            "old": version,
            "current": current,
            "diff": diff_sources(version.source, current.source),
        },
    )


@router.post("/flows/{flow_id}/versions/{number}/restore")
def restore(
    request: Request,
    flow_id: str,
    number: int,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.transaction() as session:
        outcome = restore_version(session, flow_id, number, _author(viewer))
    _wake_scheduler(request)
    note = (
        "unchanged=1"
        if outcome.change == "unchanged"
        else f"restored={outcome.version}"
    )
    return RedirectResponse(f"{flow_url(flow_id)}?{note}", status_code=303)


# Test runs


@router.get("/flows/{flow_id}/test-run")
def test_run_form(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        page = open_test_run(session, flow_id)
    return _render_test_run(request, page)


@router.post("/flows/{flow_id}/test-run")
def test_run_start(
    request: Request,
    flow_id: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: FormData = Depends(posted_form),
) -> Response:
    params = [
        (name, value) for name, value in form.multi_items() if isinstance(value, str)
    ]
    page = start_test_run(system_of(request), flow_id, params, viewer.user)
    if page.run is not None:
        return RedirectResponse(f"/runs/{quote(page.run.id)}", status_code=303)
    return _render_test_run(request, page)


def _render_test_run(request: Request, page: TestRunPage) -> Response:
    return render(
        request,
        "editor/test_run.html",
        {"nav": "flows", "page": page, "form": page.form},
        status_code=page.status_code,
    )


# Deleting


@router.get("/flows/{flow_id}/delete")
def delete_page(
    request: Request, flow_id: str, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    with system_of(request).db.reading() as session:
        flow = get_flow(session, flow_id)
        runs = run_count(session, flow_id)
    return render(
        request, "editor/delete.html", {"nav": "flows", "flow": flow, "runs": runs}
    )


@router.post("/flows/{flow_id}/delete")
def delete(
    request: Request,
    flow_id: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.transaction() as session:
        delete_flow(session, flow_id)
    _wake_scheduler(request)
    return RedirectResponse(f"/flows?deleted={quote(flow_id)}", status_code=303)
