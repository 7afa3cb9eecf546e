"""Reading flow text (YAML, or JSON) into plain data, remembering the line on which
every value starts so that a problem found later can point at it.

PyYAML's loader cannot do this on its own: it forgets positions once it has built
Python objects, and it quietly keeps the last of two equal keys. So the text is
composed into a node tree and the data is built from the nodes here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowdesk.errors import DefinitionError, Problem

KeyPath = tuple[str | int, ...]

# A flow is a page or two of text; the limits stop a hostile upload (or an alias
# bomb, where a few lines of anchors expand to millions of values) from tying up
# the server.
MAX_TEXT_CHARS = 2 * 1024 * 1024
MAX_VALUES = 200_000
MAX_PROBLEMS = 100  # beyond this, a list of problems helps nobody read it

# libyaml, where PyYAML was built with it, composes about fifteen times faster.
_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}


@dataclass
class Source:
    """A flow document read from text: the data, and a line for each path in it."""

    filename: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # Things that are wrong but did not stop the reading, such as duplicate keys.
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for length in range(len(path), -1, -1):
            line = self.lines.get(path[:length])
            if line is not None:
                return line
        return None


def format_path(path: KeyPath) -> str:
    """Write a path the way flow authors read it: `steps[2].then[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class ProblemList:
    """Collects the problems of one document, each located by its path."""

    def __init__(self, source: Source) -> None:
        self.source = source
        # A dict keeps the order of finding and drops repeats in constant time.
        self.items: dict[Problem, None] = dict.fromkeys(source.problems)

    def add(self, path: KeyPath, message: str, *, at: KeyPath | None = None) -> None:
        """Record `message` about `path`; `at` is a more precise path for the line."""
        line = self.source.line_of(path if at is None else at)
        self.items[Problem(message, self.source.filename, line, format_path(path))] = (
            None
        )

    def raise_if_any(self) -> None:
        if not self.items:
            return
        # Top to bottom, as the author reads the file; sorted() is stable.
        ordered = sorted(self.items, key=lambda problem: problem.line or 0)
        if len(ordered) > MAX_PROBLEMS:
            hidden = len(ordered) - MAX_PROBLEMS
            note = Problem(f"... and {hidden} more problems", self.source.filename)
            ordered = [*ordered[:MAX_PROBLEMS], note]
        raise DefinitionError(ordered)


def read_source(text: str, filename: str) -> Source:
    """Read YAML or JSON text; raises DefinitionError when it cannot be read at all.

    JSON is chosen by a `.json` file name, or by text that starts with `{` and
    parses as JSON; everything else is read as YAML.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise _single(
            filename,
            None,
            f"the flow text has {len(text)} characters, more than the limit of "
            f"{MAX_TEXT_CHARS}",
        )
    text = text.removeprefix("\ufeff")

    if filename.lower().endswith(".json"):
        return _read_json(text, filename)
    if text.lstrip().startswith("{"):
        try:
            return _read_json(text, filename)
        except DefinitionError:
            pass  # YAML flow style also starts with "{"; let YAML explain.
    return _read_yaml(text, filename)


def _single(filename: str, line: int | None, message: str) -> DefinitionError:
    return DefinitionError([Problem(message, filename, line)])


def _read_yaml(text: str, filename: str) -> Source:
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise _single(filename, *_describe_yaml_error(error)) from None
    except yaml.YAMLError as error:
        raise _single(filename, None, f"the text is not valid YAML: {error}") from None
    except RecursionError:
        raise _single(filename, None, "the text is nested too deeply") from None
    finally:
        loader.dispose()

    if root is None:
        raise _single(
            filename, 1, "the file is empty; expected a mapping with id, name and steps"
        )
    builder = _Builder(loader, filename)
    try:
        data = builder.build(root, ())
    except RecursionError:
        raise _single(filename, None, "the text is nested too deeply") from None
    return Source(filename, data, builder.lines, builder.problems)


def _describe_yaml_error(error: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    mark = error.problem_mark or error.context_mark
    line = None if mark is None else mark.line + 1
    reason = error.problem or "unexpected text"
    if error.context and error.context_mark is not None:
        reason += f" ({error.context} on line {error.context_mark.line + 1})"
    return line, f"the text is not valid YAML: {reason}"


class _Builder:
    """Builds plain data from composed YAML nodes, recording lines and problems."""

    def __init__(self, loader: SafeConstructor, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self.value_count = 0
        self.open_nodes: set[int] = set()  # ids of the nodes being built, for cycles

    def build(self, node: Node, path: KeyPath) -> Any:
        self.value_count += 1
        if self.value_count > MAX_VALUES:
            raise _single(
                self.filename,
                node.start_mark.line + 1,
                f"the document holds more than {MAX_VALUES} values (anchors and "
                "aliases count each time they are used); a flow must be smaller",
            )
        if id(node) in self.open_nodes:
            self._problem(node, path, "an alias refers to a value that contains it")
            return None

        self.open_nodes.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._build_mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._build_sequence(node, path)
            assert isinstance(node, ScalarNode)
            return self._build_scalar(node, path)
        finally:
            self.open_nodes.discard(id(node))

    def _problem(self, node: Node, path: KeyPath, message: str) -> None:
        line = node.start_mark.line + 1
        self.problems.append(Problem(message, self.filename, line, format_path(path)))

    def _build_mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            self._problem(node, path, _unsupported_tag(node.tag))

        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.update(self._build_merge(value_node, path))
                continue

            key = self._build_key(key_node, path)
            if key is None:
                continue
            key_path = (*path, key)
            if key in explicit:
                first_line = self.lines.get(key_path)
                self._problem(
                    key_node,
                    path,
                    f"the key {key!r} appears twice in this mapping (first on line "
                    f"{first_line}); remove one of them",
                )
                continue
            explicit[key] = self.build(value_node, key_path)
            # The key's line, not the value's: a block value starts a line later.
            self.lines[key_path] = key_node.start_mark.line + 1

        self.lines[path] = node.start_mark.line + 1
        return {**merged, **explicit}

    def _build_merge(self, node: Node, path: KeyPath) -> dict[str, Any]:
        """The mapping a `<<` key merges in; earlier sources win, as YAML says."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.build(source, path)
            if isinstance(value, dict):
                merged.update(value)
            else:
                self._problem(source, path, "'<<' can only merge mappings")
        return merged

    def _build_key(self, node: Node, path: KeyPath) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _TAG + "str":
            return str(node.value)
        if isinstance(node, ScalarNode):
            # YAML reads `on:` or `1:` as a boolean or number; JSON-like data
            # needs text keys, and a silent conversion would change the name.
            self._problem(
                node,
                path,
                f"the key {node.value!r} is read as a {node.tag.removeprefix(_TAG)}, "
                f"but keys must be text; write it in quotes: '{node.value}'",
            )
            return str(node.value)  # keeps later checks from piling on
        else:
            # Usually `log: {{ x }}`: YAML reads unquoted braces as a mapping.
            self._problem(
                node,
                path,
                "a key must be text, not a list or mapping; if this is an expression, "
                'put it in quotes: "{{ ... }}"',
            )
        return None

    def _build_sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        if node.tag != _TAG + "seq":
            self._problem(node, path, _unsupported_tag(node.tag))
        self.lines[path] = node.start_mark.line + 1
        return [
            self.build(item, (*path, index)) for index, item in enumerate(node.value)
        ]

    def _build_scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if node.tag == _TAG + "timestamp":
            # Dates stay text, as they would be in JSON (`2024-05-01`).
            return str(node.value)
        if node.tag not in _PLAIN_SCALAR_TAGS:
            self._problem(node, path, _unsupported_tag(node.tag))
            return None

        value = self.loader.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            self._problem(node, path, f"{node.value!r} is not a finite number")
            return None
        return value


def _unsupported_tag(tag: str) -> str:
    return (
        f"the YAML tag {tag!r} is not supported; a flow holds only mappings, lists, "
        "text, numbers, true/false and null"
    )


def _read_json(text: str, filename: str) -> Source:
    duplicates: list[str] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            if key in mapping:
                duplicates.append(key)
            mapping[key] = value
        return mapping

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a finite number")

    def finite_float(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ValueError(f"{number} is too large a number")
        return value

    try:
        data = json.loads(
            text,
            object_pairs_hook=keep_pairs,
            parse_constant=refuse_constant,
            parse_float=finite_float,
        )
    except json.JSONDecodeError as error:
        raise _single(
            filename, error.lineno, f"the text is not valid JSON: {error.msg}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise _single(filename, None, f"the text is not valid JSON: {error}") from None

    # JSON is nearly always valid YAML, and reading it as YAML gives the lines. Its
    # data is not used: YAML 1.1 reads some JSON numbers, like 1e5, as text.
    try:
        # Tabs may indent JSON but not YAML; outside strings (the only place JSON
        # allows a raw tab) they are plain white space, so lines stay the same.
        located = _read_yaml(text.replace("\t", " "), filename)
    except DefinitionError:
        problems = [
            Problem(f"the key {key!r} appears twice in a mapping", filename)
            for key in dict.fromkeys(duplicates)
        ]
        return Source(filename, data, {}, problems)
    return Source(filename, data, located.lines, located.problems)
