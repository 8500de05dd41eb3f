"""When an expert is on duty by the roster: explicit periods (UTC instants) and weekly rules in
Europe/Helsinki local time. A rule does not apply on a Finnish public holiday; a period applies
whatever the day, so a holiday is covered only by a period that says so. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from consult.services.holidays import is_holiday

HELSINKI = ZoneInfo("Europe/Helsinki")
HORIZON = timedelta(days=14)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class WeeklyRule:
    weekday: int  # ISO, 1 = Monday
    start: time
    end: time | None  # None = midnight at the end of the day
    valid_from: date | None = None
    valid_until: date | None = None

    def on(self, day: date) -> Interval | None:
        """The rule's interval on local ``day``, in UTC, if it applies that day."""
        if day.isoweekday() != self.weekday or is_holiday(day):
            return None
        if (self.valid_from and day < self.valid_from) or (self.valid_until and day > self.valid_until):
            return None
        start = datetime.combine(day, self.start, HELSINKI)
        end = (datetime.combine(day + timedelta(days=1), time(0), HELSINKI) if self.end is None
               else datetime.combine(day, self.end, HELSINKI))
        return start.astimezone(UTC), end.astimezone(UTC)


def parse_clock(text: str) -> time | None:
    """``HH:MM`` to a time; ``24:00`` is the end of the day (None)."""
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def intervals(periods: Iterable[Interval], rules: Iterable[WeeklyRule], start: datetime, end: datetime
              ) -> list[Interval]:
    """On-duty intervals meeting [start, end), merged and in order."""
    found = [(s, e) for s, e in periods if s < end and e > start]
    rules = list(rules)
    if rules:
        day = start.astimezone(HELSINKI).date() - timedelta(days=1)
        last = end.astimezone(HELSINKI).date()
        while day <= last:
            for rule in rules:
                span = rule.on(day)
                if span and span[0] < end and span[1] > start:
                    found.append(span)
            day += timedelta(days=1)
    merged: list[Interval] = []
    for s, e in sorted(found):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def on_duty_at(periods: Iterable[Interval], rules: Iterable[WeeklyRule], at: datetime) -> bool:
    return any(s <= at < e for s, e in intervals(periods, rules, at, at + timedelta(microseconds=1)))


def changes(periods: Iterable[Interval], rules: Iterable[WeeklyRule], after: datetime, until: datetime
            ) -> list[datetime]:
    """The instants in (after, until] at which the roster's state changes."""
    return [t for s, e in intervals(periods, rules, after, until + timedelta(microseconds=1))
            for t in (s, e) if after < t <= until]


def next_start(periods: Iterable[Interval], rules: Iterable[WeeklyRule], after: datetime,
               horizon: timedelta = HORIZON) -> datetime | None:
    """When the expert is next on duty at or after ``after`` (``after`` itself if on duty now)."""
    for s, e in intervals(periods, rules, after, after + horizon):
        if e > after:
            return max(s, after)
    return None


def local(ts: datetime | None) -> str | None:
    """An instant as Helsinki local time with its offset, for display."""
    return None if ts is None else ts.astimezone(HELSINKI).isoformat(timespec="minutes")
