"""The administrators' pages: users (create, scopes, groups, disable, a new
password, delete), groups (create, delete), and API tokens (made with scopes
and an expiry, shown once, revoked). Every page needs the admin scope; the
rules live in `flowdesk.auth`. Deleting asks for confirmation on a page of its
own, so that it works without JavaScript."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from flowdesk.auth.passwords import MAX_PASSWORD_LENGTH
from flowdesk.auth.scopes import ADMIN, ALL_SCOPES, SCOPE_NAMES
from flowdesk.auth.tokens import (
    MAX_NAME_CHARS,
    create_token,
    expiry_in,
    list_tokens,
    revoke_token,
    token_state,
)
from flowdesk.auth.users import (
    create_group,
    create_user,
    delete_group,
    delete_user,
    disable_user,
    enable_user,
    flows_limited_to,
    get_group,
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
from flowdesk.web.limits import small_form, text_field, text_fields
from flowdesk.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)

USERS = "/admin/users"
GROUPS = "/admin/groups"
TOKENS = "/admin/tokens"

# Longest texts the forms take: a user or group name, a line of groups.
NAME_CHARS = 100
GROUPS_CHARS = 10_000
SCOPE_CHARS = 20
# The lifetimes offered for a new token, in days; "" is never.
EXPIRY_CHOICES = (
    ("", "Never"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
)

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
USERS_NOTICES = {
    "deleted": "The user was deleted. Their runs remain, started by a deleted user.",
}
GROUP_NOTICES = {
    "created": "The group was created.",
    "deleted": "The group was deleted and its members taken out of it.",
}
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
    expires_in: str = "90"


def _scopes_of(form: FormData) -> list[str]:
    return text_fields(form, "scope", SCOPE_CHARS, max_values=len(ALL_SCOPES))


def _days(text: str) -> int | None:
    """The expiry choice of the token form as days; "" is never."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise FlowdeskError(
            f"The expiry must be a whole number of days, or never; got {text!r}."
        )
    return int(text)


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
def users_page(
    request: Request, done: str = "", viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    return _users_page(request, notice=USERS_NOTICES.get(done))


@router.post("/users")
def new_user(
    request: Request,
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    username = text_field(form, "username", NAME_CHARS).strip()
    password = text_field(form, "password", MAX_PASSWORD_LENGTH)
    scope = _scopes_of(form)
    groups = text_field(form, "groups", GROUPS_CHARS)
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
    notice: str | None = None,
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
            "notice": notice,
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
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    scope = _scopes_of(form)
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
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    names = split_groups(text_field(form, "groups", GROUPS_CHARS))
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
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    password = text_field(form, "password", MAX_PASSWORD_LENGTH)
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


@router.get("/users/{username}/delete")
def confirm_user_deletion(
    request: Request, username: str, viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    return _user_deletion_page(request, username)


@router.post("/users/{username}/delete")
def remove_user(
    request: Request, username: str, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    try:
        with system_of(request).db.transaction() as session:
            delete_user(session, get_user(session, username), actor=viewer.user)
    except NotFound:
        raise
    except FlowdeskError as error:
        return _user_deletion_page(request, username, error=error.message, status=409)
    return RedirectResponse(f"{USERS}?done=deleted", status_code=303)


def _user_deletion_page(
    request: Request, username: str, *, error: str | None = None, status: int = 200
) -> Response:
    with system_of(request).db.reading() as session:
        user = get_user(session, username)
    return render(
        request,
        "admin/user_delete.html",
        {"nav": "users", "user": user, "error": error},
        status_code=status,
    )


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
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    name = text_field(form, "name", NAME_CHARS)
    try:
        with system_of(request).db.transaction() as session:
            create_group(session, name)
    except FlowdeskError as error:
        return _groups_page(request, error=error.message, name=name, status=422)
    return RedirectResponse(f"{GROUPS}?done=created", status_code=303)


@router.get("/groups/{group}/delete")
def confirm_group_deletion(
    request: Request, group: str, viewer: Viewer = Depends(require(ADMIN))
) -> Response:
    with system_of(request).db.reading() as session:
        found = get_group(session, group)
        members = dict(list_groups(session))[found]
        flows = flows_limited_to(session, found.name)
    return render(
        request,
        "admin/group_delete.html",
        {"nav": "groups", "group": found, "members": members, "flows": flows},
    )


@router.post("/groups/{group}/delete")
def remove_group(
    request: Request, group: str, viewer: Viewer = Depends(csrf_protected(ADMIN))
) -> Response:
    with system_of(request).db.transaction() as session:
        delete_group(session, get_group(session, group))
    return RedirectResponse(f"{GROUPS}?done=deleted", status_code=303)


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
    viewer: Viewer = Depends(csrf_protected(ADMIN)),
    form: FormData = Depends(small_form()),
) -> Response:
    name = text_field(form, "name", MAX_NAME_CHARS)
    username = text_field(form, "username", NAME_CHARS)
    scope = _scopes_of(form)
    expires_in = text_field(form, "expires_in", 10)
    try:
        expires_at = expiry_in(_days(expires_in))
        with system_of(request).db.transaction() as session:
            owner = get_user(session, username)
            made = create_token(session, name, owner, scope, expires_at)
    except FlowdeskError as error:
        typed = NewTokenForm(name, username, scope, expires_in)
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
        tokens = [(token, token_state(token)) for token in list_tokens(session)]
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
            "expiry_choices": EXPIRY_CHOICES,
        },
        status_code=status,
    )
