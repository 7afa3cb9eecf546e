"""Changing some top-level keys of a flow file's text and nothing else.

The Flow Settings dialog changes a handful of top-level keys (name, tags,
interactive, schedule...). Writing the whole definition out again would throw
away the developer's comments, quoting and layout in the steps, which are most
of the file. Instead the lines of each changed key are replaced by the lines a
fresh dump gives that key, and every other line is kept byte for byte.

Only block-style YAML mappings are edited this way; for anything else (a JSON
file, say) `splice_top_level` answers None and the caller writes the whole
definition out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class KeyLines:
    """Where one top-level key sits: lines [start, end) of the text, its own
    comments above it not included."""

    start: int
    end: int


def top_level_lines(text: str) -> dict[str, KeyLines] | None:
    """The line range of every top-level key of a block-style YAML mapping;
    None when the text is not one."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        return None

    lines = text.splitlines(keepends=True)
    starts: list[tuple[str, int]] = []
    for key_node, _value in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            return None
        starts.append((str(key_node.value), key_node.start_mark.line))

    ranges: dict[str, KeyLines] = {}
    for index, (key, start) in enumerate(starts):
        following = starts[index + 1][1] if index + 1 < len(starts) else len(lines)
        ranges[key] = KeyLines(start, _end_before_comments(lines, start, following))
    return ranges


def _end_before_comments(lines: list[str], start: int, following: int) -> int:
    # Blank lines and unindented comments just above the next key belong to
    # that key (they are usually its heading); indented ones are part of this
    # key's block.
    end = following
    while end - 1 > start and _is_heading_line(lines[end - 1]):
        end -= 1
    return end


def _is_heading_line(line: str) -> bool:
    return not line.strip() or line.startswith("#")


def splice_top_level(source: str, dumped: str, keys: Iterable[str]) -> str | None:
    """`source` with the top-level `keys` taken from `dumped`, another text of
    the same flow. A key missing from `dumped` is removed from the source; a
    key missing from the source is added where it comes in `dumped`'s order.
    None when either text is not a block-style mapping."""
    old = top_level_lines(source)
    new = top_level_lines(dumped)
    if old is None or new is None:
        return None

    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    dumped_lines = dumped.splitlines(keepends=True)
    order = list(new)

    # Work from the bottom of the file up so that earlier line numbers hold.
    edits: list[tuple[int, int, list[str]]] = []
    for key in keys:
        replacement = dumped_lines[new[key].start : new[key].end] if key in new else []
        if key in old:
            edits.append((old[key].start, old[key].end, replacement))
        elif replacement:
            at = _insertion_line(key, old, order, lines)
            edits.append((at, at, replacement))
    for start, end, replacement in sorted(edits, key=lambda e: e[0], reverse=True):
        lines[start:end] = replacement
    return "".join(lines)


def _insertion_line(
    key: str, present: dict[str, KeyLines], order: list[str], lines: list[str]
) -> int:
    # Before the first key that comes after `key` in the usual order, above
    # that key's heading comments and the blank lines before them; at the end
    # when none does.
    later = order[order.index(key) + 1 :] if key in order else []
    for other in later:
        if other in present:
            at = present[other].start
            while at > 0 and _is_heading_line(lines[at - 1]):
                at -= 1
            return at
    return len(lines)
