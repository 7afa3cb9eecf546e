"""Who is asking: the signed-in user behind a request, scope checks, and the
CSRF check of page forms."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from flowdesk.auth.sessions import resolve_session
from flowdesk.db.models import User
from flowdesk.errors import FlowdeskError, NotSignedIn, PermissionDenied
from flowdesk.system import System

SESSION_COOKIE = "flowdesk_session"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Viewer:
    user: User
    csrf_token: str

    def has(self, scope: str) -> bool:
        return scope in self.user.scopes

    @property
    def sees_all_runs(self) -> bool:
        return self.has("flow:edit") or self.has("admin")

    def may_see_run(self, run_user_id: int | None) -> bool:
        """A run is shown to whoever started it, developers and admins."""
        return self.sees_all_runs or run_user_id == self.user.id

    @property
    def groups(self) -> set[str] | None:
        """The groups the viewer is in, or None when the viewer sees every
        flow regardless of groups (developers and administrators)."""
        if self.has("flow:edit") or self.has("admin"):
            return None
        return self.user.group_names


class CsrfRefused(FlowdeskError):
    http_status = 403


def system_of(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def viewer_of(request: Request) -> Viewer | None:
    """The signed-in viewer, resolved once per request."""
    if hasattr(request.state, "viewer"):
        return request.state.viewer  # type: ignore[no-any-return]
    viewer = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with system_of(request).db.reading() as session:
            web_session = resolve_session(session, token)
            if web_session is not None:
                user = web_session.user
                _ = user.groups  # loaded now, read after the session closes
                viewer = Viewer(user, web_session.csrf_token)
    request.state.viewer = viewer
    return viewer


def require(scope: str) -> Callable[[Request], Viewer]:
    """A dependency: the viewer, who must be signed in and hold `scope`."""

    def dependency(request: Request) -> Viewer:
        viewer = viewer_of(request)
        if viewer is None:
            raise NotSignedIn()
        if not viewer.has(scope):
            raise PermissionDenied(scope)
        return viewer

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def signed_in(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if viewer is None:
        raise NotSignedIn()
    return viewer


def check_origin(request: Request) -> None:
    """Refuse a state-changing request sent from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    # "null" is what a sandboxed frame (such as a run's HTML result) sends.
    if origin == "null" or urlsplit(origin).netloc != request.url.netloc:
        raise CsrfRefused(
            "This request came from another site and was refused. "
            "Go back, reload the page and try again."
        )


def csrf_protected(scope: str) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency for page forms: `require(scope)` plus the CSRF token."""
    needs_scope = require(scope)

    async def dependency(request: Request) -> Viewer:
        viewer = needs_scope(request)
        check_origin(request)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not secrets.compare_digest(sent, viewer.csrf_token):
            raise CsrfRefused(
                "This form has expired or did not come from this site. "
                "Reload the page and try again."
            )
        return viewer

    return dependency
