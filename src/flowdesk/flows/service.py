"""Storing flows: apply a definition as a new immutable version, find and list
flows. Functions take the caller's session and never commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowdesk.db.models import Flow, FlowVersion
from flowdesk.db.types import utcnow
from flowdesk.errors import NotFound
from flowdesk.flows.definition import FlowDefinition

logger = logging.getLogger(__name__)

Change = Literal["created", "updated", "unchanged", "restored"]


@dataclass(frozen=True)
class ApplyOutcome:
    flow_id: str
    change: Change
    version: int


def apply_definition(
    session: Session,
    definition: FlowDefinition,
    source: str,
    author: str | None = None,
    *,
    keep_text_changes: bool = False,
) -> ApplyOutcome:
    """Make `definition` the flow's current version, unless nothing changed.

    With `keep_text_changes`, a new text of the same meaning (an edited comment)
    is a change too: the editor must not drop what its user typed."""
    digest = definition.digest()
    flow = session.get(Flow, definition.id)

    if flow is not None and flow.deleted_at is None and flow.current_version:
        current = flow.current_version
        same_text = current.source == source or not keep_text_changes
        if current.digest == digest and same_text:
            return ApplyOutcome(flow.id, "unchanged", current.number)

    change: Change = "updated"
    if flow is None:
        change = "created"
        flow = Flow(id=definition.id, created_at=utcnow())
        session.add(flow)
    elif flow.deleted_at is not None:
        change = "restored"
        flow.deleted_at = None

    # Before any query: autoflush would otherwise insert a new flow without
    # its name.
    _copy_listing_fields(flow, definition)

    number = (
        session.scalar(
            select(func.max(FlowVersion.number)).where(
                FlowVersion.flow_id == definition.id
            )
        )
        or 0
    ) + 1
    version = FlowVersion(
        flow_id=definition.id,
        number=number,
        definition=definition.data,
        source=source,
        digest=digest,
        author=author,
    )
    session.add(version)
    session.flush()

    flow.current_version = version
    flow.updated_at = utcnow()
    session.flush()
    logger.info("flow %s %s as version %s", definition.id, change, number)
    return ApplyOutcome(definition.id, change, number)


def _copy_listing_fields(flow: Flow, definition: FlowDefinition) -> None:
    flow.name = definition.name
    flow.location = definition.location
    flow.tags = list(definition.tags)
    flow.description = definition.description
    flow.interactive = definition.interactive.enabled
    flow.groups = list(definition.interactive.groups)
    flow.scheduled = bool(definition.schedule and definition.schedule.enabled)


def get_flow(session: Session, flow_id: str, *, include_deleted: bool = False) -> Flow:
    flow = session.get(Flow, flow_id)
    if flow is None or (flow.deleted_at is not None and not include_deleted):
        raise NotFound(f"There is no flow with the id '{flow_id}'.")
    return flow


def current_version(session: Session, flow_id: str) -> FlowVersion:
    flow = get_flow(session, flow_id)
    if flow.current_version is None:
        raise NotFound(f"The flow '{flow_id}' has no saved version.")
    return flow.current_version


def list_flows(session: Session) -> list[Flow]:
    query = select(Flow).where(Flow.deleted_at.is_(None))
    return list(session.scalars(query.order_by(Flow.location, Flow.name)))


def list_interactive_flows(
    session: Session, groups: set[str] | None, text: str = ""
) -> list[Flow]:
    """Interactive flows visible to a member of `groups` (None: every flow),
    filtered by a case-insensitive match on name, location or a tag."""
    query = select(Flow).where(Flow.deleted_at.is_(None), Flow.interactive.is_(True))
    flows = session.scalars(query.order_by(Flow.location, Flow.name))
    needle = text.strip().casefold()
    return [
        flow
        for flow in flows
        if flow_visible_to(flow, groups) and _matches(flow, needle)
    ]


def flow_visible_to(flow: Flow, groups: set[str] | None) -> bool:
    """A flow limited to groups is only for their members; None sees all."""
    return groups is None or not flow.groups or bool(set(flow.groups) & groups)


def _matches(flow: Flow, needle: str) -> bool:
    if not needle:
        return True
    haystack = [flow.name, flow.location, flow.id, *flow.tags]
    return any(needle in value.casefold() for value in haystack)


def delete_flow(session: Session, flow_id: str) -> None:
    """Hide a flow; its versions and runs stay readable."""
    flow = get_flow(session, flow_id)
    flow.deleted_at = utcnow()
    logger.info("flow %s deleted", flow_id)
