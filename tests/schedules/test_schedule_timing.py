"""Fire times: cron read on the schedule's wall clock, across daylight saving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowdesk.errors import FlowdeskError
from flowdesk.schedules import check_schedule, next_fire_times, parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Timing:
    cron: str
    timezone: str = "UTC"


def local_times(cron: str, timezone: str, after: datetime, count: int) -> list[str]:
    """Fire times as the wall clock shows them, with the zone's abbreviation."""
    times = next_fire_times(Timing(cron, timezone), count, after)
    return [moment.strftime("%m-%d %H:%M %Z") for moment in times]


def test_next_fire_times_weekday_mornings_skip_the_weekend() -> None:
    friday_noon = datetime(2026, 12, 4, 12, tzinfo=BERLIN)
    assert local_times("0 7 * * 1-5", "Europe/Berlin", friday_noon, 3) == [
        "12-07 07:00 CET",
        "12-08 07:00 CET",
        "12-09 07:00 CET",
    ]


def test_next_fire_times_are_in_the_schedule_timezone() -> None:
    after = datetime(2026, 6, 1, tzinfo=UTC)
    times = next_fire_times(Timing("0 9 * * *", "America/New_York"), 2, after)
    assert [moment.tzinfo for moment in times] == [NEW_YORK, NEW_YORK]
    assert times[0] == datetime(2026, 6, 1, 13, tzinfo=UTC)  # 09:00 EDT


def test_next_fire_times_default_to_five_after_now() -> None:
    before = datetime.now(UTC)
    times = next_fire_times(Timing("* * * * *"))
    assert len(times) == 5
    assert before < times[0] <= before + timedelta(minutes=1)


def test_next_fire_times_refuse_a_naive_time() -> None:
    with pytest.raises(FlowdeskError, match="no timezone"):
        next_fire_times(Timing("@daily"), after=datetime(2026, 1, 1))


# Daylight saving. Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST,
# 2026-10-25 03:00 CEST falls back to 02:00 CET. America/New_York: 2026-03-08
# 02:00 EST jumps to 03:00 EDT, 2026-11-01 02:00 EDT falls back to 01:00 EST.

DST_CASES = {
    "berlin-daily-in-the-spring-gap": (
        "30 2 * * *",
        "Europe/Berlin",
        datetime(2026, 3, 28, 12, tzinfo=BERLIN),
        ["03-29 03:00 CEST", "03-30 02:30 CEST"],
    ),
    "berlin-daily-in-the-repeated-hour": (
        "30 2 * * *",
        "Europe/Berlin",
        datetime(2026, 10, 24, 12, tzinfo=BERLIN),
        ["10-25 02:30 CEST", "10-26 02:30 CET"],
    ),
    "berlin-hourly-over-the-spring-gap": (
        "0 * * * *",
        "Europe/Berlin",
        datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN),
        ["03-29 01:00 CET", "03-29 03:00 CEST", "03-29 04:00 CEST"],
    ),
    "berlin-hourly-over-the-repeated-hour": (
        "0 * * * *",
        "Europe/Berlin",
        datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN),
        ["10-25 01:00 CEST", "10-25 02:00 CEST", "10-25 03:00 CET"],
    ),
    "new-york-daily-in-the-spring-gap": (
        "30 2 * * *",
        "America/New_York",
        datetime(2026, 3, 7, 12, tzinfo=NEW_YORK),
        ["03-08 03:00 EDT", "03-09 02:30 EDT"],
    ),
    "new-york-daily-after-the-repeated-hour": (
        "30 2 * * *",
        "America/New_York",
        datetime(2026, 10, 31, 12, tzinfo=NEW_YORK),
        ["11-01 02:30 EST", "11-02 02:30 EST"],
    ),
    "new-york-daily-in-the-repeated-hour": (
        "30 1 * * *",
        "America/New_York",
        datetime(2026, 10, 31, 12, tzinfo=NEW_YORK),
        ["11-01 01:30 EDT", "11-02 01:30 EST"],
    ),
    "new-york-hourly-over-the-spring-gap": (
        "0 * * * *",
        "America/New_York",
        datetime(2026, 3, 8, 0, 30, tzinfo=NEW_YORK),
        ["03-08 01:00 EST", "03-08 03:00 EDT", "03-08 04:00 EDT"],
    ),
    "new-york-hourly-over-the-repeated-hour": (
        "0 * * * *",
        "America/New_York",
        datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK),
        ["11-01 01:00 EDT", "11-01 02:00 EST", "11-01 03:00 EST"],
    ),
    "new-york-quarter-hours-fire-once-in-the-spring-gap": (
        "*/15 * * * *",
        "America/New_York",
        datetime(2026, 3, 8, 1, 40, tzinfo=NEW_YORK),
        ["03-08 01:45 EST", "03-08 03:00 EDT", "03-08 03:15 EDT"],
    ),
}


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "expected"),
    list(DST_CASES.values()),
    ids=list(DST_CASES),
)
def test_next_fire_times_across_daylight_saving(
    cron: str, timezone: str, after: datetime, expected: list[str]
) -> None:
    assert local_times(cron, timezone, after, len(expected)) == expected


def test_next_fire_times_gap_fire_is_the_moment_clocks_jump() -> None:
    after = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    [fire] = next_fire_times(Timing("30 2 * * *", "Europe/Berlin"), 1, after)
    assert fire == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_next_fire_after_the_second_pass_of_a_repeated_hour() -> None:
    # 01:10 EST is the second 01:10 of the night; 01:30 fired in the first pass.
    second_pass = datetime(2026, 11, 1, 1, 10, tzinfo=NEW_YORK, fold=1)
    clock = parse_schedule("30 1 * * *", "America/New_York")
    assert clock.next_after(second_pass) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_latest_fire_during_the_second_pass_is_the_end_of_the_first() -> None:
    second_pass = datetime(2026, 11, 1, 1, 10, tzinfo=NEW_YORK, fold=1)
    clock = parse_schedule("* * * * *", "America/New_York")
    latest = clock.latest_at_or_before(second_pass)
    assert latest.astimezone(NEW_YORK).strftime("%H:%M %Z") == "01:59 EDT"


def test_latest_fire_includes_a_fire_exactly_at_the_moment() -> None:
    clock = parse_schedule("0 3 * * *", "Europe/Berlin")
    at = datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert clock.latest_at_or_before(at) == at


@settings(max_examples=200, deadline=None)
@given(
    cron=st.sampled_from(["30 2 * * *", "0 * * * *", "*/15 * * * *", "30 1 * * 0"]),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    offset=st.integers(min_value=-3 * 24 * 3600, max_value=3 * 24 * 3600),
    transition=st.sampled_from(
        [
            datetime(2026, 3, 29, 1, tzinfo=UTC),
            datetime(2026, 10, 25, 1, tzinfo=UTC),
            datetime(2026, 3, 8, 7, tzinfo=UTC),
            datetime(2026, 11, 1, 6, tzinfo=UTC),
            datetime(2026, 4, 4, 16, tzinfo=UTC),
            datetime(2026, 10, 3, 16, tzinfo=UTC),
        ]
    ),
)
def test_fire_times_agree_with_each_other_near_transitions(
    cron: str, zone: str, offset: int, transition: datetime
) -> None:
    clock = parse_schedule(cron, zone)
    instant = transition + timedelta(seconds=offset)

    following = clock.next_after(instant)
    latest = clock.latest_at_or_before(instant)
    assert latest <= instant < following
    # Nothing fires between the two, from either direction.
    assert clock.next_after(latest) == following
    assert clock.latest_at_or_before(following - timedelta(seconds=1)) == latest


ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@pytest.mark.parametrize(("alias", "fields"), ALIASES.items(), ids=list(ALIASES))
def test_next_fire_times_shorthands_match_their_fields(alias: str, fields: str) -> None:
    after = datetime(2026, 5, 17, 13, 45, tzinfo=BERLIN)
    assert next_fire_times(Timing(alias, "Europe/Berlin"), 3, after) == (
        next_fire_times(Timing(fields, "Europe/Berlin"), 3, after)
    )


def test_next_fire_times_daily_fires_at_local_midnight() -> None:
    after = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert local_times("@daily", "Europe/Berlin", after, 2) == [
        "03-29 00:00 CET",
        "03-30 00:00 CEST",
    ]


def test_next_fire_times_accept_shorthands_in_any_case() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_fire_times(Timing("@Daily"), 1, after) == next_fire_times(
        Timing("0 0 * * *"), 1, after
    )


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "'61 * * * *' has an invalid minute field '61'; expected 0-59"),
        ("0 25 * * *", "invalid hour field '25'; expected 0-23"),
        ("0 7 * 13 *", "invalid month field '13'; expected 1-12 or jan-dec"),
        ("0 7 * * funday", "invalid day-of-week field 'funday'"),
        ("0 0 * * * *", "'0 0 * * * *' has 6 fields; expected five fields"),
        ("0 7 *", "'0 7 *' has 3 fields"),
        ("", "'' has 0 fields"),
        ("@fortnightly", "shorthand '@fortnightly' is not known"),
        ("0 0 30 2 *", "'0 0 30 2 *' never matches a date"),
    ],
)
def test_check_schedule_names_the_bad_cron(cron: str, message: str) -> None:
    problem = check_schedule(cron, "UTC")
    assert problem is not None
    assert message in problem


def test_check_schedule_lists_the_accepted_forms() -> None:
    problem = check_schedule("0 0 * * * *", "UTC")
    assert problem is not None
    assert "@hourly, @daily, @midnight, @weekly, @monthly, @yearly" in problem


@pytest.mark.parametrize("timezone", ["Europe/Berln", "CEST+2", "", "../etc/passwd"])
def test_check_schedule_names_an_unknown_timezone(timezone: str) -> None:
    problem = check_schedule("0 7 * * *", timezone)
    assert problem == (
        f"The timezone {timezone!r} is not known; expected an IANA name such as "
        "'Europe/Berlin', 'America/New_York' or 'UTC'."
    )


@pytest.mark.parametrize(
    ("cron", "timezone"),
    [
        ("0 7 * * 1-5", "Europe/Berlin"),
        ("*/15 9-17 * * mon-fri", "America/New_York"),
        ("0 0 L * *", "UTC"),
        ("@daily", "Asia/Kolkata"),
    ],
)
def test_check_schedule_accepts_valid_schedules(cron: str, timezone: str) -> None:
    assert check_schedule(cron, timezone) is None


def test_parse_schedule_raises_the_check_message() -> None:
    with pytest.raises(FlowdeskError, match="invalid minute field '99'"):
        parse_schedule("99 * * * *", "UTC")
