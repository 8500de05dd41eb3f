"""The roster (docs/capabilities.md C6): on-duty periods and weekly rules per named expert, kept by admins of the
expert's organisation, and applied to the directory's ``on_duty``.

``experts.on_duty`` is what is in force now. The roster sets it whenever its state for an
expert changes (a period or rule starts or ends) and whenever an admin changes that expert's
roster; in between, the expert's own toggle or an admin's override (``PUT /experts``) holds.
So an expert who goes off duty for an hour is not put back on by the roster until the roster's
next change, and an expert without any roster is on duty exactly when the toggle says so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.services import duty
from consult.services.directory import expert_json
from consult.services.events import EventBus
from consult.services.holidays import finnish_holidays
from consult.services.presence import Presence
from consult.storage import directory as directory_store
from consult.storage import roster as store
from consult.storage.db import Database

SYSTEM = Principal(user_id="system:roster", org="system", roles=frozenset(), name="Roster")
MAX_PERIOD = timedelta(days=31)
MAX_WINDOW = timedelta(days=62)
WATERMARK_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class DutyPlan:
    periods: list[duty.Interval]
    rules: list[duty.WeeklyRule]

    @property
    def empty(self) -> bool:
        return not self.periods and not self.rules


def _rule(row: dict[str, Any]) -> duty.WeeklyRule:
    return duty.WeeklyRule(row["weekday"], duty.parse_clock(row["start_time"]) or datetime.min.time(),
                           duty.parse_clock(row["end_time"]), row["valid_from"], row["valid_until"])


def _period_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "user_id": row["user_id"], "starts_at": iso(row["starts_at"]),
            "ends_at": iso(row["ends_at"]), "starts_local": duty.local(row["starts_at"]),
            "ends_local": duty.local(row["ends_at"])}


def _rule_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "user_id": row["user_id"], "weekday": row["weekday"], "start": row["start_time"],
            "end": row["end_time"], "valid_from": row["valid_from"].isoformat() if row["valid_from"] else None,
            "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None}


class Roster:
    def __init__(self, db: Database, bus: EventBus, clock: Clock, presence: Presence) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.presence = presence
        self.version = 0  # bumped whenever the roster changes an expert's on_duty

    # -- reading ------------------------------------------------------------------------------

    async def plans(self, conn: AsyncConnection, user_ids: list[str], start: datetime, end: datetime
                    ) -> dict[str, DutyPlan]:
        periods = await store.periods_between(conn, start, end, user_ids=user_ids)
        rules = await store.rules(conn, user_ids=user_ids)
        plans: dict[str, DutyPlan] = {u: DutyPlan([], []) for u in user_ids}
        for p in periods:
            plans[p["user_id"]].periods.append((p["starts_at"], p["ends_at"]))
        for r in rules:
            plans[r["user_id"]].rules.append(_rule(r))
        return plans

    async def next_on_duty(self, conn: AsyncConnection, user_ids: list[str], now: datetime) -> datetime | None:
        """The earliest time the roster puts any of ``user_ids`` on duty, within two weeks."""
        if not user_ids:
            return None
        plans = await self.plans(conn, user_ids, now, now + duty.HORIZON)
        starts = [s for p in plans.values() if (s := duty.next_start(p.periods, p.rules, now)) is not None]
        return min(starts) if starts else None

    async def view(self, who: Principal, org: str, start: datetime | None, end: datetime | None
                   ) -> dict[str, Any]:
        """The roster of ``org`` between ``start`` and ``end`` (default: this week and the next)."""
        if who.org != org:
            raise NotFound()
        now = self.clock.now()
        start = start or now - timedelta(days=1)
        end = end or start + timedelta(days=14)
        if end <= start or end - start > MAX_WINDOW:
            raise Unprocessable("from..to must be a window of at most 62 days.", code="invalid_field")
        async with self.db.read() as conn:
            experts = [e for e in await directory_store.list_experts(conn, org)]
            plans = await self.plans(conn, [e["user_id"] for e in experts], start, end)
            periods = await store.periods_between(conn, start, end, org=org)
            rules = await store.rules(conn, org=org)
        years = range(start.astimezone(duty.HELSINKI).year, end.astimezone(duty.HELSINKI).year + 1)
        return {
            "org": org, "from": iso(start), "to": iso(end), "time_zone": "Europe/Helsinki",
            "holidays": [{"date": d.isoformat(), "name": n} for y in years for d, n in finnish_holidays(y).items()
                         if start.astimezone(duty.HELSINKI).date() <= d <= end.astimezone(duty.HELSINKI).date()],
            "experts": [
                {
                    "id": e["user_id"], "name": e["name"], "pools": list(e["pools"]), "on_duty": bool(e["on_duty"]),
                    "periods": [_period_json(p) for p in periods if p["user_id"] == e["user_id"]],
                    "rules": [_rule_json(r) for r in rules if r["user_id"] == e["user_id"]],
                    "on_duty_intervals": [
                        {"from": iso(s), "to": iso(t), "from_local": duty.local(s), "to_local": duty.local(t)}
                        for s, t in duty.intervals(plans[e["user_id"]].periods, plans[e["user_id"]].rules,
                                                   start, end)
                    ],
                }
                for e in experts
            ],
        }

    # -- changing ------------------------------------------------------------------------------

    async def _expert_for_admin(self, who: Principal, user_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            expert = await directory_store.get_expert(conn, user_id)
        if expert is None or expert["org"] != who.org:
            raise NotFound()
        if not actions.allows(who, "roster.manage"):
            raise Forbidden("Only an admin of the expert's organisation keeps the roster.")
        return expert

    async def add_period(self, who: Principal, user_id: str, starts_at: datetime, ends_at: datetime,
                         ctx: RequestContext) -> dict[str, Any]:
        expert = await self._expert_for_admin(who, user_id)
        if ends_at <= starts_at or ends_at - starts_at > MAX_PERIOD:
            raise Unprocessable("A period ends after it starts and lasts at most 31 days.", code="invalid_field")
        row = {"id": str(uuid.uuid4()), "user_id": user_id, "org": expert["org"], "starts_at": starts_at,
               "ends_at": ends_at, "created_at": self.clock.now(), "created_by": who.user_id}

        async def change(conn: AsyncConnection) -> None:
            await store.insert_period(conn, row)

        await self._change(who, ctx, user_id, change, "roster.period.add")
        return _period_json(row)

    async def add_rule(self, who: Principal, user_id: str, weekday: int, start: str, end: str,
                       valid_from: date | None, valid_until: date | None, ctx: RequestContext) -> dict[str, Any]:
        expert = await self._expert_for_admin(who, user_id)
        if not 1 <= weekday <= 7:
            raise Unprocessable("weekday is 1 (Monday) to 7 (Sunday).", code="invalid_field")
        if not start < end or start == "24:00":
            raise Unprocessable("start must be before end (HH:MM, end may be 24:00).", code="invalid_field")
        if valid_from and valid_until and valid_until < valid_from:
            raise Unprocessable("valid_until must not be before valid_from.", code="invalid_field")
        row = {"id": str(uuid.uuid4()), "user_id": user_id, "org": expert["org"], "weekday": weekday,
               "start_time": start, "end_time": end, "valid_from": valid_from, "valid_until": valid_until,
               "created_at": self.clock.now(), "created_by": who.user_id}

        async def change(conn: AsyncConnection) -> None:
            await store.insert_rule(conn, row)

        await self._change(who, ctx, user_id, change, "roster.rule.add")
        return _rule_json(row)

    async def remove(self, who: Principal, kind: str, item_id: str, ctx: RequestContext) -> None:
        async with self.db.read() as conn:
            row = await (store.get_period(conn, item_id) if kind == "period" else store.get_rule(conn, item_id))
        if row is None or row["org"] != who.org:
            raise NotFound()
        await self._expert_for_admin(who, row["user_id"])

        async def change(conn: AsyncConnection) -> None:
            await (store.delete_period(conn, item_id) if kind == "period" else store.delete_rule(conn, item_id))

        await self._change(who, ctx, row["user_id"], change, f"roster.{kind}.remove")

    async def _change(self, who: Principal, ctx: RequestContext, user_id: str, change: Any, action: str) -> None:
        """Apply a roster change and, at once, what the roster now says about this expert."""
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> bool:
            await change(conn)
            if await store.watermark(conn) is None:  # later syncs apply changes from here on
                await store.set_watermark(conn, now)
            plan = (await self.plans(conn, [user_id], now, now + timedelta(seconds=1)))[user_id]
            flipped = await store.set_on_duty(conn, user_id, duty.on_duty_at(plan.periods, plan.rules, now), now,
                                              who.user_id)
            await record(conn, who, ctx, now, [AuditRecord(action=action, subject_user=user_id)])
            return flipped

        if await self.db.write(unit):
            self.version += 1
            await self._announce([user_id])

    # -- applying the roster over time -----------------------------------------------------------

    async def _due(self, conn: AsyncConnection, since: datetime | None, now: datetime) -> dict[str, bool]:
        """Experts whose roster changed state in (since, now] (all rostered ones on a first sync),
        with the state the roster gives them now."""
        window_start = since or now
        periods = await store.periods_between(conn, window_start - timedelta(seconds=1), now + timedelta(seconds=1))
        rules = await store.rules(conn)
        users = sorted({p["user_id"] for p in periods} | {r["user_id"] for r in rules})
        if not users:
            return {}
        plans = await self.plans(conn, users, window_start - timedelta(days=1), now + timedelta(days=1))
        return {user_id: duty.on_duty_at(plan.periods, plan.rules, now) for user_id, plan in plans.items()
                if since is None or duty.changes(plan.periods, plan.rules, since, now)}

    async def sync(self, now: datetime | None = None) -> list[tuple[str, bool]]:
        """Apply every change of roster state since the last sync; returns (expert, on_duty) set.

        Called about once a second: when nothing changed it only reads, and moves the watermark on
        at most once a minute."""
        now = now or self.clock.now()
        async with self.db.read() as conn:
            since = await store.watermark(conn)
            if since is not None and (since >= now or (now - since < WATERMARK_EVERY
                                                       and not await self._due(conn, since, now))):
                return []

        async def unit(conn: AsyncConnection) -> list[tuple[str, bool]]:
            since = await store.watermark(conn)
            if since is not None and since >= now:
                return []
            changed: list[tuple[str, bool]] = []
            audit = []
            for user_id, state in (await self._due(conn, since, now)).items():
                if await store.set_on_duty(conn, user_id, state, now, SYSTEM.user_id):
                    changed.append((user_id, state))
                    audit.append(AuditRecord(action="roster.duty." + ("on" if state else "off"), subject_user=user_id))
            await record(conn, SYSTEM, SYSTEM_CONTEXT, now, audit)
            await store.set_watermark(conn, now)
            return changed

        changed = await self.db.write(unit)
        if changed:
            self.version += 1
            await self._announce([u for u, _ in changed])
        return changed

    async def _announce(self, user_ids: list[str]) -> None:
        async with self.db.read() as conn:
            rows = [await directory_store.get_expert(conn, u) for u in user_ids]
        online = await self.presence.online(row["user_id"] for row in rows if row is not None)
        for row in rows:
            if row is None:
                continue
            body = expert_json(row, row["user_id"] in online)
            # Tells every connected user, on every instance, that an expert's entry changed.
            self.bus.broadcast({"type": "expert.updated", "expert": body})
