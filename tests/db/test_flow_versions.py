"""Stored flows on SQLite and PostgreSQL: every change is a new immutable
version, an unchanged definition is no change at all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flowdesk.db.models import Flow, FlowVersion
from flowdesk.errors import NotFound
from flowdesk.flows.service import (
    current_version,
    delete_flow,
    get_flow,
    list_flows,
    list_interactive_flows,
)
from flowdesk.system import System
from tests.support.stored_flows import apply_flow

pytestmark = pytest.mark.postgres

REPORT = """
    id: weekly-report
    name: Weekly report
    location: Sales/Reports
    tags: [sales, weekly]
    description: Sums up the week.
    interactive:
      enabled: true
      groups: [sales]
    steps:
      - log: first version
"""


def versions_of(system: System, flow_id: str) -> list[FlowVersion]:
    with system.db.reading() as session:
        query = select(FlowVersion).where(FlowVersion.flow_id == flow_id)
        return list(session.scalars(query.order_by(FlowVersion.number)))


def test_flow_versions_first_apply_creates_version_one(any_system: System) -> None:
    outcome = apply_flow(any_system, REPORT)

    assert (outcome.flow_id, outcome.change, outcome.version) == (
        "weekly-report",
        "created",
        1,
    )
    with any_system.db.reading() as session:
        flow = get_flow(session, "weekly-report")
        assert flow.name == "Weekly report"
        assert flow.location == "Sales/Reports"
        assert flow.tags == ["sales", "weekly"]
        assert flow.interactive is True
        assert flow.groups == ["sales"]
        version = current_version(session, "weekly-report")
        assert version.number == 1
        assert version.definition["steps"] == [{"log": "first version"}]
        assert "first version" in version.source
        assert version.author == "tests"


def test_flow_versions_unchanged_apply_adds_no_version(any_system: System) -> None:
    apply_flow(any_system, REPORT)

    again = apply_flow(any_system, REPORT)
    # A comment or a different layout does not change what the flow does.
    reformatted = apply_flow(any_system, "# just a comment\n" + REPORT)

    assert (again.change, again.version) == ("unchanged", 1)
    assert (reformatted.change, reformatted.version) == ("unchanged", 1)
    assert [version.number for version in versions_of(any_system, "weekly-report")] == [
        1
    ]


def test_flow_versions_changed_apply_adds_version_two_keeping_one(
    any_system: System,
) -> None:
    apply_flow(any_system, REPORT)
    (first_before,) = versions_of(any_system, "weekly-report")

    outcome = apply_flow(
        any_system,
        REPORT.replace("first version", "second version").replace(
            "Weekly report", "Weekly sales report"
        ),
    )

    assert (outcome.change, outcome.version) == ("updated", 2)
    first, second = versions_of(any_system, "weekly-report")
    assert first.id == first_before.id
    assert first.definition == first_before.definition
    assert first.source == first_before.source
    assert first.digest == first_before.digest
    assert first.created_at == first_before.created_at
    assert second.definition["steps"] == [{"log": "second version"}]
    assert second.digest != first.digest
    with any_system.db.reading() as session:
        flow = get_flow(session, "weekly-report")
        assert flow.current_version_id == second.id
        assert flow.name == "Weekly sales report"


def test_flow_versions_deleted_flow_is_hidden_and_restored_by_apply(
    any_system: System,
) -> None:
    apply_flow(any_system, REPORT)
    with any_system.db.transaction() as session:
        delete_flow(session, "weekly-report")

    with any_system.db.reading() as session:
        assert list_flows(session) == []
        with pytest.raises(NotFound, match="weekly-report"):
            get_flow(session, "weekly-report")

    outcome = apply_flow(any_system, REPORT)

    assert (outcome.change, outcome.version) == ("restored", 2)
    with any_system.db.reading() as session:
        assert [flow.id for flow in list_flows(session)] == ["weekly-report"]


def test_flow_versions_interactive_list_respects_groups_and_search(
    any_system: System,
) -> None:
    apply_flow(any_system, REPORT)
    apply_flow(
        any_system,
        """
        id: hello
        name: Hello
        tags: [demo]
        interactive: {enabled: true}
        steps: [{log: hi}]
        """,
    )
    apply_flow(any_system, "id: backstage\nname: Backstage\nsteps: [{log: hi}]\n")

    def visible(groups: set[str] | None, text: str = "") -> list[str]:
        with any_system.db.reading() as session:
            return [f.id for f in list_interactive_flows(session, groups, text)]

    assert visible(None) == ["hello", "weekly-report"]
    assert visible(set()) == ["hello"]
    assert visible({"sales"}) == ["hello", "weekly-report"]
    assert visible(None, "REPORTS") == ["weekly-report"]
    assert visible(None, "demo") == ["hello"]


def test_flow_versions_two_flows_number_their_versions_apart(
    any_system: System,
) -> None:
    apply_flow(any_system, REPORT)
    other = apply_flow(any_system, REPORT.replace("weekly-report", "daily-report"))

    assert other.version == 1
    with any_system.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Flow)) == 2
