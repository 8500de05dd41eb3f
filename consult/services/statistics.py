"""Statistics for the joint steering meeting (docs/capabilities.md C8): per month (Helsinki time) and pair of
organisations — consultations by topic and urgency, time to claim and to first response
(median and p90, nearest-rank), SLA kept, re-offers and escalations, outcomes, permitted
disclosures by category and basis, and § 35 referrals.

Only counts and durations: no user, client, consent id or content appears, and a consent basis
is counted as ``consent`` without its id.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import Any

from consult.errors import Forbidden, Unprocessable
from consult.model import Clock, Principal, actions, instant
from consult.services.duty import HELSINKI
from consult.storage import statistics as store
from consult.storage.db import Database

MAX_MONTHS = 36
REFERRAL_CATEGORY = "service_need.referral"


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-quantile by the nearest-rank method: an observed value, ``ceil(q·n)``-th smallest."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _summary(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "median": nearest_rank(values, 0.5), "p90": nearest_rank(values, 0.9)}


def basis_kind(basis: str | None) -> str:
    """A disclosure basis without personal identifiers: a consent's id is dropped."""
    if not basis:
        return "unknown"
    return "consent" if basis.startswith("consent:") else basis


def parse_month(text: str | None, field: str) -> date | None:
    if text is None or text == "":
        return None
    try:
        return instant.parse_month(text)
    except instant.BadInstant as exc:
        raise Unprocessable(f"{field} {exc}.", code="invalid_field") from None


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _month_of(ts: datetime) -> str:
    return ts.astimezone(HELSINKI).strftime("%Y-%m")


class Statistics:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def report(self, who: Principal, first: date | None, last: date | None) -> dict[str, Any]:
        if not actions.allows(who, "stats.read"):
            raise Forbidden("Statistics are for admins and privacy officers.", code="role")
        now = self.clock.now()
        this_month = now.astimezone(HELSINKI).date().replace(day=1)
        last = last or this_month
        if first is None:  # the twelve months up to ``last``
            index = last.year * 12 + last.month - 1 - 11
            first = date(index // 12, index % 12 + 1, 1)
        if first > last:
            raise Unprocessable("from must not be after to.", code="invalid_field")
        if (last.year - first.year) * 12 + last.month - first.month >= MAX_MONTHS:
            raise Unprocessable(f"At most {MAX_MONTHS} months at a time.", code="invalid_field")
        start = datetime.combine(first, datetime.min.time(), HELSINKI).astimezone(UTC)
        end = datetime.combine(_next_month(last), datetime.min.time(), HELSINKI).astimezone(UTC)
        async with self.db.read() as conn:
            consultations = await store.consultation_rows(conn, start, end, who.org)
            disclosures = await store.disclosure_rows(conn, start, end, who.org)
        groups: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(_group)
        for row in consultations:
            _add_consultation(groups[(_month_of(row["created_at"]), row["origin_org"], row["target_org"])], row, now)
        for row in disclosures:
            _add_disclosure(groups[(_month_of(row["at"]), row["origin_org"], row["target_org"])], row)
        return {
            "from": first.strftime("%Y-%m"), "to": last.strftime("%Y-%m"), "org": who.org,
            "time_zone": "Europe/Helsinki", "quantiles": "nearest-rank",
            "rows": [_finish(key, g) for key, g in sorted(groups.items())],
        }

    async def csv(self, who: Principal, first: date | None, last: date | None) -> str:
        """The report in long form: one line per month, pair, measure and key."""
        report = await self.report(who, first, last)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["month", "origin_org", "target_org", "measure", "key", "value"])
        for row in report["rows"]:
            for measure, key, value in _flatten(row):
                writer.writerow([row["month"], row["origin_org"], row["target_org"], measure, key,
                                 "" if value is None else value])
        return out.getvalue()


def _group() -> dict[str, Any]:
    return {"topics": Counter(), "urgencies": Counter(), "outcomes": Counter(), "claim": [], "first_response": [],
            "with_sla": 0, "kept": 0, "missed": 0, "reoffered": 0, "escalated": 0, "count": 0,
            "by_category": Counter(), "by_basis": Counter(), "disclosures": 0, "referral_items": 0,
            "without_consent": 0}


def _add_consultation(g: dict[str, Any], row: dict[str, Any], now: datetime) -> None:
    g["count"] += 1
    g["topics"][row["topic"]] += 1
    g["urgencies"][row["urgency"]] += 1
    if row["outcome"]:
        g["outcomes"][row["outcome"]] += 1
    created = row["created_at"]
    if row["claimed_at"]:
        g["claim"].append((row["claimed_at"] - created).total_seconds())
    if row["first_response_at"]:
        g["first_response"].append((row["first_response_at"] - created).total_seconds())
    sla = row["sla_seconds"]
    if sla:
        waited = ((row["claimed_at"] or now) - created).total_seconds()
        if row["claimed_at"] and waited <= sla:
            g["with_sla"] += 1
            g["kept"] += 1
        elif waited > sla:
            g["with_sla"] += 1
            g["missed"] += 1
    if (row["offers"] or 0) > 1:
        g["reoffered"] += 1
    if (row["escalations"] or 0) > 0:
        g["escalated"] += 1


def _add_disclosure(g: dict[str, Any], row: dict[str, Any]) -> None:
    categories = list(row["categories"] or [])
    flags = set(row["flags"] or [])
    for category in categories:
        g["disclosures"] += 1
        g["by_category"][category] += 1
        g["by_basis"][basis_kind(row["basis"])] += 1
        if category == REFERRAL_CATEGORY:
            g["referral_items"] += 1
            if "referral_without_consent" in flags:
                g["without_consent"] += 1


def _finish(key: tuple[str, str, str], g: dict[str, Any]) -> dict[str, Any]:
    month, origin, target = key
    return {
        "month": month, "origin_org": origin, "target_org": target,
        "consultations": g["count"],
        "by_topic": dict(sorted(g["topics"].items())),
        "by_urgency": dict(sorted(g["urgencies"].items())),
        "time_to_claim_seconds": _summary(g["claim"]),
        "time_to_first_response_seconds": _summary(g["first_response"]),
        "sla": {"measured": g["with_sla"], "kept": g["kept"], "missed": g["missed"],
                "kept_share": round(g["kept"] / g["with_sla"], 4) if g["with_sla"] else None},
        "reoffered": g["reoffered"],
        "escalated": g["escalated"],
        "outcomes": dict(sorted(g["outcomes"].items())),
        "disclosures": {"total": g["disclosures"], "by_category": dict(sorted(g["by_category"].items())),
                        "by_basis": dict(sorted(g["by_basis"].items()))},
        "referrals": {"outcome_referred": g["outcomes"].get("referred", 0), "referral_items": g["referral_items"],
                      "without_consent": g["without_consent"]},
    }


def _flatten(row: dict[str, Any]) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = [("consultations", "", row["consultations"])]
    out += [("by_topic", k, v) for k, v in row["by_topic"].items()]
    out += [("by_urgency", k, v) for k, v in row["by_urgency"].items()]
    for measure in ("time_to_claim_seconds", "time_to_first_response_seconds"):
        out += [(measure, k, v) for k, v in row[measure].items()]
    out += [("sla", k, v) for k, v in row["sla"].items()]
    out += [("reoffered", "", row["reoffered"]), ("escalated", "", row["escalated"])]
    out += [("outcomes", k, v) for k, v in row["outcomes"].items()]
    out += [("disclosures", "total", row["disclosures"]["total"])]
    out += [("disclosures_by_category", k, v) for k, v in row["disclosures"]["by_category"].items()]
    out += [("disclosures_by_basis", k, v) for k, v in row["disclosures"]["by_basis"].items()]
    out += [("referrals", k, v) for k, v in row["referrals"].items()]
    return out
