"""The signed-in user's own account: who they are, their scopes and groups,
and a change of their own password."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from flowdesk.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from flowdesk.auth.scopes import SCOPE_NAMES
from flowdesk.auth.signin import change_password
from flowdesk.auth.users import get_user
from flowdesk.errors import FlowdeskError
from flowdesk.web.auth import Viewer, csrf_protected, signed_in, system_of
from flowdesk.web.limits import small_form, text_field
from flowdesk.web.routes.session import (
    client_address,
    set_session_cookie,
    throttle_of,
    wait_advice,
)
from flowdesk.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE = "/account"
NOTICES = {"password": "Your password was changed; your other sessions have ended."}


@router.get(PAGE)
def account_page(
    request: Request, done: str = "", viewer: Viewer = Depends(signed_in)
) -> Response:
    return _page(request, viewer, notice=NOTICES.get(done))


@router.post(PAGE + "/password")
def password_form(
    request: Request,
    viewer: Viewer = Depends(csrf_protected(None)),
    form: FormData = Depends(small_form()),
) -> Response:
    current = text_field(form, "current_password", MAX_PASSWORD_LENGTH)
    new = text_field(form, "new_password", MAX_PASSWORD_LENGTH)
    repeated = text_field(form, "repeated_password", MAX_PASSWORD_LENGTH)
    system = system_of(request)
    lifetime = timedelta(hours=system.settings.session_hours)
    try:
        with system.db.transaction() as session:
            outcome = change_password(
                session,
                get_user(session, viewer.user.username),
                current,
                new,
                repeated,
                client_address(request),
                throttle=throttle_of(system.settings),
                lifetime=lifetime,
            )
    except FlowdeskError as error:
        return _page(request, viewer, error=error.message, status=422)

    if outcome.retry_after is not None:
        message = f"Too many wrong passwords. {wait_advice(outcome.retry_after)}"
        response = _page(request, viewer, error=message, status=429)
        response.headers["retry-after"] = str(outcome.retry_after)
        return response
    if outcome.session is None:
        message = "The current password is not right."
        return _page(request, viewer, error=message, status=422)

    response = RedirectResponse(f"{PAGE}?done=password", status_code=303)
    set_session_cookie(request, response, outcome.session.token, lifetime)
    return response


def _page(
    request: Request,
    viewer: Viewer,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    user = viewer.user
    return render(
        request,
        "account.html",
        {
            "nav": "account",
            "user": user,
            "scopes": [(scope, SCOPE_NAMES.get(scope, scope)) for scope in user.scopes],
            "groups": sorted(user.group_names),
            "min_password_length": MIN_PASSWORD_LENGTH,
            "notice": notice,
            "error": error,
        },
        status_code=status,
    )
