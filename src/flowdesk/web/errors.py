"""The one place where domain exceptions become HTTP answers: a friendly page
for browsers, JSON for the API, never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from flowdesk.errors import FlowdeskError, InputError, NotSignedIn, PermissionDenied
from flowdesk.web.templating import render

logger = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid data",
    429: "Too many attempts",
    500: "Something went wrong",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def error_response(
    request: Request, status: int, message: str, **extra: object
) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message, **extra}, status_code=status)
    return render(
        request,
        "error.html",
        {"status": status, "title": TITLES.get(status, "Error"), "message": message},
        status_code=status,
    )


async def _flowdesk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FlowdeskError)
    if isinstance(exc, NotSignedIn):
        if wants_json(request):
            # The API takes tokens: say which kind (RFC 6750).
            return JSONResponse(
                {"error": exc.message},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        return login_redirect(request)
    extra: dict[str, object] = {}
    if isinstance(exc, PermissionDenied):
        extra["missing_scope"] = exc.scope
    if isinstance(exc, InputError):
        extra["fields"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    return error_response(request, exc.http_status, exc.message, **extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: "There is nothing at this address. Check the link, or start from the "
        "list of flows.",
        405: "This address does not accept that kind of request.",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    response = error_response(request, exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in error.get('loc', ())[1:]) or 'request'}: "
        f"{error.get('msg')}"
        for error in exc.errors()
    ]
    return error_response(
        request, 400, "The request is not valid: " + "; ".join(problems)
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    return error_response(
        request,
        500,
        "flowdesk hit an unexpected problem. It has been logged; try again, and "
        "tell your administrator if it keeps happening.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlowdeskError, _flowdesk_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
