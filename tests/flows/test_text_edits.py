"""Rewriting some top-level keys of a flow's text while keeping the rest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flowdesk.flows.definition import (
    definition_from_data,
    dump_definition,
    parse_definition,
)
from flowdesk.flows.text_edits import splice_top_level, top_level_lines

SOURCE = """\
# A header comment.
id: tidy
name: Tidy   # the name
tags: [a, b]

# Steps below.
steps:
  - log: one   # first
  # between
  - log: two
"""


def test_top_level_lines_leave_heading_comments_to_the_next_key() -> None:
    lines = top_level_lines(SOURCE)

    assert lines is not None
    assert [(key, r.start, r.end) for key, r in lines.items()] == [
        ("id", 1, 2),
        ("name", 2, 3),
        ("tags", 3, 4),
        ("steps", 6, 10),
    ]


def test_top_level_lines_refuse_what_is_not_a_block_mapping() -> None:
    assert top_level_lines('{"id": "x", "steps": []}') is None
    assert top_level_lines("- a\n- b\n") is None
    assert top_level_lines("id: [unclosed\n") is None


def test_splice_replaces_removes_and_adds_keys() -> None:
    dumped = "id: tidy\nname: Neat\ndescription: new\nsteps: []\n"

    spliced = splice_top_level(SOURCE, dumped, ["name", "tags", "description"])

    assert spliced == SOURCE.replace(
        "name: Tidy   # the name\n", "name: Neat\n"
    ).replace("tags: [a, b]\n", "description: new\n")


def test_splice_of_an_unterminated_last_line() -> None:
    spliced = splice_top_level("id: x\nname: y", "id: x\nname: z\n", ["name"])

    assert spliced == "id: x\nname: z\n"


names = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)
# Tags as the settings form leaves them: stripped, none empty.
tag_lists = st.lists(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(name=names, tags=tag_lists, description=names)
def test_spliced_text_means_what_the_full_dump_means(
    name: str, tags: list[str], description: str
) -> None:
    stored = parse_definition(SOURCE).data
    data = {**stored, "name": name.strip() or "x", "tags": tags}
    data["description"] = description
    dumped = dump_definition(definition_from_data(data))

    spliced = splice_top_level(SOURCE, dumped, ["name", "tags", "description"])

    assert spliced is not None
    assert parse_definition(spliced).data == parse_definition(dumped).data
    assert "  - log: one   # first\n  # between\n" in spliced
