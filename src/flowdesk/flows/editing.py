"""Editing flows from the browser: the flows overview, saving a definition's text
as a new version, changing a flow's settings, comparing and restoring versions,
and starting a new flow from a template.

Settings live in the definition itself, so that `flows export` and `flows apply`
carry them: a settings change rewrites the current definition's data, writes
it out with `dump_definition`, checks that text like any other and stores it as
the next version. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from flowdesk.db.models import Flow, FlowVersion, Group, Run, User
from flowdesk.errors import DefinitionError, InputError, NotFound, Problem
from flowdesk.flows.cache import versions
from flowdesk.flows.definition import (
    FlowDefinition,
    definition_from_data,
    dump_definition,
    parse_definition,
)
from flowdesk.flows.service import ApplyOutcome, apply_definition, get_flow
from flowdesk.flows.source import read_source
from flowdesk.flows.steps import STEP_KINDS
from flowdesk.flows.text_edits import splice_top_level
from flowdesk.inputs import Form, apply_form_action, build_form, coerce_params
from flowdesk.runs.service import start_run
from flowdesk.schedules.timing import check_schedule, next_fire_times

if TYPE_CHECKING:
    from flowdesk.system import System

logger = logging.getLogger(__name__)

LINK_CLICK = "link_click"
# The top-level keys the Flow Settings form writes.
SETTINGS_KEYS = (
    "name",
    "location",
    "tags",
    "description",
    "retry_interrupted",
    "interactive",
    "schedule",
)
MISFIRE_POLICIES = {"skip": "Skip missed times", "once": "Run once to catch up"}
# What the settings offer for `retry_interrupted`: 0 (fail) up to the format's 5.
RETRY_CHOICES = {
    "0": "Fail the run",
    "1": "Start it again, once",
    **{str(n): f"Start it again, up to {n} times" for n in range(2, 6)},
}
FIRE_TIMES_SHOWN = 5
DIFF_CONTEXT_LINES = 3
SUMMARY_CHARS = 60

_PLAIN_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[ -][A-Za-z0-9]+)*")

# The text of a new flow; `create_flow` fills in the id and the name.
NEW_FLOW_TEMPLATE = """\
id: {id}
name: {name}
location: ""
tags: []
description: ""

# Flow Settings (in the editor) makes the flow interactive, gives it an input
# schema and a schedule. Steps run top to bottom.
steps:
  - status: Working...
  - log: The flow started.
  - html: |
      <p>Done.</p>
"""


# The flows overview


@dataclass(frozen=True)
class FlowRow:
    flow: Flow
    last_state: str | None  # None: never run
    last_run_at: datetime | None


@dataclass(frozen=True)
class FlowFolder:
    location: str  # "" for the top level
    rows: list[FlowRow]


def flow_overview(session: Session, text: str = "") -> list[FlowFolder]:
    """Every flow with its latest run, grouped by location and filtered by a
    case-insensitive match on id, name, location or a tag; one query."""
    # The latest run of each flow is found through the (flow_id, created_at)
    # index, so the cost does not grow with the length of a flow's history.
    latest_run_id = (
        select(Run.id)
        .where(Run.flow_id == Flow.id)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
        .correlate(Flow)
        .scalar_subquery()
    )
    query = (
        select(Flow, Run.state, Run.created_at)
        .outerjoin(Run, Run.id == latest_run_id)
        .where(Flow.deleted_at.is_(None))
        .order_by(Flow.location, Flow.name, Flow.id)
    )
    needle = text.strip().casefold()

    folders: dict[str, list[FlowRow]] = {}
    for flow, state, created_at in session.execute(query):
        if _matches(flow, needle):
            row = FlowRow(flow, state, created_at)
            folders.setdefault(flow.location, []).append(row)
    return [FlowFolder(location, rows) for location, rows in folders.items()]


def _matches(flow: Flow, needle: str) -> bool:
    if not needle:
        return True
    haystack = [flow.id, flow.name, flow.location, *flow.tags]
    return any(needle in value.casefold() for value in haystack)


def flow_count(session: Session) -> int:
    query = select(func.count()).select_from(Flow).where(Flow.deleted_at.is_(None))
    return session.scalar(query) or 0


def known_groups(session: Session) -> list[str]:
    return list(session.scalars(select(Group.name).order_by(Group.name)))


# Creating, saving and checking the text


def create_flow(
    session: Session, flow_id: str, name: str, author: str | None
) -> ApplyOutcome:
    """Store a new flow made from NEW_FLOW_TEMPLATE. Raises DefinitionError for
    an id that is taken or not a slug."""
    flow_id = flow_id.strip()
    name = name.strip() or _name_from_id(flow_id)
    existing = session.get(Flow, flow_id)
    if existing is not None and existing.deleted_at is None:
        raise DefinitionError(
            [
                Problem(
                    f"a flow with the id '{flow_id}' already exists; choose another "
                    "id, or open that flow to change it",
                    path="id",
                )
            ]
        )

    text = NEW_FLOW_TEMPLATE.format(id=_scalar(flow_id), name=_scalar(name))
    definition = parse_definition(text, "New flow")
    outcome = apply_definition(session, definition, text, author)
    logger.info("flow %s created from the template by %s", flow_id, author)
    return outcome


def _scalar(text: str) -> str:
    # Plain words read best, unless YAML would read them as something else
    # ("yes", "null"); the rest is written as a JSON string, which YAML reads
    # as it is, whatever characters it holds.
    if _PLAIN_WORDS.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _name_from_id(flow_id: str) -> str:
    return flow_id.replace("-", " ").strip().capitalize()


def check_source(text: str, flow_id: str) -> FlowDefinition:
    """Parse an editor's text for the flow `flow_id`; raises DefinitionError
    when it is invalid or names another flow."""
    text = normal_newlines(text)
    filename = f"{flow_id}.yaml"
    definition = parse_definition(text, filename)
    if definition.id != flow_id:
        line = read_source(text, filename).line_of(("id",))
        raise DefinitionError(
            [
                Problem(
                    f"id '{definition.id}' does not match this flow's id '{flow_id}'; "
                    f"a flow keeps its id, so write 'id: {flow_id}' (to make a "
                    "different flow, use New flow on the flows page)",
                    filename,
                    line,
                    "id",
                )
            ]
        )
    return definition


def normal_newlines(text: str) -> str:
    # Browsers post a textarea's lines ending in CRLF.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def save_source(
    session: Session, flow_id: str, text: str, author: str | None
) -> ApplyOutcome:
    """Store an editor's text as the flow's next version; a text that differs
    only in comments or layout is stored too."""
    get_flow(session, flow_id)
    text = normal_newlines(text)
    definition = check_source(text, flow_id)
    return apply_definition(session, definition, text, author, keep_text_changes=True)


# The outline of the steps


@dataclass(frozen=True)
class OutlineBranch:
    key: str  # "then", "else", "do"
    steps: list[OutlineStep]


@dataclass(frozen=True)
class OutlineStep:
    kind: str
    name: str | None
    path: str  # "steps[2].then[0]"
    summary: str  # a short reading of the kind's value
    branches: list[OutlineBranch] = field(default_factory=list)


def outline_of(steps: list[Any], path: str = "steps") -> list[OutlineStep]:
    """The steps of a checked definition as a tree of kinds and names."""
    outline = []
    for index, step in enumerate(steps):
        step_path = f"{path}[{index}]"
        kind = next(key for key in step if key in STEP_KINDS)
        name = step.get("name")
        branches = [
            OutlineBranch(key, outline_of(step[key], f"{step_path}.{key}"))
            for key, spec in STEP_KINDS[kind].keys.items()
            if spec.holds_steps and isinstance(step.get(key), list)
        ]
        outline.append(
            OutlineStep(
                kind=kind,
                name=str(name) if name is not None else None,
                path=step_path,
                summary=_summary(step.get(kind)),
                branches=branches,
            )
        )
    return outline


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        text = ", ".join(str(key) for key in value)
    elif isinstance(value, str):
        text = " ".join(value.split())
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > SUMMARY_CHARS:
        text = text[: SUMMARY_CHARS - 1].rstrip() + "…"
    return text


# Settings


@dataclass(frozen=True)
class SettingsForm:
    """The settings dialog's fields as typed: text stays text until saved."""

    name: str = ""
    location: str = ""
    tags: str = ""  # comma-separated
    description: str = ""
    cron: str = ""  # empty: no schedule
    timezone: str = "UTC"
    schedule_inputs: str = "{}"  # a JSON object
    schedule_enabled: bool = True
    misfire: str = "skip"
    interactive_enabled: bool = False
    input_schema: str = "true"  # JSON
    link_click: bool = False
    link_sharing: bool = False
    groups: str = ""  # comma-separated
    retry_interrupted: str = "0"  # a key of RETRY_CHOICES


def settings_form_of(definition: FlowDefinition) -> SettingsForm:
    interactive = definition.interactive
    schedule = definition.schedule
    return SettingsForm(
        name=definition.name,
        location=definition.location,
        tags=", ".join(definition.tags),
        description=definition.description,
        cron=schedule.cron if schedule else "",
        timezone=schedule.timezone if schedule else "UTC",
        schedule_inputs=_json_text(schedule.inputs if schedule else {}),
        schedule_enabled=schedule.enabled if schedule else True,
        misfire=schedule.misfire if schedule else "skip",
        interactive_enabled=interactive.enabled,
        input_schema=_json_text(interactive.input_schema),
        link_click=LINK_CLICK in interactive.allowed_triggers,
        link_sharing=interactive.link_sharing,
        groups=", ".join(interactive.groups),
        retry_interrupted=str(definition.retry_interrupted),
    )


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# Where a problem of the written definition shows in the settings form: the
# field of the longest matching path prefix.
_SETTINGS_FIELDS = {
    "name": "name",
    "location": "location",
    "tags": "tags",
    "description": "description",
    "retry_interrupted": "retry_interrupted",
    "schedule": "cron",
    "schedule.cron": "cron",
    "schedule.timezone": "timezone",
    "schedule.inputs": "schedule_inputs",
    "schedule.enabled": "schedule_enabled",
    "schedule.misfire": "misfire",
    "interactive": "interactive_enabled",
    "interactive.input_schema": "input_schema",
    "interactive.allowed_triggers": "link_click",
    "interactive.link_sharing": "link_sharing",
    "interactive.groups": "groups",
}


def settings_field(problem: Problem) -> str:
    """The settings form field a problem belongs to; "" for none of them."""
    path = problem.path
    while path:
        if path in _SETTINGS_FIELDS:
            return _SETTINGS_FIELDS[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return ""


def problems_by_field(problems: Iterable[Problem]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(settings_field(problem), []).append(problem.message)
    return found


def apply_settings(
    session: Session, flow_id: str, form: SettingsForm, author: str | None
) -> ApplyOutcome:
    """Write the settings into the flow's current definition and store it as the
    next version. Raises DefinitionError whose problems' paths name the settings
    (see `settings_field`); nothing else in the definition changes."""
    flow = get_flow(session, flow_id)
    if flow.current_version is None:
        raise NotFound(f"The flow '{flow_id}' has no saved version.")
    data = copy.deepcopy(flow.current_version.definition)

    schema, schema_problems = check_input_schema(form.input_schema)
    inputs, input_problems = _read_schedule_inputs(form.schedule_inputs)
    retry_problems = _retry_problems(form.retry_interrupted)
    if schema_problems or input_problems or retry_problems:
        problems = [problem.as_problem() for problem in schema_problems]
        raise DefinitionError([*problems, *input_problems, *retry_problems])

    data.update(
        name=form.name,
        location=form.location,
        tags=_split_list(form.tags),
        description=form.description,
    )
    data["interactive"] = _interactive_data(data["interactive"], form, schema)
    data["schedule"] = _schedule_data(form, inputs)
    # Stored only when asked for, as the loader does, so that other flows'
    # definitions (and digests) stay as they were.
    data.pop("retry_interrupted", None)
    if form.retry_interrupted != "0":
        data["retry_interrupted"] = int(form.retry_interrupted)

    text = _settings_text(flow.current_version, data)
    try:
        definition = parse_definition(text, "Flow Settings")
    except DefinitionError as error:
        # The lines are those of text the user never saw.
        raise DefinitionError(
            [Problem(p.message, p.file, None, p.path) for p in error.problems]
        ) from None
    outcome = apply_definition(session, definition, text, author)
    logger.info("settings of flow %s saved by %s", flow_id, author)
    return outcome


def _settings_text(stored: FlowVersion, data: dict[str, Any]) -> str:
    """The text of the next version: the stored text with only the changed
    settings rewritten, so that comments and layout elsewhere survive; the whole
    definition written out when the text cannot be edited in place."""
    dumped = dump_definition(definition_from_data(data))
    changed = [
        key for key in SETTINGS_KEYS if stored.definition.get(key) != data.get(key)
    ]
    spliced = splice_top_level(stored.source, dumped, changed)
    if spliced is None:
        return dumped
    try:
        matches = parse_definition(spliced, "Flow Settings").data == (
            parse_definition(dumped, "Flow Settings").data
        )
    except DefinitionError:
        matches = False
    if not matches:
        # Never store a text that means something other than the settings say.
        logger.warning("flow %s: settings written out in full", stored.flow_id)
        return dumped
    return spliced


def _retry_problems(text: str) -> list[Problem]:
    if text in RETRY_CHOICES:
        return []
    choices = ", ".join(RETRY_CHOICES)
    message = f"retry_interrupted must be one of {choices}, got {text!r}"
    return [Problem(message, "Flow Settings", None, "retry_interrupted")]


def _interactive_data(
    stored: dict[str, Any], form: SettingsForm, schema: Any
) -> dict[str, Any]:
    # Triggers the form does not show are kept as they are.
    triggers = [name for name in stored["allowed_triggers"] if name != LINK_CLICK]
    if form.link_click:
        triggers.append(LINK_CLICK)
    return {
        "enabled": form.interactive_enabled,
        "input_schema": schema,
        "allowed_triggers": triggers,
        "link_sharing": form.link_sharing,
        "groups": _split_list(form.groups),
    }


def _schedule_data(form: SettingsForm, inputs: dict[str, Any]) -> dict[str, Any] | None:
    if not form.cron.strip():
        return None
    return {
        "cron": form.cron.strip(),
        "timezone": form.timezone.strip() or "UTC",
        "inputs": inputs,
        "enabled": form.schedule_enabled,
        "misfire": form.misfire,
    }


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _read_schedule_inputs(text: str) -> tuple[dict[str, Any], list[Problem]]:
    if not text.strip():
        return {}, []
    path = "schedule.inputs"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return {}, [Problem(_json_syntax_message(error), "Schedule inputs", path=path)]
    if not isinstance(value, dict):
        message = (
            'the inputs must be a JSON object such as {"customer": "ACME"}, got '
            f"{type(value).__name__ if value is not None else 'null'}"
        )
        return {}, [Problem(message, "Schedule inputs", path=path)]
    return value, []


# The input schema, as typed into the Input Schema editor

_SCHEMA_PATH = "interactive.input_schema"
_SCHEMA_FILE = "Input Schema"


@dataclass(frozen=True)
class SchemaProblem:
    message: str
    line: int | None  # of the typed text
    column: int | None = None  # known for JSON syntax errors
    path: str = ""  # inside the schema: "properties.items.minimum"

    def as_problem(self) -> Problem:
        path = f"{_SCHEMA_PATH}.{self.path}" if self.path else _SCHEMA_PATH
        return Problem(self.message, _SCHEMA_FILE, self.line, path)


def check_input_schema(text: str) -> tuple[Any, list[SchemaProblem]]:
    """The input schema typed as JSON, checked by the same rules as a flow file,
    and its problems; blank text means `true` (no input)."""
    if not text.strip():
        return True, []
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        message = _json_syntax_message(error)
        return None, [SchemaProblem(message, error.lineno, error.colno)]
    if schema is True:
        return True, []

    # The typed text goes into a minimal flow from its second line on, so the
    # checker's lines are the text's lines plus one.
    wrapped = (
        '{"id": "schema-check", "name": "Schema check", "steps": [], '
        '"interactive": {"input_schema":\n' + text + "\n}}"
    )
    try:
        parse_definition(wrapped, _SCHEMA_FILE)
    except DefinitionError as error:
        problems = [
            SchemaProblem(
                p.message,
                None if p.line is None else max(p.line - 1, 1),
                None,
                p.path.removeprefix(_SCHEMA_PATH).lstrip("."),
            )
            for p in error.problems
            if p.path.startswith(_SCHEMA_PATH)
        ]
        if problems:
            return None, problems
    return schema, []


def _json_syntax_message(error: json.JSONDecodeError) -> str:
    return (
        f"the text is not valid JSON: {error.msg} at line {error.lineno}, "
        f"column {error.colno}"
    )


@dataclass(frozen=True)
class SchemaPreview:
    problems: list[SchemaProblem]
    form: Form | None  # the launch form, when the schema is valid


def preview_input_schema(text: str) -> SchemaPreview:
    """Check typed schema text and build the launch form flow users would get."""
    schema, problems = check_input_schema(text)
    if problems:
        return SchemaPreview(problems, None)
    return SchemaPreview([], build_form(schema))


# Schedules


@dataclass(frozen=True)
class _Timing:
    cron: str
    timezone: str


@dataclass(frozen=True)
class SchedulePreview:
    times: list[datetime]  # aware, in the schedule's timezone
    problem: str | None = None


def preview_schedule(
    cron: str, timezone: str, after: datetime | None = None
) -> SchedulePreview:
    """The next fire times of a cron expression typed in the Schedule tab."""
    cron = cron.strip()
    timezone = timezone.strip() or "UTC"
    if not cron:
        return SchedulePreview([])
    problem = check_schedule(cron, timezone)
    if problem is not None:
        return SchedulePreview([], problem)
    return SchedulePreview(
        next_fire_times(_Timing(cron, timezone), FIRE_TIMES_SHOWN, after)
    )


# Versions


def version_history(session: Session, flow_id: str) -> list[FlowVersion]:
    """Every version of the flow, newest first."""
    get_flow(session, flow_id)
    query = (
        select(FlowVersion)
        .where(FlowVersion.flow_id == flow_id)
        .order_by(FlowVersion.number.desc())
    )
    return list(session.scalars(query))


def get_version(session: Session, flow_id: str, number: int) -> FlowVersion:
    get_flow(session, flow_id)
    # A number beyond a 64-bit column matches nothing, and the driver would
    # raise on it rather than find nothing.
    version = None
    if 0 < number < 2**63:
        version = session.scalar(
            select(FlowVersion).where(
                FlowVersion.flow_id == flow_id, FlowVersion.number == number
            )
        )
    if version is None:
        raise NotFound(f"The flow '{flow_id}' has no version {number}.")
    return version


def restore_version(
    session: Session, flow_id: str, number: int, author: str | None
) -> ApplyOutcome:
    """Store an old version's text again as the flow's newest version."""
    old = get_version(session, flow_id, number)
    # Checked again: the rules may have grown stricter since it was stored.
    definition = check_source(old.source, flow_id)
    outcome = apply_definition(
        session, definition, old.source, author, keep_text_changes=True
    )
    logger.info(
        "flow %s: version %s restored as version %s by %s",
        flow_id,
        number,
        outcome.version,
        author,
    )
    return outcome


DiffKind = Literal["hunk", "context", "added", "removed"]


@dataclass(frozen=True)
class DiffLine:
    kind: DiffKind
    text: str
    old_number: int | None = None
    new_number: int | None = None


def diff_sources(
    old: str, new: str, context: int = DIFF_CONTEXT_LINES
) -> list[DiffLine]:
    """A unified diff of two texts as rows with line numbers; [] when equal."""
    old_lines = old.splitlines()
    new_lines = new.splitlines()
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        rows.append(DiffLine("hunk", _hunk_header(first, last)))
        for tag, old_start, old_end, new_start, new_end in group:
            if tag == "equal":
                for offset, text in enumerate(old_lines[old_start:old_end]):
                    rows.append(
                        DiffLine(
                            "context",
                            text,
                            old_start + offset + 1,
                            new_start + offset + 1,
                        )
                    )
                continue
            for offset, text in enumerate(old_lines[old_start:old_end]):
                rows.append(DiffLine("removed", text, old_start + offset + 1, None))
            for offset, text in enumerate(new_lines[new_start:new_end]):
                rows.append(DiffLine("added", text, None, new_start + offset + 1))
    return rows


def _hunk_header(
    first: tuple[str, int, int, int, int], last: tuple[str, int, int, int, int]
) -> str:
    # The `@@ -start,count +start,count @@` line of a unified diff.
    old = _hunk_range(first[1], last[2])
    new = _hunk_range(first[3], last[4])
    return f"@@ -{old} +{new} @@"


def _hunk_range(start: int, end: int) -> str:
    length = end - start
    beginning = start + 1 if length else start
    return f"{beginning}" if length == 1 else f"{beginning},{length}"


# Runs

RECENT_RUNS = 10
_ACTION_FIELD = "_action"  # a list's Add or Remove without JavaScript


def run_count(session: Session, flow_id: str) -> int:
    query = select(func.count()).select_from(Run).where(Run.flow_id == flow_id)
    return session.scalar(query) or 0


def recent_runs(session: Session, flow_id: str, limit: int = RECENT_RUNS) -> list[Run]:
    """The flow's newest runs, with who started them loaded."""
    query = (
        select(Run)
        .where(Run.flow_id == flow_id)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(limit)
        .options(selectinload(Run.user))
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class TestRunPage:
    """Either the test run started, or its form has to be shown (again)."""

    __test__ = False  # not a pytest test class, whatever its name says

    flow: Flow
    definition: FlowDefinition
    form: Form
    run: Run | None = None
    status_code: int = 200


def open_test_run(session: Session, flow_id: str) -> TestRunPage:
    flow, definition = _current(session, flow_id)
    return TestRunPage(flow, definition, build_form(definition.input_schema))


def start_test_run(
    system: System, flow_id: str, params: Iterable[tuple[str, str]], user: User
) -> TestRunPage:
    """Start a run from the test form (trigger `api`), or return the form with
    its errors, or with a list entry added or removed."""
    params = list(params)
    with system.db.reading() as session:
        page = open_test_run(session, flow_id)
    schema = page.definition.input_schema
    data = coerce_params(schema, params)

    action = next((value for name, value in params if name == _ACTION_FIELD), "")
    if action:
        data, extra_items = apply_form_action(schema, data, action)
        form = build_form(schema, data, extra_items=extra_items)
        return replace(page, form=form)

    try:
        run = start_run(system, flow_id, data, "api", user=user)
    except InputError as error:
        form = build_form(schema, data, error.errors)
        return replace(page, form=form, status_code=422)
    return replace(page, run=run)


# What the editor and the settings pages show


@dataclass(frozen=True)
class SettingsView:
    flow: Flow
    form: SettingsForm
    problems: dict[str, list[str]]  # by form field; "" for the form as a whole
    preview: SchemaPreview
    fire_times: SchedulePreview
    known_groups: list[str]
    retry_choices: dict[str, str] = field(default_factory=lambda: RETRY_CHOICES)


@dataclass(frozen=True)
class EditorView:
    flow: Flow
    version: FlowVersion
    definition: FlowDefinition
    outline: list[OutlineStep]
    runs: list[Run]
    settings: SettingsView


def editor_view(session: Session, flow_id: str) -> EditorView:
    flow, definition = _current(session, flow_id)
    assert flow.current_version is not None, "_current checked the version"
    return EditorView(
        flow=flow,
        version=flow.current_version,
        definition=definition,
        outline=outline_of(definition.steps),
        runs=recent_runs(session, flow_id),
        settings=settings_view(session, flow_id),
    )


def settings_view(
    session: Session,
    flow_id: str,
    form: SettingsForm | None = None,
    problems: Iterable[Problem] = (),
) -> SettingsView:
    """The settings form with the stored values, or with `form` as typed and
    the problems found in it."""
    flow, definition = _current(session, flow_id)
    form = form or settings_form_of(definition)
    return SettingsView(
        flow=flow,
        form=form,
        problems=problems_by_field(problems),
        preview=preview_input_schema(form.input_schema),
        fire_times=preview_schedule(form.cron, form.timezone),
        known_groups=known_groups(session),
    )


def _current(session: Session, flow_id: str) -> tuple[Flow, FlowDefinition]:
    flow = get_flow(session, flow_id)
    version = flow.current_version
    if version is None:
        raise NotFound(f"The flow '{flow_id}' has no saved version.")
    return flow, versions.load(version.id, version.definition).definition
