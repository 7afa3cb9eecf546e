"""Signing in and out, the front door, and the health check."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from flowdesk.auth.sessions import close_session
from flowdesk.auth.signin import Throttle, sign_in
from flowdesk.settings import Settings
from flowdesk.web.auth import (
    SESSION_COOKIE,
    Viewer,
    check_origin,
    csrf_protected,
    system_of,
    viewer_of,
)
from flowdesk.web.templating import render

logger = logging.getLogger(__name__)
router = APIRouter()

HOME = "/interactive-flows"


# Longer is no link flowdesk made; a page address fits easily.
MAX_NEXT_CHARS = 4000
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
    return render(request, "login.html", {"next": safe_next(next), "username": ""})


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form(HOME),
) -> Response:
    # The login form has no session to tie a token to; a foreign Origin or
    # Referer is what gives a forged sign-in away.
    check_origin(request)
    system = system_of(request)
    settings = system.settings
    lifetime = timedelta(hours=settings.session_hours)
    with system.db.transaction() as session:
        outcome = sign_in(
            session,
            username.strip(),
            password,
            _client(request),
            throttle=throttle_of(settings),
            lifetime=lifetime,
            old_token=request.cookies.get(SESSION_COOKIE),
        )

    if outcome.session is None:
        return _login_again(request, username, next, outcome.retry_after)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.session.token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
        path="/",
    )
    return response


def throttle_of(settings: Settings) -> Throttle:
    return Throttle(
        account_failures=settings.sign_in_account_failures,
        address_failures=settings.sign_in_address_failures,
        window=timedelta(minutes=settings.sign_in_window_minutes),
    )


def _login_again(
    request: Request, username: str, next: str, retry_after: int | None
) -> Response:
    """The sign-in form once more, after wrong credentials or while throttled."""
    context = {"next": safe_next(next), "username": username[:200]}
    if retry_after is None:
        context["error"] = "The user name or password is not right."
        return render(request, "login.html", context, status_code=401)

    minutes = max(1, round(retry_after / 60))
    context["error"] = (
        f"Too many failed sign-ins. Wait {minutes} "
        f"minute{'s' if minutes != 1 else ''} and try again."
    )
    response = render(request, "login.html", context, status_code=429)
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


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"
