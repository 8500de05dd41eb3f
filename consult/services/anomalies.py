"""Anomaly rules over the access log (docs/capabilities.md C5): a user touching unusually many distinct clients
in an hour, access outside office hours, every break-glass and every § 35(2) referral without
consent. Pure functions over rows the storage layer streams; the privacy officer sees the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from consult.model.clock import iso

HELSINKI = ZoneInfo("Europe/Helsinki")

# The privacy officer's own work and break-glass (flagged on its own) are not "access" here.
_NOT_ACCESS_PREFIXES = ("audit.", "break_glass")


@dataclass(frozen=True, slots=True)
class AnomalyRules:
    clients_per_hour: int = 30
    office_hours: tuple[int, int] = (7, 18)  # local hours [start, end)
    office_days: tuple[int, int] = (1, 5)  # ISO weekdays, inclusive

    def in_office(self, at: datetime) -> bool:
        local = at.astimezone(HELSINKI)
        first, last = self.office_days
        start, end = self.office_hours
        return first <= local.isoweekday() <= last and start <= local.hour < end


@dataclass
class _Hour:
    clients: set[str]
    first_index: int
    org: str


@dataclass
class _Day:
    count: int
    first: datetime
    last: datetime
    first_index: int
    org: str


class AccessAnomalies:
    """Folds the access feed (leaf_index, at, actor_id, actor_org, client_ref, action) into flags."""

    def __init__(self, rules: AnomalyRules) -> None:
        self.rules = rules
        self._hours: dict[tuple[str, datetime], _Hour] = {}
        self._days: dict[tuple[str, str], _Day] = {}

    def feed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        hours, days, rules = self._hours, self._days, self.rules
        for index, at, actor, org, client, action in rows:
            if action.startswith(_NOT_ACCESS_PREFIXES):
                continue
            # Helsinki is a whole number of hours from UTC, so UTC hours are local hours too.
            hour = at.replace(minute=0, second=0, microsecond=0)
            bucket = hours.get((actor, hour))
            if bucket is None:
                hours[(actor, hour)] = _Hour({client}, index, org)
            else:
                bucket.clients.add(client)
            if not rules.in_office(at):
                day = at.astimezone(HELSINKI).date().isoformat()
                seen = days.get((actor, day))
                if seen is None:
                    days[(actor, day)] = _Day(1, at, at, index, org)
                else:
                    seen.count += 1
                    seen.last = at

    def results(self) -> list[dict[str, Any]]:
        limit = self.rules.clients_per_hour
        found: list[dict[str, Any]] = [
            {
                "kind": "many_clients",
                "actor": {"id": actor, "org": b.org},
                "at": iso(hour),
                "until": iso(hour + timedelta(hours=1)),
                "count": len(b.clients),
                "threshold": limit,
                "leaf_index": b.first_index,
            }
            for (actor, hour), b in self._hours.items()
            if len(b.clients) > limit
        ]
        start, end = self.rules.office_hours
        found += [
            {
                "kind": "off_hours",
                "actor": {"id": actor, "org": d.org},
                "at": iso(d.first),
                "until": iso(d.last),
                "date": day,
                "count": d.count,
                "office_hours": f"{start:02d}-{end:02d} Europe/Helsinki",
                "leaf_index": d.first_index,
            }
            for (actor, day), d in self._days.items()
        ]
        return found


def flagged_record(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A break-glass or a referral without consent, as the privacy officer's list shows it."""
    return {
        "kind": kind,
        "actor": {"id": row["actor_id"], "org": row["actor_org"]},
        "at": iso(row["at"]),
        "consultation_id": row["consultation_id"],
        "client_ref": row["client_ref"],
        "recipient_org": row["recipient_org"],
        "leaf_index": row["leaf_index"],
    }
