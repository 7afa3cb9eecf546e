"""Putting flows written inline in a test into a system's database."""

from __future__ import annotations

import textwrap

from flowdesk.flows.definition import parse_definition
from flowdesk.flows.service import ApplyOutcome, apply_definition
from flowdesk.system import System


def apply_flow(system: System, text: str) -> ApplyOutcome:
    """Parse a flow's YAML (indented freely) and store it as its next version."""
    source = textwrap.dedent(text)
    definition = parse_definition(source, "test-flow.yaml")
    with system.db.transaction() as session:
        return apply_definition(session, definition, source, "tests")


SLEEPY_FLOW = """
    id: sleepy
    name: Sleepy
    interactive:
      enabled: true
      input_schema:
        type: object
        properties:
          seconds: {type: number, default: 0.1}
    steps:
      - status: Sleeping...
      - sleep: "{{ inputs.seconds }}"
      - set: {slept: "{{ inputs.seconds }}"}
"""
