"""Schedules: flows that run on a timer, independently of interactive mode.

`timing` (when a schedule fires) is pure and is what other packages import;
`service` and `scheduler` need the database and are imported by their users
directly, so that the flow definition can check a schedule without a cycle.
"""

from flowdesk.schedules.timing import (
    ScheduleClock,
    check_schedule,
    next_fire_times,
    parse_schedule,
)

__all__ = ["ScheduleClock", "check_schedule", "next_fire_times", "parse_schedule"]
