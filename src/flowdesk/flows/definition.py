"""Flow definitions: reading flow files in the format of DESIGN.md, checking them,
and writing them back out.

`parse_definition` does the full check and returns a `FlowDefinition` whose `data`
is the normalised, JSON-able document that gets stored; `definition_from_data`
rebuilds the same object from stored data cheaply, without checking again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from flowdesk.errors import DefinitionError, Problem
from flowdesk.flows.messages import describe_value, explain, suggestion
from flowdesk.flows.source import KeyPath, ProblemList, read_source
from flowdesk.flows.steps import COMMON_KEYS, STEP_KINDS, StepChecker
from flowdesk.schedules.timing import cron_problem

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent

FORMAT_SCHEMA: dict[str, Any] = json.loads(
    (_HERE / "flow-format.schema.json").read_text(encoding="utf-8")
)


def _schema_for_loading(published: dict[str, Any]) -> dict[str, Any]:
    """The format schema without the parts that code below checks itself: each
    step (anyOf over the kinds gives one vague error per bad step) and the input
    schema (its meta-schema $ref is slow, and _META_VALIDATOR says more)."""
    schema = copy.deepcopy(published)
    schema["$defs"]["steps"] = {"type": "array"}
    schema["$defs"]["interactive"]["properties"]["input_schema"] = {}
    return schema


_FORMAT_VALIDATOR = Draft202012Validator(_schema_for_loading(FORMAT_SCHEMA))
_META_VALIDATOR = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)

FLOW_FILE_SUFFIXES = (".yaml", ".yml", ".json")

# The server compiles and walks every input schema it is given; these bounds keep
# one huge or deeply nested schema from exhausting it.
MAX_INPUT_SCHEMA_BYTES = 256 * 1024
MAX_INPUT_SCHEMA_DEPTH = 32
# Checking a schema against the meta-schema costs time per subschema, so their
# number is bounded too: ample for a form of several hundred fields.
MAX_INPUT_SCHEMA_NODES = 2_000

_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

_INPUT_SCHEMA_PATH: KeyPath = ("interactive", "input_schema")


@dataclass(frozen=True)
class InteractiveSettings:
    enabled: bool = False
    input_schema: dict[str, Any] | bool = True  # True: the flow takes no input
    allowed_triggers: tuple[str, ...] = ()
    link_sharing: bool = False
    groups: tuple[str, ...] = ()  # empty: everyone with flow:run


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str
    timezone: str = "UTC"
    inputs: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    misfire: str = "skip"  # "skip" missed times, or run "once" to catch up


@dataclass(frozen=True)
class FlowDefinition:
    id: str
    name: str
    location: str
    tags: tuple[str, ...]
    description: str
    interactive: InteractiveSettings
    schedule: ScheduleSettings | None
    steps: list[dict[str, Any]]
    outputs: list[str] | None
    data: dict[str, Any]  # the whole normalised definition, as stored
    # How often a run whose process died mid-run is started again (0: never).
    retry_interrupted: int = 0

    @property
    def input_schema(self) -> dict[str, Any] | bool:
        return self.interactive.input_schema

    def digest(self) -> str:
        """SHA-256 hex of the canonical JSON of `data`; equal meaning, equal digest."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        canonical = json.dumps(
            self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_definition(text: str, filename: str = "<flow>") -> FlowDefinition:
    """Read and check a flow file's text; raises DefinitionError listing every
    problem found, each with the file, line and path."""
    source = read_source(text, filename)
    problems = ProblemList(source)
    document = source.data
    if not isinstance(document, dict):
        problems.add(
            (),
            "a flow file must be a mapping with the keys id, name and steps, got "
            f"{describe_value(document)}",
        )
        problems.raise_if_any()

    _check_document(document, problems)
    problems.raise_if_any()
    return definition_from_data(_normalise(document))


def definition_from_data(data: dict[str, Any]) -> FlowDefinition:
    """Build a FlowDefinition from its stored `data`, which is trusted (no checks)."""
    interactive = data["interactive"]
    schedule = data["schedule"]
    return FlowDefinition(
        id=data["id"],
        name=data["name"],
        location=data["location"],
        tags=tuple(data["tags"]),
        description=data["description"],
        interactive=InteractiveSettings(
            enabled=interactive["enabled"],
            input_schema=interactive["input_schema"],
            allowed_triggers=tuple(interactive["allowed_triggers"]),
            link_sharing=interactive["link_sharing"],
            groups=tuple(interactive["groups"]),
        ),
        schedule=None if schedule is None else ScheduleSettings(**schedule),
        steps=data["steps"],
        outputs=data["outputs"],
        data=data,
        # Absent from versions stored before the key existed.
        retry_interrupted=data.get("retry_interrupted", 0),
    )


def find_flow_files(paths: Iterable[Path]) -> list[Path]:
    """The flow files among `paths`: files as given, folders searched recursively
    for *.yaml, *.yml and *.json (skipping hidden ones), sorted."""
    found: set[Path] = set()
    missing: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found.update(_flow_files_under(path))
        elif path.is_file():
            found.add(path)
        else:
            missing.append(Problem("no such file or folder", str(path)))
    if missing:
        raise DefinitionError(missing)
    return sorted(found)


def _flow_files_under(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.suffix.lower() in FLOW_FILE_SUFFIXES and path.is_file() and not hidden:
            yield path


def load_file(path: Path) -> FlowDefinition:
    """Read and parse one flow file; problems name the file as `path` gives it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(
            [Problem("the file is not UTF-8 text; save it as UTF-8", str(path))]
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise DefinitionError(
            [Problem(f"the file cannot be read: {reason}", str(path))]
        ) from None

    definition = parse_definition(text, str(path))
    logger.debug("Read flow %s from %s", definition.id, path)
    return definition


def bundled_examples() -> list[Path]:
    """The example flows shipped in flowdesk/examples, sorted by file name."""
    return sorted((_HERE.parent / "examples").glob("*.yaml"))


# Checking: the format schema states the shape, the functions below the rules it
# cannot state. Each function copes with values of the wrong type, which the
# schema has already reported.


def _check_document(document: dict[str, Any], problems: ProblemList) -> None:
    for error in _FORMAT_VALIDATOR.iter_errors(document):
        for explained in explain(error):
            problems.add(explained.path, explained.message, at=explained.at)

    _check_location(document.get("location"), problems)
    _check_tags(document.get("tags"), problems)

    interactive = document.get("interactive")
    input_schema: Any = True
    if isinstance(interactive, dict):
        input_schema = interactive.get("input_schema", True)
    usable = _check_input_schema(input_schema, problems)

    schedule = document.get("schedule")
    if isinstance(schedule, dict):
        _check_schedule(schedule, input_schema if usable else None, problems)

    steps = document.get("steps")
    if isinstance(steps, list):
        StepChecker(problems).check_steps(steps, ("steps",))


def _normal_location(location: str) -> str:
    return "/".join(part.strip() for part in location.strip().split("/"))


def _check_location(location: Any, problems: ProblemList) -> None:
    if not isinstance(location, str):
        return
    normal = _normal_location(location)
    if normal and "" in normal.split("/"):
        problems.add(
            ("location",),
            f"location {location!r} must be a folder path like 'Sales/Reports', with "
            "no '/' at the start or end and no empty folder names",
        )


def _check_tags(tags: Any, problems: ProblemList) -> None:
    if not isinstance(tags, list):
        return
    for index, tag in enumerate(tags):
        if isinstance(tag, str) and tag and not tag.strip():
            problems.add(("tags", index), f"tags[{index}] must contain some text")


def _check_input_schema(schema: Any, problems: ProblemList) -> bool:
    """Report what is wrong with the input schema; True when inputs can be
    validated against it."""
    path = _INPUT_SCHEMA_PATH
    if schema is False:
        problems.add(
            path,
            "input_schema false would refuse every input, so the flow could never "
            "start; use true (or leave it out) for a flow without input",
        )
        return False
    if schema is True:
        return True
    if not isinstance(schema, dict):
        problems.add(
            path,
            "input_schema must be a JSON Schema mapping, or true for a flow without "
            f"input; got {describe_value(schema)}",
        )
        return False

    size = len(json.dumps(schema).encode("utf-8"))
    if size > MAX_INPUT_SCHEMA_BYTES:
        problems.add(
            path,
            f"input_schema is {size} bytes as JSON, more than the limit of "
            f"{MAX_INPUT_SCHEMA_BYTES}",
        )
        return False
    depth, nodes = _shape(schema)
    if depth > MAX_INPUT_SCHEMA_DEPTH:
        problems.add(
            path,
            f"input_schema is nested more than {MAX_INPUT_SCHEMA_DEPTH} levels deep",
        )
        return False
    if nodes > MAX_INPUT_SCHEMA_NODES:
        problems.add(
            path,
            f"input_schema has more than {MAX_INPUT_SCHEMA_NODES} mappings and "
            "lists; split the form into fewer fields",
        )
        return False

    declared = schema.get("$schema", _DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != _DRAFT_2020_12:
        problems.add(
            (*path, "$schema"),
            f"$schema {describe_value(declared)} is not supported; input schemas "
            f"use JSON Schema 2020-12 ({_DRAFT_2020_12})",
        )
        return False

    usable = True
    for error in _META_VALIDATOR.iter_errors(schema):
        usable = False
        for explained in explain(error, path):
            problems.add(explained.path, explained.message, at=explained.at)
    return _check_input_is_object(schema, problems) and usable


def _check_input_is_object(schema: dict[str, Any], problems: ProblemList) -> bool:
    # A flow's input is a set of named fields (the form's fields, the link's
    # parameters), so the schema must describe an object.
    kind = schema.get("type")
    if kind is None and "properties" not in schema:
        problems.add(
            _INPUT_SCHEMA_PATH,
            "input_schema must describe an object, e.g. with 'type: object' and "
            "'properties'; use true for a flow without input",
        )
        return False
    if (
        kind is not None
        and kind != "object"
        and not (isinstance(kind, list) and "object" in kind)
    ):
        problems.add(
            (*_INPUT_SCHEMA_PATH, "type"),
            f"the input schema's type must be 'object', since a flow's input is a set "
            f"of named fields; got {describe_value(kind)}",
        )
        return False
    return True


def _shape(value: Any) -> tuple[int, int]:
    """How deep `value` nests and how many mappings and lists it holds, each
    walked only until it passes its limit."""
    deepest = nodes = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_INPUT_SCHEMA_DEPTH or nodes > MAX_INPUT_SCHEMA_NODES:
            break  # enough to refuse; no need to walk the rest
        if isinstance(item, dict):
            nodes += 1
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            nodes += 1
            pending.extend((child, depth + 1) for child in item)
    return deepest, nodes


def _check_schedule(
    schedule: dict[str, Any], input_schema: Any, problems: ProblemList
) -> None:
    """`input_schema` is None when it is too broken to check the inputs against."""
    cron = schedule.get("cron")
    if isinstance(cron, str):
        _check_cron(cron, problems)

    timezone = schedule.get("timezone")
    if isinstance(timezone, str):
        _check_timezone(timezone, problems)

    inputs = schedule.get("inputs", {})
    if isinstance(inputs, dict) and isinstance(input_schema, dict):
        _check_schedule_inputs(inputs, input_schema, problems)


def _check_cron(cron: str, problems: ProblemList) -> None:
    # One cron reader for the loader and the scheduler, so that whatever a flow
    # file may say, the scheduler can fire.
    reason = cron_problem(cron.strip())
    if reason:
        problems.add(("schedule", "cron"), reason.rstrip("."))


def _check_timezone(timezone: str, problems: ProblemList) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
        return
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass

    close = suggestion(timezone, zoneinfo.available_timezones())
    problems.add(
        ("schedule", "timezone"),
        f"timezone {timezone!r} is not a known time zone{close}; expected an IANA "
        "name such as 'Europe/Berlin' or 'UTC'",
    )


def _check_schedule_inputs(
    inputs: dict[str, Any], input_schema: dict[str, Any], problems: ProblemList
) -> None:
    validator = Draft202012Validator(
        input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    try:
        errors = list(validator.iter_errors(inputs))
    except Unresolvable as unresolvable:
        problems.add(
            _INPUT_SCHEMA_PATH,
            f"input_schema refers to {unresolvable} which cannot be resolved; a flow's "
            "input schema must be self-contained",
        )
        return
    for error in errors:
        for explained in explain(error, ("schedule", "inputs")):
            problems.add(explained.path, explained.message, at=explained.at)


# Normalising: equal meaning gives equal data, so equal digests. Steps are kept
# as written.


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    interactive = document.get("interactive", {})
    schedule = document.get("schedule")
    normal: dict[str, Any] = {
        "id": document["id"],
        "name": document["name"].strip(),
        "location": _normal_location(document.get("location", "")),
        "tags": _unique(tag.strip() for tag in document.get("tags", [])),
        "description": document.get("description", "").strip(),
        "interactive": {
            "enabled": interactive.get("enabled", False),
            "input_schema": interactive.get("input_schema", True),
            "allowed_triggers": _unique(interactive.get("allowed_triggers", [])),
            "link_sharing": interactive.get("link_sharing", False),
            "groups": _unique(interactive.get("groups", [])),
        },
        "schedule": None
        if schedule is None
        else {
            "cron": schedule["cron"].strip(),
            "timezone": schedule.get("timezone", "UTC"),
            "inputs": schedule.get("inputs", {}),
            "enabled": schedule.get("enabled", True),
            "misfire": schedule.get("misfire", "skip"),
        },
        "outputs": document.get("outputs"),
        "steps": document["steps"],
    }
    # Kept only when set, so that the flows stored before the key existed keep
    # their digests and an unchanged file applied again stays a no-op.
    retries = document.get("retry_interrupted", 0)
    if retries:
        normal["retry_interrupted"] = int(retries)  # JSON may say 2.0
    return normal


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Writing YAML back out.


class _FlowDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a definition is a tree; anchors would only puzzle readers


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None  # html and long texts read as blocks
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_FlowDumper.add_representer(str, _represent_text)


def dump_definition(definition: FlowDefinition) -> str:
    """The definition as block-style YAML that parse_definition reads back equal.

    Keys come in the order of DESIGN.md, whatever order the stored data has.
    """
    data = definition.data
    document = {key: data[key] for key in _TOP_KEYS if data.get(key) is not None}
    document["interactive"] = {
        key: data["interactive"][key] for key in _INTERACTIVE_KEYS
    }
    if data["schedule"] is not None:
        document["schedule"] = {key: data["schedule"][key] for key in _SCHEDULE_KEYS}
    document["steps"] = [_ordered_step(step) for step in data["steps"]]
    return yaml.dump(
        document,
        Dumper=_FlowDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=88,
    )


_TOP_KEYS = (
    "id",
    "name",
    "location",
    "tags",
    "description",
    "interactive",
    "schedule",
    "retry_interrupted",
    "outputs",
    "steps",
)
_INTERACTIVE_KEYS = (
    "enabled",
    "input_schema",
    "allowed_triggers",
    "link_sharing",
    "groups",
)
_SCHEDULE_KEYS = ("cron", "timezone", "inputs", "enabled", "misfire")


def _ordered_step(step: dict[str, Any]) -> dict[str, Any]:
    """The step with its kind key first, then the kind's keys, then `name`."""
    kind_name = next((key for key in step if key in STEP_KINDS), None)
    if kind_name is None:
        return step
    kind = STEP_KINDS[kind_name]
    order = [kind_name, *kind.keys, *COMMON_KEYS]
    ordered = {key: step[key] for key in order if key in step}
    for key, spec in kind.keys.items():
        if spec.holds_steps and isinstance(ordered.get(key), list):
            ordered[key] = [_ordered_step(inner) for inner in ordered[key]]
    return ordered
