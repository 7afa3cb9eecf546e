"""The administrators' pages: users (create, scopes, groups, disable, a new
password), groups, and API tokens (made with scopes, shown once, revoked).
Every page needs the admin scope; the rules live in `flowdesk.auth`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from flowdesk.auth.scopes import ADMIN, ALL_SCOPES, SCOPE_NAMES
from flowdesk.auth.tokens import create_token, list_tokens, revoke_token
from flowdesk.auth.users import (
    create_group,
    create_user,
    disable_user,
    enable_user,
    get_user,
    list_groups,
    list_users,
    reset_password,
    set_groups,
    set_scopes,
)
from flowdesk.db.models import User
from flowdesk.errors import FlowdeskError, NotFound
from flowdesk.web.auth import Viewer, csrf_protected, require, system_of
from flowdesk.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

USERS = "/admin/users"
GROUPS = "/admin/groups"
TOKENS = "/admin/tokens"

# What a redirect after a change says. Only these fixed sentences can appear,
# so a crafted link cannot put words on an administrator's page.
USER_NOTICES = {
    "created": "The user was created.",
    "scopes": "The scopes were saved. They apply from the user's next request.",
    "groups": "The groups were saved.",
    "password": "The password was changed; the user's sessions have ended.",
    "disabled": "The user was disabled; their sessions and API tokens stopped.",
    "enabled": "The user was enabled and can sign in again.",
}
GROUP_NOTICES = {"created": "The group was created."}
TOKEN_NOTICES = {"revoked": "The token was revoked; it is refused from now on."}

UserChange = Callable[[Session, User], object]


@dataclass(frozen=True)
class NewUserForm:
    """The New user form as typed; the password never comes back."""

    username: str = ""
    scopes: Sequence[str] = ("flow:run",)
    groups: str = ""


@dataclass(frozen=True)
class NewTokenForm:
    name: str = ""
    username: str = ""
    scopes: Sequence[str] = ("flow:run",)


def split_groups(text: str) -> list[str]:
    """Groups typed as one line: `finance, sales`."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _scope_choices(chosen: Sequence[str]) -> list[dict[str, object]]:
    return [
        {"value": scope, "label": SCOPE_NAMES[scope], "checked": scope in chosen}
        for scope in ALL_SCOPES
    ]


# Users


@router.get("/users")
def users_page(request: Request, viewer: Viewer = Depends(require(ADMIN))) -> Response:
    return _users_page(request)


@router.post("/users")
def new_user(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    scope: list[str] = Form([]),
    groups: str = Form(""),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    username = username.strip()
    try:
        with system_of(request).db.transaction() as session:
            create_user(session, username, password, scope, split_groups(groups))
    except FlowdeskError as error:
        typed = NewUserForm(username, scope, groups)
        return _users_page(request, error=error.message, typed=typed, status=422)
    return RedirectResponse(_user_url(username, "created"), status_code=303)


def _users_page(
    request: Request,
    *,
    error: str | None = None,
    typed: NewUserForm | None = None,
    status: int = 200,
) -> Response:
    with system_of(request).db.reading() as session:
        users = list_users(session)
    typed = typed or NewUserForm()
    return render(
        request,
        "admin/users.html",
        {
            "nav": "users",
            "users": users,
            "error": error,
            "typed": typed,
            "scope_choices": _scope_choices(typed.scopes),
        },
        status_code=status,
    )


@router.get("/users/{username}")
def user_page(
    request: Request,
    username: str,
    done: str = "",
    viewer: Viewer = Depends(require(ADMIN)),
) -> Response:
    return _user_page(request, username, notice=USER_NOTICES.get(done))


@router.post("/users/{username}/scopes")
def save_scopes(
    request: Request,
    username: str,
    scope: list[str] = Form([]),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    return _change_user(
        request,
        username,
        lambda session, user: set_scopes(session, user, scope, actor=viewer.user),
        "scopes",
    )


@router.post("/users/{username}/groups")
def save_groups(
    request: Request,
    username: str,
    groups: str = Form(""),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    names = split_groups(groups)
    return _change_user(
        request,
        username,
        lambda session, user: set_groups(session, user, names),
        "groups",
    )


@router.post("/users/{username}/password")
def save_password(
    request: Request,
    username: str,
    password: str = Form(""),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    return _change_user(
        request,
        username,
        lambda session, user: reset_password(session, user, password),
        "password",
    )


@router.post("/users/{username}/disable")
def disable(
    request: Request, username: str, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    return _change_user(
        request,
        username,
        lambda session, user: disable_user(session, user, actor=viewer.user),
        "disabled",
    )


@router.post("/users/{username}/enable")
def enable(
    request: Request, username: str, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    return _change_user(request, username, enable_user, "enabled")


def _change_user(
    request: Request, username: str, change: UserChange, done: str
) -> Response:
    """Apply one change to a user and go back to their page, which shows the
    reason instead when the change is refused."""
    try:
        with system_of(request).db.transaction() as session:
            change(session, get_user(session, username))
    except NotFound:
        raise
    except FlowdeskError as error:
        return _user_page(request, username, error=error.message, status=422)
    return RedirectResponse(_user_url(username, done), status_code=303)


def _user_url(username: str, done: str) -> str:
    return f"{USERS}/{quote(username, safe='')}?done={done}"


def _user_page(
    request: Request,
    username: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    with system_of(request).db.reading() as session:
        user = get_user(session, username)
    return render(
        request,
        "admin/user.html",
        {
            "nav": "users",
            "user": user,
            "groups": ", ".join(sorted(user.group_names)),
            "scope_choices": _scope_choices(user.scopes),
            "notice": notice,
            "error": error,
        },
        status_code=status,
    )


# Groups


@router.get("/groups")
def groups_page(
    request: Request, done: str = "", viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    return _groups_page(request, notice=GROUP_NOTICES.get(done))


@router.post("/groups")
def new_group(
    request: Request,
    name: str = Form(""),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    try:
        with system_of(request).db.transaction() as session:
            create_group(session, name)
    except FlowdeskError as error:
        return _groups_page(request, error=error.message, name=name, status=422)
    return RedirectResponse(f"{GROUPS}?done=created", status_code=303)


def _groups_page(
    request: Request,
    *,
    notice: str | None = None,
    error: str | None = None,
    name: str = "",
    status: int = 200,
) -> Response:
    with system_of(request).db.reading() as session:
        groups = list_groups(session)
    return render(
        request,
        "admin/groups.html",
        {
            "nav": "groups",
            "groups": groups,
            "notice": notice,
            "error": error,
            "name": name,
        },
        status_code=status,
    )


# API tokens


@router.get("/tokens")
def tokens_page(
    request: Request, done: str = "", viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    return _tokens_page(request, notice=TOKEN_NOTICES.get(done))


@router.post("/tokens")
def new_token(
    request: Request,
    name: str = Form(""),
    username: str = Form(""),
    scope: list[str] = Form([]),
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
) -> Response:
    try:
        with system_of(request).db.transaction() as session:
            made = create_token(session, name, get_user(session, username), scope)
    except FlowdeskError as error:
        typed = NewTokenForm(name, username, scope)
        return _tokens_page(request, error=error.message, typed=typed, status=422)
    # The one time the token is shown: never stored, never cached.
    response = _tokens_page(request, secret=made.secret, status=201)
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke")
def revoke(
    request: Request, token_id: int, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    with system_of(request).db.transaction() as session:
        revoke_token(session, token_id)
    return RedirectResponse(f"{TOKENS}?done=revoked", status_code=303)


def _tokens_page(
    request: Request,
    *,
    notice: str | None = None,
    error: str | None = None,
    typed: NewTokenForm | None = None,
    secret: str | None = None,
    status: int = 200,
) -> Response:
    with system_of(request).db.reading() as session:
        tokens = list_tokens(session)
        users = list_users(session)
    typed = typed or NewTokenForm()
    return render(
        request,
        "admin/tokens.html",
        {
            "nav": "tokens",
            "tokens": tokens,
            "users": users,
            "notice": notice,
            "error": error,
            "typed": typed,
            "secret": secret,
            "scope_choices": _scope_choices(typed.scopes),
        },
        status_code=status,
    )
