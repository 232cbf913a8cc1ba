"""Business-time arithmetic: worked examples a reader can check by hand, then properties."""

from __future__ import annotations

import re
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportwidget.sla.business_time import (
    END_OF_DAY,
    BusinessCalendar,
    format_duration,
    format_hours,
    parse_duration,
    parse_hours,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = "mon-fri 09:00-17:30"


def london(*args: int) -> datetime:
    """Return a London wall-clock datetime."""
    return datetime(*args, tzinfo=LONDON)


def utc(*args: int) -> datetime:
    """Return a UTC datetime."""
    return datetime(*args, tzinfo=UTC)


# --- parsing and formatting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "weekly"),
    [
        (OFFICE, {d: [(time(9), time(17, 30))] for d in range(5)}),
        (
            "mon-thu 09:00-17:30, fri 09:00-16:00",
            {**{d: [(time(9), time(17, 30))] for d in range(4)}, 4: [(time(9), time(16))]},
        ),
        (
            "mon,wed 08:00-12:00, mon,wed 13:00-17:00",
            {d: [(time(8), time(12)), (time(13), time(17))] for d in (0, 2)},
        ),
        ("Sat - Sun 10:00 \u2013 14:00", {d: [(time(10), time(14))] for d in (5, 6)}),
        ("fri-mon 9:00-12:00", {d: [(time(9), time(12))] for d in (4, 5, 6, 0)}),
        ("sunday 22:00-24:00", {6: [(time(22), END_OF_DAY)]}),
        ("mon 09:00-12:00 12:00-17:00", {0: [(time(9), time(17))]}),
    ],
)
def test_parse_hours(spec: str, weekly: dict) -> None:
    assert parse_hours(spec) == weekly


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        (OFFICE, OFFICE),
        ("mon-thu 09:00-17:30, fri 09:00-16:00", "mon-thu 09:00-17:30, fri 09:00-16:00"),
        ("mon,wed 08:00-12:00, mon,wed 13:00-17:00", "mon,wed 08:00-12:00 13:00-17:00"),
        ("sun 10:00-14:00, sat 10:00-14:00", "sat,sun 10:00-14:00"),
        ("fri-mon 9:00-12:00", "mon,fri-sun 09:00-12:00"),
        ("monday-sunday 00:00-24:00", "mon-sun 00:00-24:00"),
    ],
)
def test_format_hours_is_canonical(spec: str, canonical: str) -> None:
    assert format_hours(parse_hours(spec)) == canonical
    assert parse_hours(canonical) == parse_hours(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no business hours given"),
        ("mon-fri", "no opening times given for mon, tue, wed, thu, fri"),
        ("09:00-17:00", "time range '09:00-17:00' has no day before it"),
        ("mon-fry 09:00-17:00", "unknown day 'fry': use mon, tue, wed, thu, fri, sat or sun"),
        ("mon 17:00-09:00", "time range 17:00-09:00 must end after it starts"),
        ("mon 09:00-09:00", "time range 09:00-09:00 must end after it starts"),
        ("mon 09:00-12:00 11:00-13:00", "on mon, 09:00-12:00 overlaps 11:00-13:00"),
        ("mon-fri 09:00-12:00, wed 11:00-13:00", "on wed, 09:00-12:00 overlaps 11:00-13:00"),
        ("mon 25:00-26:00", "bad time '25:00': use HH:MM from 00:00 to 24:00"),
        ("mon 09:60-10:00", "bad time '09:60'"),
        ("mon 9-17", "bad time '9'"),
        ("mon 09:00", "bad time range '09:00': write HH:MM-HH:MM"),
        ("mon 09:00-17:00-18:00", "bad time range '09:00-17:00-18:00'"),
        ("mon 24:00-24:00", "24:00 can only end a range"),
        ("mon+tue 09:00-17:00", "cannot read 'mon+tue' in business hours"),
    ],
)
def test_parse_hours_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_hours(spec)


@pytest.mark.parametrize(
    ("spec", "duration", "canonical"),
    [
        ("4h", timedelta(hours=4), "4h"),
        ("30m", timedelta(minutes=30), "30m"),
        ("1h30m", timedelta(hours=1, minutes=30), "1h30m"),
        ("16h", timedelta(hours=16), "16h"),
        (" 1H 30M ", timedelta(hours=1, minutes=30), "1h30m"),
        ("90m", timedelta(minutes=90), "1h30m"),
    ],
)
def test_parse_and_format_duration(spec: str, duration: timedelta, canonical: str) -> None:
    assert parse_duration(spec) == duration
    assert format_duration(duration) == canonical


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "bad duration ''"),
        ("4", "bad duration '4': write hours and minutes like 4h, 30m or 1h30m"),
        ("4x", "bad duration '4x'"),
        ("1.5h", "bad duration '1.5h'"),
        ("-4h", "bad duration '-4h'"),
        ("30m1h", "bad duration '30m1h'"),
        ("0h", "duration '0h' must be more than zero"),
        ("0h0m", "duration '0h0m' must be more than zero"),
        ("10001h", "duration '10001h' is too long: at most 10000h"),
    ],
)
def test_parse_duration_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(spec)


def test_format_duration_drops_seconds_and_rejects_negative() -> None:
    assert format_duration(timedelta(hours=2, minutes=5, seconds=59)) == "2h5m"
    assert format_duration(timedelta(0)) == "0m"
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(minutes=-1))


# --- calendars: worked examples ----------------------------------------------------------


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE, "GB")
    # Fri 16:00-17:30 is 1h30m; the remaining 2h30m run from Mon 09:00.
    due = cal.add(london(2026, 6, 5, 16, 0), timedelta(hours=4))
    assert due == london(2026, 6, 8, 11, 30)
    assert due.tzinfo is UTC


def test_start_after_hours_begins_at_next_opening() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE)
    assert cal.add(london(2026, 6, 6, 10, 0), timedelta(minutes=30)) == london(2026, 6, 8, 9, 30)
    assert cal.add(london(2026, 6, 8, 20, 0), timedelta(hours=1)) == london(2026, 6, 9, 10, 0)


def test_a_full_day_ends_at_closing_time_not_next_morning() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE)
    due = cal.add(london(2026, 6, 8, 9, 0), timedelta(hours=8, minutes=30))
    assert due == london(2026, 6, 8, 17, 30)
    assert not cal.is_open(due)


def test_zero_duration_is_the_start_itself() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE)
    assert cal.add(london(2026, 6, 6, 10, 0), timedelta(0)) == london(2026, 6, 6, 10, 0)


def test_spring_forward_keeps_local_opening_hours() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE, "GB")
    # Clocks go forward on Sun 29 March 2026: Friday is GMT, Monday is BST.
    due = cal.add(london(2026, 3, 27, 16, 0), timedelta(hours=4))
    assert due == london(2026, 3, 30, 11, 30) == utc(2026, 3, 30, 10, 30)
    assert cal.next_opening(london(2026, 3, 21, 12, 0)) == utc(2026, 3, 23, 9, 0)
    assert cal.next_opening(london(2026, 3, 28, 12, 0)) == utc(2026, 3, 30, 8, 0)
    # The hour lost on Sunday is not business time: Fri 09:00 to Mon 09:00 is one day.
    assert cal.between(london(2026, 3, 27, 9, 0), london(2026, 3, 30, 9, 0)) == timedelta(
        hours=8, minutes=30
    )


def test_fall_back_keeps_local_opening_hours() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE, "GB")
    # Clocks go back on Sun 25 October 2026: Friday is BST, Monday is GMT (= UTC).
    due = cal.add(london(2026, 10, 23, 16, 0), timedelta(hours=4))
    assert due == utc(2026, 10, 26, 11, 30)


def test_new_york_spring_forward() -> None:
    cal = BusinessCalendar("America/New_York", OFFICE, "US-NY")
    # Clocks go forward on Sun 8 March 2026: 16:00 EST is 21:00 UTC, 11:30 EDT is 15:30 UTC.
    start = datetime(2026, 3, 6, 16, 0, tzinfo=NEW_YORK)
    assert cal.add(start, timedelta(hours=4)) == utc(2026, 3, 9, 15, 30)


def test_round_the_clock_counts_real_hours_on_dst_weekends() -> None:
    cal = BusinessCalendar("Europe/London", "mon-sun 00:00-24:00")
    assert cal.between(london(2026, 3, 28), london(2026, 3, 30)) == timedelta(hours=47)
    assert cal.between(london(2026, 10, 24), london(2026, 10, 26)) == timedelta(hours=49)
    assert cal.add(london(2026, 3, 28), timedelta(hours=47)) == london(2026, 3, 30)


def test_hours_inside_the_skipped_hour_never_happen() -> None:
    # New York skips 02:00-03:00 on 8 March 2026: 01:30-02:30 is only 01:30-02:00 EST.
    cal = BusinessCalendar("America/New_York", "sun 01:30-02:30")
    day = datetime(2026, 3, 8, tzinfo=NEW_YORK)
    assert cal.between(day, day + timedelta(days=1)) == timedelta(minutes=30)
    week_before = day - timedelta(days=7)
    assert cal.between(week_before, week_before + timedelta(days=1)) == timedelta(hours=1)
    skipped = BusinessCalendar("America/New_York", "sun 02:15-02:45")
    assert skipped.between(day, day + timedelta(days=1)) == timedelta(0)
    assert skipped.next_opening(day) == datetime(2026, 3, 15, 2, 15, tzinfo=NEW_YORK)


def test_repeated_hour_counts_from_its_first_occurrence() -> None:
    # London repeats 01:00-02:00 on 25 October 2026 (BST, then GMT): 01:30-02:00 opens at
    # the first 01:30 (00:30 UTC) and closes at 02:00 GMT (02:00 UTC), an hour and a half.
    cal = BusinessCalendar("Europe/London", "sun 01:30-02:00")
    day = london(2026, 10, 25)
    assert cal.next_opening(day) == utc(2026, 10, 25, 0, 30)
    assert cal.between(day, day + timedelta(days=1)) == timedelta(hours=1, minutes=30)


def test_uk_christmas_bank_holidays_are_skipped() -> None:
    # 2026: Fri 25 Dec Christmas, Sat 26 Boxing Day, Mon 28 Boxing Day (substitute).
    start = london(2026, 12, 24, 16, 0)
    four_hours = timedelta(hours=4)
    gb = BusinessCalendar("Europe/London", OFFICE, "GB")
    assert not gb.is_open(london(2026, 12, 25, 10, 0))
    assert not gb.is_open(london(2026, 12, 28, 10, 0))
    assert gb.add(start, four_hours) == london(2026, 12, 29, 11, 30)
    no_holidays = BusinessCalendar("Europe/London", OFFICE)
    assert no_holidays.add(start, four_hours) == london(2026, 12, 25, 11, 30)
    extra = BusinessCalendar("Europe/London", OFFICE, "GB", [date(2026, 12, 29), "2026-12-30"])
    assert extra.add(start, four_hours) == london(2026, 12, 31, 11, 30)


def test_holiday_subdivision() -> None:
    # St Andrew's Day (Mon 30 Nov 2026) is a bank holiday in Scotland only.
    monday = london(2026, 11, 30, 10, 0)
    assert BusinessCalendar("Europe/London", OFFICE, "GB").is_open(monday)
    scotland = BusinessCalendar("Europe/London", OFFICE, "gb-sct")
    assert scotland.holiday_country == "GB-SCT"
    assert not scotland.is_open(monday)


def test_different_hours_per_day_and_lunch_breaks() -> None:
    short_friday = BusinessCalendar("Europe/London", "mon-thu 09:00-17:30, fri 09:00-16:00")
    assert short_friday.add(london(2026, 6, 12, 15, 0), timedelta(hours=2)) == london(
        2026, 6, 15, 10, 0
    )
    lunch = BusinessCalendar("Europe/London", "mon,wed 08:00-12:00, mon,wed 13:00-17:00")
    assert lunch.add(london(2026, 6, 8, 11, 0), timedelta(hours=2)) == london(2026, 6, 8, 14, 0)
    assert not lunch.is_open(london(2026, 6, 8, 12, 30))
    assert not lunch.is_open(london(2026, 6, 9, 10, 0))
    assert lunch.add(london(2026, 6, 10, 16, 0), timedelta(hours=2)) == london(2026, 6, 15, 9, 0)
    assert lunch.between(london(2026, 6, 8), london(2026, 6, 11)) == timedelta(hours=16)


def test_is_open_next_opening_and_between_basics() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE)
    open_at = london(2026, 6, 9, 12, 0)
    assert cal.is_open(open_at)
    assert cal.next_opening(open_at) == open_at
    assert cal.is_open(london(2026, 6, 9, 9, 0))
    assert not cal.is_open(london(2026, 6, 9, 17, 30))
    assert cal.between(london(2026, 6, 9, 12), london(2026, 6, 9, 11)) == timedelta(0)
    # Inputs in any zone are fine; results are UTC.
    in_new_york = datetime(2026, 6, 9, 7, 0, tzinfo=NEW_YORK)  # 12:00 London
    assert cal.add(in_new_york, timedelta(minutes=1)) == utc(2026, 6, 9, 11, 1)


def test_hours_as_mapping_and_canonical_text() -> None:
    cal = BusinessCalendar("UTC", {0: [(time(9), time(17))], 1: []})
    assert cal.hours == "mon 09:00-17:00"
    assert cal.add(utc(2026, 6, 9, 9), timedelta(hours=1)) == utc(2026, 6, 15, 10)


def test_long_durations_are_fast() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE, "GB")
    start = london(2026, 1, 5, 9, 0)
    began = clock.perf_counter()
    due = cal.add(start, timedelta(hours=10_000))  # about four and a half years
    assert cal.between(start, due) == timedelta(hours=10_000)
    assert clock.perf_counter() - began < 2
    assert due.year == 2030


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Mars/Olympus", OFFICE), "unknown timezone 'Mars/Olympus'"),
        (("", OFFICE), "unknown timezone ''"),
        (("Europe/London", OFFICE, "XX"), "unknown holiday country 'XX'"),
        (("Europe/London", OFFICE, "GB-ZZ"), "unknown subdivision 'ZZ' for GB: use one of ENG"),
        (("Europe/London", ""), "no business hours given"),
        (("Europe/London", {}), "no business hours given"),
        (("Europe/London", {0: []}), "no business hours given"),
        (("Europe/London", {7: [(time(9), time(17))]}), "unknown weekday 7"),
        (("Europe/London", {0: [(time(9, 0, 30), time(17))]}), "whole local minutes"),
        (("Europe/London", OFFICE, None, ["25/12/2026"]), "bad holiday date '25/12/2026'"),
    ],
)
def test_calendar_construction_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BusinessCalendar(*args)


def test_naive_datetimes_and_negative_durations_are_rejected() -> None:
    cal = BusinessCalendar("Europe/London", OFFICE)
    naive = datetime(2026, 6, 9, 12, 0)
    aware = london(2026, 6, 9, 12, 0)
    for call in (
        lambda: cal.is_open(naive),
        lambda: cal.next_opening(naive),
        lambda: cal.add(naive, timedelta(hours=1)),
        lambda: cal.between(naive, aware),
        lambda: cal.between(aware, naive),
    ):
        with pytest.raises(ValueError, match="has no time zone"):
            call()
    with pytest.raises(ValueError, match="negative"):
        cal.add(aware, timedelta(minutes=-1))


# --- properties --------------------------------------------------------------------------

FIXED_CALENDARS = [
    BusinessCalendar("Europe/London", OFFICE, "GB"),
    BusinessCalendar("America/New_York", "mon-thu 09:00-17:30, fri 09:00-16:00", "US-NY"),
    BusinessCalendar("America/New_York", "mon-sun 00:30-02:30 03:00-05:00, sat 10:00-24:00"),
    BusinessCalendar("Europe/London", "mon-sun 00:00-24:00"),
    BusinessCalendar("Australia/Lord_Howe", "sun 01:00-03:00, mon,wed 08:00-12:00 13:00-17:00"),
    BusinessCalendar("America/Santiago", "mon-sun 00:00-01:00 23:00-24:00", "CL"),
    BusinessCalendar("Asia/Kolkata", "mon-sat 10:00-13:00 14:00-18:30", "IN"),
]
ZONES = [ZoneInfo(name) for name in ("Europe/London", "America/New_York", "America/Santiago")]
ZONES += [ZoneInfo(name) for name in ("Australia/Lord_Howe", "Asia/Kolkata")]
# Instants near DST changes and holidays, where mistakes would show.
HOT_SPOTS = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
    utc(2026, 12, 25),
]


@st.composite
def random_calendars(draw: st.DrawFn) -> BusinessCalendar:
    """Draw a calendar with random quarter-hour ranges in a DST-observing zone."""
    weekly = {}
    for day in range(7):
        marks = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        marks = marks[: len(marks) // 2 * 2]
        weekly[day] = [
            (_quarter(marks[i]), _quarter(marks[i + 1])) for i in range(0, len(marks), 2)
        ]
    if not any(weekly.values()):
        weekly[draw(st.integers(0, 6))] = [(time(9), time(17))]
    return BusinessCalendar(draw(st.sampled_from(ZONES)).key, weekly)


def _quarter(mark: int) -> time:
    """Return the time of the mark-th quarter hour of a day (96 is 24:00)."""
    return END_OF_DAY if mark == 96 else time(mark // 4, mark % 4 * 15)


calendars = st.one_of(st.sampled_from(FIXED_CALENDARS), random_calendars())
utc_instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda spot, minutes: spot + timedelta(minutes=minutes),
        st.sampled_from(HOT_SPOTS),
        st.integers(-4 * 24 * 60, 4 * 24 * 60),
    ),
)
# Callers may pass any zone: the same instant, seen from elsewhere.
instants = st.builds(lambda at, zone: at.astimezone(zone), utc_instants, st.sampled_from(ZONES))
durations = st.timedeltas(timedelta(microseconds=1), timedelta(hours=400))
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(calendars, instants, durations)
def test_due_is_open_or_exactly_at_a_closing_time(
    cal: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    due = cal.add(start, duration)
    assert due.tzinfo is UTC
    assert due > start
    assert cal.is_open(due) or cal.is_open(due - timedelta(microseconds=1))


@FAST
@given(calendars, instants, durations)
def test_between_undoes_add(cal: BusinessCalendar, start: datetime, duration: timedelta) -> None:
    assert cal.between(start, cal.add(start, duration)) == duration


@FAST
@given(calendars, instants, instants, durations)
def test_later_start_never_gives_earlier_due(
    cal: BusinessCalendar, first: datetime, second: datetime, duration: timedelta
) -> None:
    early, late = sorted((first, second))
    assert cal.add(early, duration) <= cal.add(late, duration)


@FAST
@given(calendars, instants, durations, durations)
def test_adding_in_two_steps_equals_adding_once(
    cal: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    assert cal.add(cal.add(start, first), second) == cal.add(start, first + second)


@FAST
@given(
    calendars,
    instants,
    durations,
    st.integers(0, 999),
    st.timedeltas(timedelta(0), timedelta(days=20)),
)
def test_pause_and_resume_keeps_the_remaining_time(
    cal: BusinessCalendar, start: datetime, duration: timedelta, per_mille: int, pause: timedelta
) -> None:
    due = cal.add(start, duration)
    # Arithmetic in UTC: adding to a London datetime would move its wall clock, not time.
    paused_at = start.astimezone(UTC) + (due - start) * per_mille // 1000
    elapsed = cal.between(start, paused_at)
    remaining = duration - elapsed
    assert remaining > timedelta(0)
    resumed_at = paused_at + pause
    new_due = cal.add(resumed_at, remaining)
    assert elapsed + cal.between(resumed_at, new_due) == duration
    assert new_due >= due
    # The clock stood still exactly for the business time inside the pause.
    assert cal.between(start, new_due) == duration + cal.between(paused_at, resumed_at)


@FAST
@given(calendars, instants, instants, instants)
def test_between_adds_up_and_next_opening_is_open(
    cal: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    assert cal.between(a, c) == cal.between(a, b) + cal.between(b, c)
    opening = cal.next_opening(a)
    assert opening >= a
    assert cal.is_open(opening)
    assert cal.between(a, opening) == timedelta(0)


@FAST
@given(random_calendars())
def test_format_hours_round_trips(cal: BusinessCalendar) -> None:
    assert parse_hours(format_hours(cal.weekly)) == cal.weekly


@FAST
@given(st.integers(1, 10_000 * 60))
def test_format_duration_round_trips(minutes: int) -> None:
    duration = timedelta(minutes=minutes)
    assert parse_duration(format_duration(duration)) == duration
