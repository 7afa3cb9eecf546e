"""Who is asking: the signed-in user behind a request (a browser session, or an
API token on /api/), scope checks, and the CSRF checks of state changes."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from flowdesk.auth.sessions import resolve_session
from flowdesk.auth.tokens import mark_used, resolve_token
from flowdesk.db.models import User
from flowdesk.errors import FlowdeskError, NotSignedIn, PermissionDenied
from flowdesk.system import System
from flowdesk.web.limits import read_form

SESSION_COOKIE = "flowdesk_session"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
# Bearer tokens are for the JSON API; pages only know browser sessions.
API_PREFIX = "/api/"

# Any of these opens run pages: a flow user sees the runs they started,
# developers and administrators every run (`Viewer.may_see_run`).
RUN_SCOPES = ("flow:run", "flow:edit", "admin")


@dataclass(frozen=True)
class Viewer:
    user: User
    csrf_token: str
    # The scopes this request may use: None for a browser session (the user's
    # own), the token's, cut to its owner's, for an API token.
    token_scopes: frozenset[str] | None = None
    token_id: int | None = None

    @property
    def by_token(self) -> bool:
        return self.token_id is not None

    def has(self, scope: str) -> bool:
        if self.token_scopes is not None:
            return scope in self.token_scopes
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
    """The signed-in viewer, resolved once per request. On the API an
    Authorization header, when sent, is the only credential looked at."""
    if hasattr(request.state, "viewer"):
        return request.state.viewer  # type: ignore[no-any-return]
    authorization = request.headers.get("authorization")
    if authorization is not None and request.url.path.startswith(API_PREFIX):
        viewer = _token_viewer(request, authorization)
    else:
        viewer = _session_viewer(request)
    request.state.viewer = viewer
    return viewer


def _session_viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    # A plain connection: the lookup is one Core select for every request,
    # and a session's own bookkeeping would cost about as much again.
    with system_of(request).db.read_connection() as connection:
        web_session = resolve_session(connection, token)
    if web_session is None:
        return None
    return Viewer(web_session.user, web_session.csrf_token)


def _token_viewer(request: Request, authorization: str) -> Viewer | None:
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    system = system_of(request)
    with system.db.reading() as session:
        use = resolve_token(session, secret.strip())
        if use is None:
            return None
        _ = use.user.groups
    if use.stale:
        with system.db.transaction() as session:
            mark_used(session, use.token_id)
    return Viewer(use.user, "", token_scopes=use.scopes, token_id=use.token_id)


def signed_in(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if viewer is None:
        raise NotSignedIn()
    return viewer


def require(scope: str, *alternatives: str) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency: the viewer, who must be signed in and hold `scope` or one
    of the alternatives; a refusal names `scope`."""
    check = _scope_check(scope, *alternatives)

    # Async, so that FastAPI calls it on the event loop, as `csrf_protected`:
    # the session lookup is one indexed read, less than the hand-over to a
    # worker thread and back that a plain function would cost every page.
    async def dependency(request: Request) -> Viewer:
        return check(request)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def _scope_check(scope: str, *alternatives: str) -> Callable[[Request], Viewer]:
    accepted = (scope, *alternatives)

    def check(request: Request) -> Viewer:
        viewer = signed_in(request)
        if not any(viewer.has(name) for name in accepted):
            raise PermissionDenied(scope)
        return viewer

    return check


def check_origin(request: Request) -> None:
    """Refuse a state-changing request sent from another site: a foreign
    Origin, `Origin: null`, or without Origin a foreign Referer."""
    origin = request.headers.get("origin")
    if origin is not None:
        # "null" is what a sandboxed frame (such as a run's HTML result) sends.
        if origin == "null" or not _from_this_site(request, origin):
            raise _foreign_request()
        return
    referer = request.headers.get("referer")
    if referer is not None and not _from_this_site(request, referer):
        raise _foreign_request()


def _from_this_site(request: Request, address: str) -> bool:
    try:
        netloc = urlsplit(address).netloc.lower()
    except ValueError:
        return False
    if not netloc:
        return False
    ours = {request.url.netloc.lower()}
    base_url = system_of(request).settings.base_url
    if base_url:
        ours.add(urlsplit(base_url).netloc.lower())
    return netloc in ours


def _foreign_request() -> CsrfRefused:
    return CsrfRefused(
        "This request came from another site and was refused. "
        "Go back, reload the page and try again."
    )


def _posts_a_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").lower()
    return content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )


def csrf_protected(
    scope: str | None, *alternatives: str
) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency for state changes: `require(scope, ...)` plus the CSRF
    token of the session and a same-site origin; with no scope, any signed-in
    user may send the form. API tokens need neither: a browser never attaches
    them on its own, so another site cannot make it send one."""
    needs_scope = _scope_check(scope, *alternatives) if scope else signed_in

    async def dependency(request: Request) -> Viewer:
        viewer = needs_scope(request)
        if viewer.by_token:
            return viewer
        check_origin(request)
        # Read here, first, so that the handler's form is the one read within
        # the limits (Starlette keeps the first reading of a request's form).
        form = await read_form(request) if _posts_a_form(request) else None
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and form is not None:
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not secrets.compare_digest(
            sent.encode(), viewer.csrf_token.encode()
        ):
            raise CsrfRefused(
                "This form has expired or did not come from this site. "
                "Reload the page and try again."
            )
        return viewer

    return dependency
