"""Reading the times and dates people send: one parser for the API edge and the command line.

A time is ISO 8601 with its zone; a bare date (YYYY-MM-DD) means a moment of that day in
Helsinki, chosen by the caller. Only moments from ``EARLIEST`` up to (not including) ``LATEST``
are accepted: a time such as ``0001-01-01T00:00:00+14:00`` cannot be represented in UTC at all,
and one near year 9999 overflows as soon as a day is added to it, so both are refused here
rather than failing deep inside a service.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

HELSINKI = ZoneInfo("Europe/Helsinki")
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_LENGTH = 40

#: What a bare date stands for: its first moment, the next day's first moment, or its last second.
DayMeans = Literal["start", "next_start", "last_second"]


class BadInstant(ValueError):
    """The text is not a time or date this service accepts; the message says what is expected."""


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise BadInstant(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return moment


def parse_day(text: object) -> date:
    """A calendar date YYYY-MM-DD (ASCII digits) within the accepted years."""
    if not isinstance(text, str) or len(text) != 10 or not text.isascii():
        raise BadInstant("must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInstant("must be a date YYYY-MM-DD") from None
    if not EARLIEST.year <= day.year < LATEST.year:
        raise BadInstant(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return day


def parse_instant(text: object, *, day: DayMeans | None = None) -> datetime:
    """An aware UTC datetime from ISO 8601 with a zone, or (when ``day`` is given) from a date."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_LENGTH or not text.isascii():
        raise BadInstant("must be an ISO 8601 time with its zone (Z or +02:00)")
    if len(text) == 10 and day is not None:
        first = parse_day(text)
        if day == "next_start":
            first += timedelta(days=1)
        clock = time(23, 59, 59) if day == "last_second" else time(0)
        return _in_range(datetime.combine(first, clock, HELSINKI).astimezone(UTC))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInstant("must be an ISO 8601 time with its zone (Z or +02:00)") from None
    if moment.tzinfo is None:
        raise BadInstant("a time needs its zone (e.g. Z or +02:00)")
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadInstant(f"must be between {EARLIEST.year} and {LATEST.year - 1}") from None
    return _in_range(utc)


def parse_month(text: object) -> date:
    """A calendar month YYYY-MM (ASCII digits) within the accepted years: its first day."""
    if not isinstance(text, str) or len(text) != 7 or not text.isascii() or text[4] != "-":
        raise BadInstant("must be a month YYYY-MM")
    year, month = text[:4], text[5:]
    if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        raise BadInstant("must be a month YYYY-MM")
    if not EARLIEST.year <= int(year) < LATEST.year:
        raise BadInstant(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return date(int(year), int(month), 1)
