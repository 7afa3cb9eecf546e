"""JSON endpoints behind the editor's live checks: the flow definition as it is
typed, the Input Schema with a preview of its launch form, and a schedule's next
fire times. They only read; the pages' forms do the saving."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from markupsafe import Markup
from pydantic import BaseModel, Field

from flowdesk.auth.scopes import FLOW_EDIT
from flowdesk.errors import DefinitionError
from flowdesk.flows.editing import (
    check_source,
    outline_of,
    preview_input_schema,
    preview_schedule,
)
from flowdesk.flows.source import MAX_TEXT_CHARS
from flowdesk.web.auth import Viewer, csrf_protected
from flowdesk.web.templating import templates

router = APIRouter(include_in_schema=False)

FIRE_TIME_FORMAT = "%a %d %b %Y, %H:%M %Z"


class TypedText(BaseModel):
    text: str = Field(max_length=MAX_TEXT_CHARS)


class TypedSchedule(BaseModel):
    cron: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=100)


def macro_html(template: str, macro: str, *args: Any) -> str:
    """What one macro of a template renders, for swapping into a page."""
    rendered: Markup = getattr(templates.get_template(template).module, macro)(*args)
    return str(rendered)


@router.post("/flows/{flow_id}/validate")
def validate_definition(
    flow_id: str,
    body: TypedText,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> dict[str, Any]:
    """The problems of the editor's text, each at its line, and the outline of
    its steps when it is valid."""
    try:
        definition = check_source(body.text, flow_id)
    except DefinitionError as error:
        problems = [
            {"message": p.message, "line": p.line, "path": p.path}
            for p in error.problems
        ]
        return {"valid": False, "problems": problems, "outline_html": None}
    outline = outline_of(definition.steps)
    return {
        "valid": True,
        "problems": [],
        "outline_html": macro_html("editor/_outline.html", "render_outline", outline),
    }


@router.post("/flows/-/schema-preview")
def schema_preview(
    body: TypedText,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> dict[str, Any]:
    """Whether the typed Input Schema is valid JSON and a valid JSON Schema for
    a flow, and the launch form flow users would see for it."""
    preview = preview_input_schema(body.text)
    problems = [
        {
            "message": p.message,
            "line": p.line,
            "column": p.column,
            "path": p.path,
        }
        for p in preview.problems
    ]
    html = None
    if preview.form is not None:
        html = macro_html("_form_fields.html", "render_form", preview.form)
    return {"valid": not problems, "problems": problems, "preview_html": html}


@router.post("/flows/-/schedule-preview")
def schedule_preview(
    body: TypedSchedule,
    viewer: Viewer = Depends(csrf_protected(FLOW_EDIT)),
) -> dict[str, Any]:
    """The next fire times of the typed cron expression in its timezone."""
    preview = preview_schedule(body.cron, body.timezone)
    return {
        "problem": preview.problem,
        "times": [_fire_time(time) for time in preview.times],
    }


def _fire_time(time: datetime) -> dict[str, str]:
    return {"iso": time.isoformat(), "text": time.strftime(FIRE_TIME_FORMAT)}
