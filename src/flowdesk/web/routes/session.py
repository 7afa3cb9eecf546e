"""Signing in and out, the front door, and the health check."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from starlette.datastructures import FormData

from flowdesk.auth.passwords import MAX_PASSWORD_LENGTH
from flowdesk.auth.sessions import close_session
from flowdesk.auth.signin import Throttle, sign_in
from flowdesk.auth.signin_form import (
    FORM_LIFETIME,
    MAX_TOKEN_CHARS,
    form_token_for,
    form_token_valid,
)
from flowdesk.settings import Settings
from flowdesk.web.auth import (
    SESSION_COOKIE,
    Viewer,
    check_origin,
    csrf_protected,
    system_of,
    viewer_of,
)
from flowdesk.web.limits import small_form, text_field
from flowdesk.web.templating import render

logger = logging.getLogger(__name__)
router = APIRouter()

HOME = "/interactive-flows"
# The sign-in form's pre-session token: the cookie and the hidden field.
SIGN_IN_COOKIE = "flowdesk_sign_in"
SIGN_IN_FIELD = "_sign_in"
FORM_EXPIRED = (
    "The sign-in form expired or came from another site; please sign in again."
)


# Longer is no link flowdesk made; a page address fits easily.
MAX_NEXT_CHARS = 4000
# A user name as typed into the sign-in form; no user's is longer than 100,
# but a longer one is only a wrong name, answered as such.
MAX_TYPED_NAME_CHARS = 1000
# How much of it comes back into the form after a failed sign-in.
ECHOED_NAME_CHARS = 200
# How often a `next` path is percent-decoded while checking it: proxies and
# browsers disagree on which encoded spellings they turn into another host.
DECODING_ROUNDS = 3


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else the home page."""
    if not target or len(target) > MAX_NEXT_CHARS or not _is_local(target):
        return HOME
    path = urlsplit(target).path
    for _round in range(DECODING_ROUNDS):
        decoded = unquote(path)
        if decoded == path:
            break
        if not _is_local(decoded):
            return HOME
        path = decoded
    return target


def _is_local(target: str) -> bool:
    """Whether no browser can read `target` as an address on another host:
    it starts with one slash and has no backslash (read as a slash) and no
    control character (tabs and newlines are dropped from URLs)."""
    if not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:
        return False
    return not parts.scheme and not parts.netloc


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/healthz", include_in_schema=False)
def health(request: Request) -> JSONResponse:
    with system_of(request).db.reading() as session:
        session.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok"})


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    if viewer_of(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return sign_in_page(request, {"next": safe_next(next), "username": ""})


@router.post("/login", include_in_schema=False)
def login(request: Request, form: FormData = Depends(small_form())) -> Response:
    # A foreign Origin or Referer gives a forged sign-in away at once; the
    # form's pre-session token catches the rest, such as a POST without both.
    check_origin(request)
    username = text_field(form, "username", MAX_TYPED_NAME_CHARS)
    password = text_field(form, "password", MAX_PASSWORD_LENGTH)
    next = text_field(form, "next", MAX_NEXT_CHARS, default=HOME)
    if not _form_token_sent(request, form):
        logger.info(
            "sign-in from %s refused: the form token is missing or expired",
            client_address(request),
        )
        context = {
            "next": safe_next(next),
            "username": username[:ECHOED_NAME_CHARS],
            "error": FORM_EXPIRED,
        }
        return sign_in_page(request, context, status_code=403)

    system = system_of(request)
    settings = system.settings
    lifetime = timedelta(hours=settings.session_hours)
    with system.db.transaction() as session:
        outcome = sign_in(
            session,
            username.strip(),
            password,
            client_address(request),
            throttle=throttle_of(settings),
            lifetime=lifetime,
            old_token=request.cookies.get(SESSION_COOKIE),
        )

    if outcome.session is None:
        return _login_again(request, username, next, outcome.retry_after)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, outcome.session.token, lifetime)
    response.delete_cookie(SIGN_IN_COOKIE, path="/login")
    return response


def sign_in_page(
    request: Request, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    """The sign-in form with its pre-session token: the field in the page, its
    cookie on the response (the browser's own while it is fresh enough)."""
    token = form_token_for(_secret_key(request), request.cookies.get(SIGN_IN_COOKIE))
    page = {**context, "sign_in_field": SIGN_IN_FIELD, "sign_in_token": token.field}
    response = render(request, "login.html", page, status_code=status_code)
    response.set_cookie(
        SIGN_IN_COOKIE,
        token.cookie,
        max_age=int(FORM_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
        path="/login",
    )
    return response


def set_session_cookie(
    request: Request, response: Response, token: str, lifetime: timedelta
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
        path="/",
    )


def _form_token_sent(request: Request, form: FormData) -> bool:
    field = text_field(form, SIGN_IN_FIELD, MAX_TOKEN_CHARS)
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    return form_token_valid(_secret_key(request), cookie, field)


def _secret_key(request: Request) -> str:
    return system_of(request).settings.resolved_secret_key()


def throttle_of(settings: Settings) -> Throttle:
    return Throttle(
        account_failures=settings.sign_in_account_failures,
        address_failures=settings.sign_in_address_failures,
        window=timedelta(minutes=settings.sign_in_window_minutes),
    )


def wait_advice(retry_after: int) -> str:
    """How long a throttled user waits, in whole minutes, as a sentence."""
    minutes = max(1, round(retry_after / 60))
    return f"Wait {minutes} minute{'s' if minutes != 1 else ''} and try again."


def _login_again(
    request: Request, username: str, next: str, retry_after: int | None
) -> Response:
    """The sign-in form once more, after wrong credentials or while throttled."""
    context = {"next": safe_next(next), "username": username[:ECHOED_NAME_CHARS]}
    if retry_after is None:
        context["error"] = "The user name or password is not right."
        return sign_in_page(request, context, status_code=401)

    context["error"] = f"Too many failed sign-ins. {wait_advice(retry_after)}"
    response = sign_in_page(request, context, status_code=429)
    response.headers["retry-after"] = str(retry_after)
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, viewer: Viewer = Depends(csrf_protected(None))
) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    with system_of(request).db.transaction() as session:
        close_session(session, token)
    logger.info("user %s signed out", viewer.user.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
    )
    return response


def _over_https(request: Request) -> bool:
    # Behind a TLS-terminating proxy that does not forward the scheme, the
    # request looks like http; FLOWDESK_BASE_URL still tells the truth.
    return (
        request.url.scheme == "https" or system_of(request).settings.served_over_https
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"
