"""Business-time arithmetic for SLA targets: opening hours, holidays and time zones.

A calendar turns each local day into UTC intervals, so arithmetic walks day by
day (never minute by minute) and stays exact across DST changes: a 09:00
opening is 09:00 on the local wall clock on both sides of a change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Range = tuple[time, time]
Weekly = dict[int, list[Range]]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: n for names in (DAY_NAMES, _FULL_DAY_NAMES) for n, name in enumerate(names)}
# datetime.time cannot hold 24:00; time.max stands for it ("open until midnight").
END_OF_DAY = time.max
MAX_DURATION = timedelta(hours=10_000)
_EXAMPLE = "e.g. 'mon-fri 09:00-17:30' or 'mon-thu 09:00-17:30, fri 09:00-16:00'"
# A calendar closed ten years running is misconfigured; stop rather than loop forever.
_MAX_CLOSED_DAYS = 3660


def parse_hours(spec: str) -> Weekly:
    """Parse weekly business hours such as 'mon-thu 09:00-17:30, fri 09:00-16:00'."""
    # Dashes may come with spaces or as typographic dashes when pasted from documents.
    text = re.sub(r"\s*[-\u2013\u2014]\s*", "-", spec.strip().lower())
    entries: list[tuple[int, time, time]] = []
    days: list[int] = []
    after_times = False
    for token in re.split(r"[\s,;]+", text):
        if not token:
            continue
        if any(char.isdigit() for char in token):
            if not days:
                raise ValueError(f"time range '{token}' has no day before it: write {_EXAMPLE}")
            start, end = _parse_range(token)
            entries.extend((day, start, end) for day in days)
            after_times = True
        else:
            if after_times:  # a day after times starts the next clause
                days, after_times = [], False
            days.extend(_parse_days(token))
    if days and not after_times:
        names = ", ".join(DAY_NAMES[day] for day in days)
        raise ValueError(f"no opening times given for {names}: write {_EXAMPLE}")
    return _normalise(entries)


def format_hours(weekly: Mapping[int, Sequence[Range]]) -> str:
    """Render weekly business hours as canonical text that parse_hours reads back."""
    groups: dict[tuple[Range, ...], list[int]] = {}
    for day, ranges in _normalise(_weekly_entries(weekly)).items():
        groups.setdefault(tuple(ranges), []).append(day)
    return ", ".join(
        f"{_format_days(days)} {' '.join(_format_range(r) for r in ranges)}"
        for ranges, days in groups.items()
    )


def parse_duration(spec: str) -> timedelta:
    """Parse a business-time duration such as '4h', '30m' or '1h30m'."""
    text = re.sub(r"\s+", "", spec.lower())
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", text)
    if not text or match is None:
        raise ValueError(f"bad duration '{spec}': write hours and minutes like 4h, 30m or 1h30m")
    hours, minutes = int(match[1] or 0), int(match[2] or 0)
    if hours == minutes == 0:
        raise ValueError(f"duration '{spec}' must be more than zero")
    if hours * 60 + minutes > MAX_DURATION // timedelta(minutes=1):
        raise ValueError(f"duration '{spec}' is too long: at most {format_duration(MAX_DURATION)}")
    return timedelta(hours=hours, minutes=minutes)


def format_duration(td: timedelta) -> str:
    """Render a duration as '4h', '30m' or '1h30m', dropping seconds."""
    if td < timedelta(0):
        raise ValueError(f"cannot show a negative duration ({td})")
    hours, minutes = divmod(td // timedelta(minutes=1), 60)
    if hours and minutes:
        return f"{hours}h{minutes}m"
    return f"{hours}h" if hours else f"{minutes}m"


class BusinessCalendar:
    """Weekly opening hours in one time zone, closed on public and extra holidays."""

    def __init__(
        self,
        timezone: str,
        hours: str | Mapping[int, Sequence[Range]],
        holiday_country: str | None = None,
        extra_holidays: Iterable[date | str] = (),
    ) -> None:
        self.zone = _zone(timezone)
        self.timezone = self.zone.key
        self.weekly = (
            parse_hours(hours) if isinstance(hours, str) else _normalise(_weekly_entries(hours))
        )
        self.holiday_country, self._public_holidays = _public_holidays(holiday_country)
        self.extra_holidays = frozenset(_as_date(day) for day in extra_holidays)
        # Bound per instance so the cache dies with the calendar (no global lru_cache on self).
        self._intervals_on = functools.lru_cache(maxsize=1024)(self._compute_intervals)

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.timezone!r}, {self.hours!r}, {self.holiday_country!r}, "
            f"{sorted(self.extra_holidays)!r})"
        )

    @property
    def hours(self) -> str:
        """Return the weekly hours as canonical text."""
        return format_hours(self.weekly)

    def is_holiday(self, day: date) -> bool:
        """Tell whether a local date is closed all day as a public or extra holiday."""
        if day in self.extra_holidays:
            return True
        return self._public_holidays is not None and day in self._public_holidays

    def is_open(self, at: datetime) -> bool:
        """Tell whether the business is open at an instant."""
        at = _as_utc(at)
        return self.next_opening(at) == at

    def next_opening(self, at: datetime) -> datetime:
        """Return the first open instant at or after `at`, in UTC."""
        opens, _ = next(self._intervals_from(_as_utc(at)))
        return opens

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return the earliest instant by which `duration` of business time has passed."""
        if duration < timedelta(0):
            raise ValueError(f"cannot add a negative duration ({duration})")
        start = _as_utc(start)
        if not duration:
            return start
        remaining = duration
        for opens, closes in self._intervals_from(start):
            if remaining <= closes - opens:
                return opens + remaining
            remaining -= closes - opens
        raise AssertionError("business intervals never run out")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Return the business time elapsed in [start, end), zero if end is not later."""
        start, end = _as_utc(start), _as_utc(end)
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self._intervals_from(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield open UTC intervals ending after `at`, in order, clipped to start at `at`."""
        # A day's intervals lie within its local midnights; start a day early for safety.
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        closed_days = 0
        while True:
            intervals = self._intervals_on(day)
            closed_days = 0 if intervals else closed_days + 1
            if closed_days > _MAX_CLOSED_DAYS:
                raise ValueError(f"the calendar has no business hours for ten years before {day}")
            for opens, closes in intervals:
                if closes > at:
                    yield max(opens, at), closes
            day += timedelta(days=1)

    def _compute_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return one local day's open intervals in UTC."""
        ranges = self.weekly.get(day.weekday(), [])
        if not ranges or self.is_holiday(day):
            return ()
        intervals = []
        for start, end in ranges:
            opens, closes = self._wall_to_utc(day, start), self._wall_to_utc(day, end)
            if closes > opens:  # a range wholly inside a skipped DST hour never happens
                intervals.append((opens, closes))
        return tuple(intervals)

    def _wall_to_utc(self, day: date, at: time) -> datetime:
        """Return the UTC instant a local wall-clock time is first reached on a day."""
        if at == END_OF_DAY:
            day, at = day + timedelta(days=1), time(0)
        wall = datetime.combine(day, at)
        # fold=0 picks the first of a repeated hour when clocks go back.
        instant = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == wall:
            return instant
        return self._jump_instant(wall)

    def _jump_instant(self, wall: datetime) -> datetime:
        """Return the instant clocks jumped over a skipped wall time (spring forward)."""
        candidates = [wall.replace(tzinfo=self.zone, fold=f).astimezone(UTC) for f in (0, 1)]
        low, high = (int(c.timestamp()) for c in sorted(candidates))
        # Local time runs before `wall` at `low` and after it at `high`; bisect to the jump.
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None) > wall:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)


def _parse_days(token: str) -> list[int]:
    """Parse 'mon' or a range 'mon-fri' (wrapping past Sunday) into weekday numbers."""
    match = re.fullmatch(r"([a-z]+)(?:-([a-z]+))?", token)
    if match is None:
        raise ValueError(f"cannot read '{token}' in business hours: write {_EXAMPLE}")
    first = _day_number(match[1])
    last = first if match[2] is None else _day_number(match[2])
    return [(first + offset) % 7 for offset in range((last - first) % 7 + 1)]


def _day_number(name: str) -> int:
    """Return the weekday number (0 = Monday) of a day name."""
    if name not in _DAY_NUMBERS:
        raise ValueError(f"unknown day '{name}': use mon, tue, wed, thu, fri, sat or sun")
    return _DAY_NUMBERS[name]


def _parse_range(token: str) -> Range:
    """Parse '09:00-17:30' into a pair of times."""
    parts = token.split("-")
    if len(parts) != 2:
        raise ValueError(f"bad time range '{token}': write HH:MM-HH:MM, e.g. 09:00-17:30")
    start, end = (_parse_time(part) for part in parts)
    if start == END_OF_DAY:
        raise ValueError(f"bad time range '{token}': 24:00 can only end a range")
    return start, end


def _parse_time(text: str) -> time:
    """Parse 'HH:MM' (00:00 to 24:00) into a time."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    hour, minute = (int(match[1]), int(match[2])) if match else (99, 99)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise ValueError(f"bad time '{text}': use HH:MM from 00:00 to 24:00")
    return END_OF_DAY if hour == 24 else time(hour, minute)


def _weekly_entries(weekly: Mapping[int, Sequence[Range]]) -> list[tuple[int, time, time]]:
    """Flatten and type-check weekly hours given as a mapping."""
    entries = []
    for day, ranges in weekly.items():
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            raise ValueError(f"unknown weekday {day!r}: use 0 (Monday) to 6 (Sunday)")
        for start, end in ranges:
            for moment in (start, end):
                if not _is_wall_minute(moment):
                    raise ValueError(f"business hours use whole local minutes, not {moment!r}")
            entries.append((day, start, end))
    return entries


def _is_wall_minute(moment: object) -> bool:
    """Tell whether a value is a naive time on a whole minute (or 24:00)."""
    if not isinstance(moment, time) or moment.tzinfo is not None:
        return False
    return moment == END_OF_DAY or not (moment.second or moment.microsecond)


def _normalise(entries: Iterable[tuple[int, time, time]]) -> Weekly:
    """Sort ranges per day, merge touching ones and reject empty, reversed or overlapping ones."""
    by_day: dict[int, list[Range]] = {}
    for day, start, end in entries:
        if end <= start:
            raise ValueError(
                f"time range {_format_range((start, end))} must end after it starts"
                " (ranges cannot cross midnight; use 24:00 for midnight)"
            )
        by_day.setdefault(day, []).append((start, end))
    weekly: Weekly = {}
    for day in sorted(by_day):
        ranges = sorted(by_day[day])
        merged = [ranges[0]]
        for start, end in ranges[1:]:
            if start < merged[-1][1]:
                raise ValueError(
                    f"on {DAY_NAMES[day]}, {_format_range(merged[-1])} overlaps "
                    f"{_format_range((start, end))}"
                )
            if start == merged[-1][1]:  # touching ranges are one stretch of open time
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        weekly[day] = merged
    if not weekly:
        raise ValueError(f"no business hours given: write {_EXAMPLE}")
    return weekly


def _format_days(days: list[int]) -> str:
    """Render weekday numbers as 'mon-wed,fri': runs of three or more get a dash."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[day] for day in run)
    return ",".join(parts)


def _format_range(pair: Range) -> str:
    """Render a pair of times as '09:00-17:30'."""
    return "-".join("24:00" if t == END_OF_DAY else f"{t:%H:%M}" for t in pair)


def _zone(name: str) -> ZoneInfo:
    """Return the time zone of an IANA name, with a clear error for unknown ones."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ValueError(
            f"unknown timezone '{name}': use an IANA name such as Europe/London"
        ) from None


def _public_holidays(code: str | None) -> tuple[str | None, holidays.HolidayBase | None]:
    """Return the canonical code and public holidays of 'GB', 'US-CA', 'GB-SCT' …"""
    if not code or not code.strip():
        return None, None
    country, _, subdivision = code.strip().partition("-")
    country = country.upper()
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown holiday country '{code}': use an ISO 3166 code such as GB, DE or US-CA"
        )
    if not subdivision:
        return country, holidays.country_holidays(country)
    known = {name.upper(): name for name in supported[country]}
    if subdivision.upper() not in known:
        choices = ", ".join(supported[country]) or "none"
        raise ValueError(f"unknown subdivision '{subdivision}' for {country}: use one of {choices}")
    subdivision = known[subdivision.upper()]
    return f"{country}-{subdivision}", holidays.country_holidays(country, subdiv=subdivision)


def _as_date(day: date | str) -> date:
    """Return a holiday as a date, accepting ISO 'YYYY-MM-DD' text."""
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError(f"bad holiday date '{day}': use YYYY-MM-DD") from None


def _as_utc(at: datetime) -> datetime:
    """Return an aware datetime in UTC; naive ones are ambiguous and rejected."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime {at.isoformat()} has no time zone: pass an aware datetime")
    return at.astimezone(UTC)
