"""Finnish public holidays, computed rather than kept in a table: the fixed ones, those that
follow Easter, and the Saturdays of Midsummer and All Saints. Midsummer Eve and Christmas Eve
are not church or statutory holidays, but public offices are closed, so the roster treats them
as days off too.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _weekday_between(year: int, month: int, first: int, last: int, weekday: int) -> date:
    """The one day with ISO ``weekday`` in ``month`` ``first``..``last`` (a 7-day window)."""
    day = date(year, month, first)
    return day + timedelta(days=(weekday - day.isoweekday()) % 7) if last - first == 6 else day


@lru_cache(maxsize=64)
def finnish_holidays(year: int) -> dict[date, str]:
    """The days off of ``year`` with their Finnish names."""
    e = easter(year)
    all_saints_start = date(year, 10, 31)
    all_saints = all_saints_start + timedelta(days=(6 - all_saints_start.isoweekday()) % 7)
    days = {
        date(year, 1, 1): "uudenvuodenpäivä",
        date(year, 1, 6): "loppiainen",
        e - timedelta(days=2): "pitkäperjantai",
        e: "pääsiäispäivä",
        e + timedelta(days=1): "2. pääsiäispäivä",
        date(year, 5, 1): "vappu",
        e + timedelta(days=39): "helatorstai",
        e + timedelta(days=49): "helluntaipäivä",
        _weekday_between(year, 6, 19, 25, 5): "juhannusaatto",
        _weekday_between(year, 6, 20, 26, 6): "juhannuspäivä",
        all_saints: "pyhäinpäivä",
        date(year, 12, 6): "itsenäisyyspäivä",
        date(year, 12, 24): "jouluaatto",
        date(year, 12, 25): "joulupäivä",
        date(year, 12, 26): "tapaninpäivä",
    }
    return dict(sorted(days.items()))


def is_holiday(day: date) -> bool:
    return day in finnish_holidays(day.year)
