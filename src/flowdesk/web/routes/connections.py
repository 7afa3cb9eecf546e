"""The flow developers' pages of connections: the list, New connection, editing
and deleting with confirmation. The same service as `flowdesk connections`
checks every change; credentials are named secrets, so no page ever holds a
credential's value."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from flowdesk.auth.scopes import FLOW_EDIT
from flowdesk.errors import InputError
from flowdesk.secrets.connections import (
    AUTH_CHOICES,
    AUTH_LABELS,
    DEFAULT_KEY_NAMES,
    ConnectionForm,
    connection_listing,
    create_connection,
    delete_connection,
    form_of,
    get_connection,
    update_connection,
)
from flowdesk.secrets.store import list_secrets
from flowdesk.web.auth import Viewer, csrf_protected, require, system_of
from flowdesk.web.limits import small_form, text_field
from flowdesk.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE = "/connections"
# Beyond any name or URL that can work, so that the service's messages (which
# name the real limits) answer mistakes, and only abuse gets a 413.
LONGEST_FIELD = 10_000
LONGEST_HEADERS = 100_000


def posted_connection(form: FormData = Depends(small_form())) -> ConnectionForm:
    """The posted form; its text area holds one header a line."""

    def text(name: str, default: str = "") -> str:
        return text_field(form, name, LONGEST_FIELD, default)

    return ConnectionForm(
        name=text("name"),
        base_url=text("base_url"),
        headers=tuple(text_field(form, "headers", LONGEST_HEADERS).splitlines()),
        auth=text("auth", "none"),
        secret=text("secret"),
        username=text("username"),
        location=text("location"),
        param_name=text("param_name"),
    )


# The list


@router.get(PAGE)
def connections_page(
    request: Request,
    saved: str | None = None,
    deleted: str | None = None,
    viewer: Viewer = Depends(require(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.reading() as session:
        connections = connection_listing(session)

    # Said only when true, so that a crafted link cannot announce anything.
    names = {connection.name for connection in connections}
    notice = None
    if saved in names:
        notice = f"The connection {saved} was saved."
    elif deleted and deleted not in names:
        notice = f"The connection {deleted} was deleted."
    return render(
        request,
        "connections/list.html",
        {"nav": "connections", "connections": connections, "notice": notice},
    )


# New connection


@router.get(PAGE + "/new")
def new_connection_page(
    request: Request, viewer: Viewer = Depends(require(FLOW_EDIT))
) -> Response:
    return _render_form(request, ConnectionForm(), editing=None)


@router.post(PAGE)
def add_connection(
    request: Request,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: ConnectionForm = Depends(posted_connection),
) -> Response:
    try:
        with system_of(request).db.transaction() as session:
            create_connection(session, form)
    except InputError as error:
        return _render_form(request, form, editing=None, error=error)
    return _saved(form.name.strip())


# Editing


@router.get(PAGE + "/{connection_name}/edit")
def edit_connection_page(
    request: Request,
    connection_name: str,
    viewer: Viewer = Depends(require(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.reading() as session:
        form = form_of(get_connection(session, connection_name))
    return _render_form(request, form, editing=connection_name)


@router.post(PAGE + "/{connection_name}/edit")
def save_connection(
    request: Request,
    connection_name: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
    form: ConnectionForm = Depends(posted_connection),
) -> Response:
    try:
        with system_of(request).db.transaction() as session:
            update_connection(session, connection_name, form)
    except InputError as error:
        return _render_form(request, form, editing=connection_name, error=error)
    return _saved(connection_name)


# Deleting


@router.get(PAGE + "/{connection_name}/delete")
def confirm_delete(
    request: Request,
    connection_name: str,
    viewer: Viewer = Depends(require(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.reading() as session:
        name = get_connection(session, connection_name).name
    return render(
        request, "connections/delete.html", {"nav": "connections", "name": name}
    )


@router.post(PAGE + "/{connection_name}/delete")
def remove_connection(
    request: Request,
    connection_name: str,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> Response:
    with system_of(request).db.transaction() as session:
        delete_connection(session, connection_name)
    return RedirectResponse(f"{PAGE}?deleted={quote(connection_name)}", status_code=303)


def _saved(name: str) -> Response:
    return RedirectResponse(f"{PAGE}?saved={quote(name)}", status_code=303)


def _render_form(
    request: Request,
    form: ConnectionForm,
    *,
    editing: str | None,
    error: InputError | None = None,
) -> Response:
    """The New connection page (`editing` None) or the edit page of the
    connection `editing`, with the typed values and each field's messages."""
    problems: dict[str, list[str]] = {}
    for field_error in error.errors if error else ():
        problems.setdefault(field_error.field, []).append(field_error.message)
    with system_of(request).db.reading() as session:
        secret_names = [secret.name for secret in list_secrets(session)]
    return render(
        request,
        "connections/form.html",
        {
            "nav": "connections",
            "form": form,
            "editing": editing,
            "problems": problems,
            "secret_names": secret_names,
            "auth_choices": [(kind, AUTH_LABELS[kind]) for kind in AUTH_CHOICES],
            "default_key_names": DEFAULT_KEY_NAMES,
        },
        status_code=422 if error else 200,
    )
