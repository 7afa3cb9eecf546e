"""Helpers for the schedule tests: a clock that only moves when told, and flows
stored as if applied at a given moment."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

from sqlalchemy import update

from flowdesk.db.models import FlowVersion
from flowdesk.flows.service import current_version
from flowdesk.system import System
from tests.support.stored_flows import apply_flow


class FrozenClock:
    """The scheduler's `now`, set and moved by the test."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def apply_scheduled(system: System, text: str, applied_at: datetime) -> int:
    """Store a flow as its next version, dated `applied_at`; returns its id."""
    outcome = apply_flow(system, textwrap.dedent(text))
    with system.db.transaction() as session:
        version = current_version(session, outcome.flow_id)
        session.execute(
            update(FlowVersion)
            .where(FlowVersion.id == version.id)
            .values(created_at=applied_at)
        )
        return version.id
