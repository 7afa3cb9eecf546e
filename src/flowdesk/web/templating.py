"""The Jinja2 environment of the pages (autoescaped) and the render helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from flowdesk import __version__
from flowdesk.formatting import format_duration, format_time
from flowdesk.web.auth import viewer_of

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals["version"] = __version__


templates.env.filters["time"] = format_time
templates.env.filters["duration"] = format_duration


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    viewer = viewer_of(request)
    page: dict[str, Any] = {
        "viewer": viewer,
        "csrf_token": viewer.csrf_token if viewer else "",
    }
    page.update(context or {})
    return templates.TemplateResponse(request, template, page, status_code=status_code)
