"""What the Interactive Flows pages do between parsing a request and rendering:
find a flow the viewer may launch, read a link or a form post into input data,
and either start a run or describe the form to show again.

Conversion and validation belong to `flowdesk.inputs` and starting runs to
`flowdesk.runs.service`; this module only decides which of them a request needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from flowdesk.db.models import Flow, Run
from flowdesk.errors import InputError, NotFound
from flowdesk.flows.cache import versions
from flowdesk.flows.definition import FlowDefinition
from flowdesk.flows.service import list_interactive_flows
from flowdesk.inputs import (
    Form,
    apply_defaults,
    apply_form_action,
    build_form,
    coerce_params,
    to_params,
    validate_input,
)
from flowdesk.runs.service import start_run_answered
from flowdesk.web.auth import Viewer

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

Params = Iterable[tuple[str, str]]
Schema = dict[str, Any] | bool

START_FLOW = "start_flow"
ACTION_FIELD = "_action"
LINK_CLICK = "link_click"
# The spellings DESIGN.md accepts for a boolean in a link.
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True)
class FlowListing:
    flows: list[Flow]
    # Whether the viewer has any interactive flow at all, so that an empty
    # filtered list can say "nothing matches" instead of "nothing here".
    has_any: bool


def find_flows(session: Session, viewer: Viewer, text: str) -> FlowListing:
    flows = list_interactive_flows(session, viewer.groups, text)
    if flows or not text.strip():
        return FlowListing(flows, bool(flows))
    return FlowListing(flows, bool(list_interactive_flows(session, viewer.groups)))


@dataclass(frozen=True)
class Launchable:
    """An interactive flow the viewer may start, with its current definition."""

    id: str
    definition: FlowDefinition

    @property
    def schema(self) -> Schema:
        return self.definition.input_schema

    @property
    def starts_from_links(self) -> bool:
        return LINK_CLICK in self.definition.interactive.allowed_triggers

    @property
    def shares_links(self) -> bool:
        return self.definition.interactive.link_sharing


# The few columns the check needs, as Core: it runs for every launch page and
# every launch, and the ORM's Flow entity costs several times as much.
_LAUNCH_CHECK = select(
    Flow.current_version_id, Flow.interactive, Flow.groups, Flow.deleted_at
).where(Flow.id == bindparam("flow_id"))


def launchable_flow(
    session: Session | Connection, flow_id: str, viewer: Viewer
) -> Launchable:
    """The flow if it is interactive and visible to the viewer; otherwise the
    same NotFound as for a flow that does not exist, so nothing is revealed."""
    flow = session.execute(_LAUNCH_CHECK, {"flow_id": flow_id}).one_or_none()
    if flow is None or flow.deleted_at is not None:
        raise _no_such_flow(flow_id)
    version_id = flow.current_version_id
    if not flow.interactive or version_id is None:
        raise _no_such_flow(flow_id)
    # As `flows.service.flow_visible_to`: groups limit a flow to their members.
    groups = viewer.groups
    if groups is not None and flow.groups and not set(flow.groups) & groups:
        raise _no_such_flow(flow_id)
    definition = versions.fetch(session, version_id).definition
    if not definition.interactive.enabled:
        raise _no_such_flow(flow_id)
    return Launchable(flow_id, definition)


def _no_such_flow(flow_id: str) -> NotFound:
    return NotFound(f"There is no flow with the id '{flow_id}'.")


@dataclass(frozen=True)
class LaunchPage:
    """Everything the launch template shows besides the flow itself."""

    target: Launchable
    form: Form
    notice: str | None = None
    # The current values as a link, for browsers without JavaScript.
    share_query: str | None = None
    status_code: int = 200


@dataclass(frozen=True)
class Outcome:
    """Either a run was started, or the form has to be shown (again)."""

    run: Run | None = None
    page: LaunchPage | None = None
    # Begins the started run, which waits for the answer to go out first.
    begin: Callable[[], None] | None = None


def open_link(system: System, flow_id: str, params: Params, viewer: Viewer) -> Outcome:
    """A visit to the launch page: pre-fill the form from the query string and
    start at once when the link asks to, the flow allows it and the data is valid."""
    params = list(params)
    with system.db.read_connection() as connection:
        target = launchable_flow(connection, flow_id, viewer)
    data = coerce_params(target.schema, params)
    wants_start = _start_requested(params)

    notice = None
    if wants_start and target.starts_from_links:
        try:
            started = start_run_answered(
                system, flow_id, data, "link", user=viewer.user
            )
        except InputError as error:
            errors = error.errors
            notice = (
                "This link would start the flow at once, but some of its values "
                "need fixing first. Correct them and press Start Flow."
            )
        else:
            return Outcome(run=started.run, begin=started.begin)
    elif wants_start:
        errors = validate_input(target.schema, apply_defaults(target.schema, data))
        notice = (
            "This link asks to start the flow at once, but this flow starts only "
            "when you press Start Flow. Check the values, then press it."
        )
    else:
        # A pre-fill link may leave fields for the user to fill in, so only the
        # values it does carry are judged, and a visit without any needs no
        # validation at all (a long form's costs a good part of its page).
        given = {name for name, _value in params}
        errors = []
        if given:
            found = validate_input(target.schema, apply_defaults(target.schema, data))
            errors = [error for error in found if _was_given(error.field, given)]

    form = build_form(target.schema, data, errors)
    return Outcome(page=_page(target, form, data, notice))


def submit_form(
    system: System, flow_id: str, params: Params, viewer: Viewer
) -> Outcome:
    """A post of the launch form: an Add/Remove button press re-renders the
    form; anything else starts a run or returns the form with its errors."""
    params = list(params)
    # A plain connection: one Core read, before every launch and launch page.
    with system.db.read_connection() as connection:
        target = launchable_flow(connection, flow_id, viewer)
    data = coerce_params(target.schema, params)

    action = next((value for name, value in params if name == ACTION_FIELD), "")
    if action:
        data, extra_items = apply_form_action(target.schema, data, action)
        form = build_form(target.schema, data, [], extra_items=extra_items)
        return Outcome(page=_page(target, form, data, None))

    try:
        started = start_run_answered(system, flow_id, data, "form", user=viewer.user)
    except InputError as error:
        form = build_form(target.schema, data, error.errors)
        return Outcome(page=_page(target, form, data, None, status_code=422))
    return Outcome(run=started.run, begin=started.begin)


def rerun(system: System, run: Run, viewer: Viewer) -> Outcome:
    """Start the run's flow again with its inputs. When the flow's input has
    changed so that they no longer fit, the form comes back with them instead."""
    with system.db.reading() as session:
        target = _rerun_target(session, run.flow_id, viewer)
    try:
        started = start_run_answered(
            system, run.flow_id, run.inputs, "rerun", user=viewer.user
        )
    except InputError as error:
        if target is None:
            raise
        schema = target.schema
        data = coerce_params(schema, to_params(run_schema(run), run.inputs))
        form = build_form(schema, data, error.errors)
        notice = (
            "The flow's input has changed since that run, so it cannot simply run "
            "again. Check the values below and press Start Flow."
        )
        return Outcome(page=_page(target, form, data, notice, status_code=422))
    return Outcome(run=started.run, begin=started.begin)


def _rerun_target(session: Session, flow_id: str, viewer: Viewer) -> Launchable | None:
    """Flow users may rerun only flows they could launch; developers any flow."""
    if viewer.sees_all_runs:
        return launchable_or_none(session, flow_id, viewer)
    return launchable_flow(session, flow_id, viewer)


def launchable_or_none(
    session: Session, flow_id: str, viewer: Viewer
) -> Launchable | None:
    try:
        return launchable_flow(session, flow_id, viewer)
    except NotFound:
        return None


def run_schema(run: Run) -> Schema:
    """The input schema of the version the run ran with."""
    return versions.load(run.version_id, run.version.definition).definition.input_schema


def new_inputs_query(run: Run) -> str:
    """The launch page's query string that fills the form with a run's inputs."""
    return urlencode(to_params(run_schema(run), run.inputs))


def _page(
    target: Launchable,
    form: Form,
    data: dict[str, Any],
    notice: str | None,
    *,
    status_code: int = 200,
) -> LaunchPage:
    share_query = None
    if target.shares_links and data:
        params = to_params(target.schema, data)
        if target.starts_from_links:
            params.append((START_FLOW, "true"))
        share_query = urlencode(params)
    return LaunchPage(target, form, notice, share_query, status_code)


def _start_requested(params: list[tuple[str, str]]) -> bool:
    return any(
        name == START_FLOW and value.strip().lower() in TRUE_WORDS
        for name, value in params
    )


def _was_given(field_path: str, given: set[str]) -> bool:
    """Whether a link carried the field, itself or a part of it (`address.city`
    for `address`, `lines.0.sku` for `lines`), or a whole object holding it."""
    if not field_path:
        return False
    for name in given:
        if name == field_path or name.startswith(field_path + "."):
            return True
        if field_path.startswith(name + "."):
            return True
    return False


@dataclass(frozen=True)
class InputItem:
    label: str
    value: str
    children: list[InputItem] = field(default_factory=list)


def describe_inputs(schema: Schema, inputs: dict[str, Any]) -> list[InputItem]:
    """The inputs of a run as labelled, readable values, titles from `schema`."""
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    items = []
    for name, value in inputs.items():
        spec = properties.get(name, {})
        spec = spec if isinstance(spec, dict) else {}
        label = str(spec.get("title") or name)
        if isinstance(value, dict) and value:
            items.append(InputItem(label, "", describe_inputs(spec, value)))
        else:
            items.append(InputItem(label, _readable(value)))
    return items


def _readable(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        if all(isinstance(item, str | int | float) for item in value):
            return ", ".join(_readable(item) for item in value) or "(none)"
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "(empty)"
    return str(value)
