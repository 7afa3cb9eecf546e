"""The administrators' page of secrets: names and times, setting a value,
deleting with confirmation. A value goes in through a password field and is
never sent back."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from flowdesk.auth.scopes import ADMIN
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.secrets.store import (
    LONGEST_VALUE,
    delete_secret,
    list_secrets,
    secret_box,
    set_secret,
)
from flowdesk.web.auth import Viewer, csrf_protected, require, system_of
from flowdesk.web.limits import small_form, text_field
from flowdesk.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE = "/admin/secrets"
# A secret's name has at most 100 characters.
SECRET_NAME_CHARS = 100


@router.get(PAGE)
def secrets_page(
    request: Request,
    saved: str | None = None,
    deleted: str | None = None,
    viewer: Viewer = Depends(require(ADMIN)),
) -> Response:
    return _page(request, saved=saved, deleted=deleted)


@router.post(PAGE)
def save_secret(
    request: Request,
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    system = system_of(request)
    name = text_field(form, "name", SECRET_NAME_CHARS).strip()
    value = text_field(form, "value", LONGEST_VALUE)
    try:
        with system.db.transaction() as session:
            set_secret(session, secret_box(system.settings), name, value)
    except FlowdeskError as error:
        # The name comes back for correcting; the value never does.
        return _page(request, error=error.message, name=name, status_code=422)
    return RedirectResponse(f"{PAGE}?saved={quote(name)}", status_code=303)


@router.get(PAGE + "/{name}/delete")
def confirm_delete(
    request: Request, name: str, viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    with system_of(request).db.reading() as session:
        known = {secret.name for secret in list_secrets(session)}
    if name not in known:
        raise NotFound(f"There is no secret named {name!r}.")
    return render(request, "admin/secret_delete.html", {"name": name, "nav": "secrets"})


@router.post(PAGE + "/{name}/delete")
def remove_secret(
    request: Request, name: str, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    with system_of(request).db.transaction() as session:
        delete_secret(session, name)
    return RedirectResponse(f"{PAGE}?deleted={quote(name)}", status_code=303)


def _page(
    request: Request,
    *,
    saved: str | None = None,
    deleted: str | None = None,
    error: str | None = None,
    name: str = "",
    status_code: int = 200,
) -> Response:
    with system_of(request).db.reading() as session:
        secrets = list_secrets(session)

    # Said only when true, so that a crafted link cannot announce anything.
    names = {secret.name for secret in secrets}
    notice = None
    if saved in names:
        notice = f"The secret {saved} was saved."
    elif deleted and deleted not in names:
        notice = f"The secret {deleted} was deleted."
    return render(
        request,
        "admin/secrets.html",
        {
            "secrets": secrets,
            "notice": notice,
            "error": error,
            "name": name,
            "nav": "secrets",
        },
        status_code=status_code,
    )
