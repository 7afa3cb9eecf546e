"""When a schedule fires.

Cron fields are matched against the wall clock of the schedule's timezone, and
croniter only ever sees naive wall times, so no zone logic of its own applies.
Turning a matching wall time into an instant follows two rules for the hours a
daylight-saving change skips or repeats:

- a wall time that does not exist (clocks jump forward) fires once, at the first
  moment after the gap: 02:30 on Berlin's spring-forward day fires at 03:00;
- a wall time that happens twice (clocks fall back) fires once, at its first
  occurrence; the repeated hour does not fire again.

This module is pure (no database), so the flow definition can use
`check_schedule` when a flow is applied.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from croniter import CroniterBadDateError, CroniterError, croniter

from flowdesk.db.types import utcnow
from flowdesk.errors import FlowdeskError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-6 or sun-sat"),
)

_EXPECTED = (
    "expected five fields (minute hour day-of-month month day-of-week) such as "
    "'0 7 * * 1-5', or one of " + ", ".join(ALIASES)
)


class ScheduleTiming(Protocol):
    """The part of a flow's schedule settings that decides when it fires."""

    @property
    def cron(self) -> str: ...

    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class ScheduleClock:
    """A checked cron expression read on the wall clock of `zone`."""

    expression: str  # five fields; aliases are already expanded
    zone: zoneinfo.ZoneInfo

    def next_after(self, instant: datetime) -> datetime:
        """The first fire time strictly after `instant`, in UTC."""
        start = _wall(instant, self.zone)
        matches = croniter(self.expression, start)
        while True:
            candidate = _instant(matches.get_next(datetime), self.zone)
            # A wall time inside a repeated hour can stand for an instant before
            # `instant`: it already fired at its first occurrence.
            if candidate > instant:
                return candidate

    def latest_at_or_before(self, instant: datetime) -> datetime:
        """The last fire time at or before `instant`, in UTC."""
        # croniter's backward search is exclusive; a microsecond makes it include
        # a fire time that falls exactly on `instant`.
        start = _wall(instant, self.zone) + timedelta(microseconds=1)
        matches = croniter(self.expression, start)
        latest = _instant(matches.get_prev(datetime), self.zone)
        while latest > instant:
            latest = _instant(matches.get_prev(datetime), self.zone)

        # During the second pass of a repeated hour the wall clock is behind
        # the first pass, so walking back on it misses the first pass's later
        # fire times; walk forward over them.
        following = self.next_after(latest)
        while following <= instant:
            latest = following
            following = self.next_after(latest)
        return latest


def parse_schedule(cron: str, timezone: str) -> ScheduleClock:
    """Check a cron expression and timezone; raises FlowdeskError naming the bad
    value and what was expected."""
    message = check_schedule(cron, timezone)
    if message is not None:
        raise FlowdeskError(message)
    return ScheduleClock(_expand_alias(cron), zoneinfo.ZoneInfo(timezone))


def check_schedule(cron: str, timezone: str) -> str | None:
    """A sentence saying what is wrong with `cron` or `timezone`, or None."""
    return cron_problem(cron) or _timezone_problem(timezone)


def next_fire_times(
    schedule: ScheduleTiming, count: int = 5, after: datetime | None = None
) -> list[datetime]:
    """The next `count` fire times after `after` (default: now), as aware times
    in the schedule's own timezone."""
    clock = parse_schedule(schedule.cron, schedule.timezone)
    instant = after if after is not None else utcnow()
    if instant.tzinfo is None:
        raise FlowdeskError(
            f"The time {instant.isoformat()!r} has no timezone; give an aware time."
        )

    times = []
    for _ in range(count):
        instant = clock.next_after(instant)
        times.append(instant.astimezone(clock.zone))
    return times


def _expand_alias(cron: str) -> str:
    expression = " ".join(cron.split())
    return ALIASES.get(expression.lower(), expression)


def cron_problem(cron: str) -> str | None:
    expression = _expand_alias(cron)
    if expression.startswith("@"):
        return f"The cron shorthand {cron!r} is not known; {_EXPECTED}."
    fields = expression.split()
    if len(fields) != len(FIELDS):
        return f"The cron expression {cron!r} has {len(fields)} fields; {_EXPECTED}."

    # Each field on its own, so that the message can name the one that is wrong.
    for index, (name, accepted) in enumerate(FIELDS):
        alone = ["*"] * len(FIELDS)
        alone[index] = fields[index]
        if not croniter.is_valid(" ".join(alone)):
            return (
                f"The cron expression {cron!r} has an invalid {name} field "
                f"{fields[index]!r}; expected {accepted}, a list, a range or a step "
                "such as '*/15'."
            )

    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        return f"The cron expression {cron!r} never matches a date in the calendar."
    except CroniterError as error:
        return f"The cron expression {cron!r} cannot be read ({error}); {_EXPECTED}."
    return None


def _timezone_problem(timezone: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return (
            f"The timezone {timezone!r} is not known; expected an IANA name such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'."
        )
    return None


def _wall(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("fire times are computed from aware datetimes only")
    return instant.astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant a naive wall time stands for, by the module's rules."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant after the gap that swallowed `wall` (the transition)."""
    # Read with the offsets from before and after the change, the missing wall
    # time gives two instants with the transition between them.
    readings = [
        wall.replace(tzinfo=zone, fold=fold).astimezone(UTC).timestamp()
        for fold in (0, 1)
    ]
    low, high = int(min(readings)), int(max(readings)) + 1

    # Bisect on whole seconds for the first instant whose wall time is past it.
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) > wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
