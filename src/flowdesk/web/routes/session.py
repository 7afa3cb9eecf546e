"""Signing in and out, the front door, and the health check."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from flowdesk.auth.sessions import close_session, open_session
from flowdesk.auth.users import authenticate
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


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else the home page."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return HOME
    if "\\" in target or any(ord(char) < 32 for char in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


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
    check_origin(request)
    system = system_of(request)
    lifetime = timedelta(hours=system.settings.session_hours)
    with system.db.transaction() as session:
        user = authenticate(session, username.strip(), password)
        new_session = open_session(session, user, lifetime) if user else None

    if new_session is None:
        logger.info("failed sign-in for %r from %s", username[:100], _client(request))
        return render(
            request,
            "login.html",
            {
                "next": safe_next(next),
                "username": username,
                "error": "The user name or password is not right.",
            },
            status_code=401,
        )

    logger.info("user %s signed in from %s", username, _client(request))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new_session.token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, viewer: Viewer = Depends(csrf_protected("flow:run"))
) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    with system_of(request).db.transaction() as session:
        close_session(session, token)
    logger.info("user %s signed out", viewer.user.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"
