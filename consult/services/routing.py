"""Routing at counter speed (docs/capabilities.md C1, C6): who is offered a consultation, what the advisor is
told at once, and what happens when nobody claims it.

A new consultation is offered to every on-duty expert its routing matches who is below the
pool's limit of open consultations. If nobody is on duty the answer says so at once, with the
next on-duty time from the roster and the expected wait. If nobody claims it within the pool's
SLA (by urgency; 5 minutes for ``immediate`` unless set otherwise) it is offered again, then
escalated to the pool's backup pool, and after that re-offered every SLA period until claimed.
Each step is audited and shown live to the advisor (``consultation.reoffered``,
``consultation.escalated``). Steps run in :meth:`Routing.tick`, driven by the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.consultations import Consultation
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.model.intake import may_receive
from consult.services import gate
from consult.services.agreements import Agreements
from consult.services.directory import Directory
from consult.services.events import Delivery, EventBus
from consult.services.roster import Roster
from consult.storage import consultations as consultation_store
from consult.storage import directory as directory_store
from consult.storage import routing as store
from consult.storage.db import Database

log = logging.getLogger("consult.routing")

SYSTEM = Principal(user_id="system:routing", org="system", roles=frozenset(), name="Routing")
HISTORY = timedelta(days=30)
HISTORY_SAMPLES = 50
MIN_SAMPLES = 3
# Experts of an organisation are read on every offer and claim; this process's own changes
# invalidate the copy at once, another instance's within this long.
EXPERT_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class PoolSettings:
    sla: dict[str, int] = field(default_factory=lambda: {"immediate": 300, "today": 7200, "normal": 86400})
    reoffers: int = 1
    backup_pool: str | None = None
    max_open_per_expert: int = 0  # 0: no limit

    def full(self, load: int) -> bool:
        return 0 < self.max_open_per_expert <= load

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> PoolSettings:
        if row is None:
            return cls()
        return cls({"immediate": row["sla_immediate_s"], "today": row["sla_today_s"],
                    "normal": row["sla_normal_s"]}, row["reoffers"], row["backup_pool"], row["max_open_per_expert"])


DEFAULT_POOL = PoolSettings()


@dataclass
class Plan:
    """What routing decided for a new consultation, before it is stored."""

    targets: list[str]
    sla_seconds: int
    on_duty: int
    at_capacity: int
    next_on_duty: datetime | None
    expected_wait: float | None
    queue_position: int
    now: datetime
    online: int = 0  # of the targets, how many are connected to any instance now

    @property
    def state(self) -> str:
        if self.targets:
            return "offered"
        return "all_busy" if self.on_duty else "nobody_on_duty"

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "offered_to": len(self.targets),
            "offered_online": self.online,
            "on_duty": self.on_duty,
            "at_capacity": self.at_capacity,
            "sla_seconds": self.sla_seconds,
            "sla_due_at": iso(self.now + timedelta(seconds=self.sla_seconds)),
            "next_on_duty": iso(self.next_on_duty),
            "expected_wait_seconds": None if self.expected_wait is None else round(self.expected_wait),
            "queue_position": self.queue_position,
        }


class Routed(Protocol):
    """What the routing reads of a consultation (or of one about to be opened, or of a routing step)."""

    @property
    def target_org(self) -> str: ...

    @property
    def pool(self) -> str | None: ...

    @property
    def expert_id(self) -> str | None: ...

    @property
    def escalated_pool(self) -> str | None: ...

    @property
    def purpose(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where a consultation is routed, without the consultation."""

    target_org: str
    pool: str | None
    expert_id: str | None
    escalated_pool: str | None
    purpose: str


def matches(c: Routed, expert: dict[str, Any]) -> bool:
    """Whether the routing of consultation ``c`` reaches ``expert`` (on duty or not): a statutory
    contact reaches only social workers, anything else only experts (``consult.model.intake``)."""
    if expert["org"] != c.target_org:
        return False
    if not may_receive(c.purpose, expert.get("roles")):
        return False
    direct = ((c.expert_id is None or c.expert_id == expert["user_id"])
              and (c.pool is None or c.pool in expert["pools"]))
    return direct or (c.escalated_pool is not None and c.escalated_pool in expert["pools"])


#: Renders and keeps ``consultation.offered`` for each target inside a write unit (the consultations
#: service); returns the deliveries to send after the commit.
Publisher = Callable[[AsyncConnection, str, list[str], dict[str, Any]], Awaitable[list[Delivery]]]


class Routing:
    def __init__(self, db: Database, bus: EventBus, clock: Clock, roster: Roster, agreements: Agreements,
                 directory: Directory | None = None) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.roster = roster
        self.agreements = agreements
        self.directory = directory
        self._publish_offer: Publisher | None = None
        self._lock = asyncio.Lock()
        self._experts: dict[str, tuple[tuple[int, int], float, list[dict[str, Any]]]] = {}
        self._on_duty: set[str] | None = None

    async def experts(self, org: str, conn: AsyncConnection | None = None) -> list[dict[str, Any]]:
        """The named experts of ``org`` (a short-lived copy, dropped on any change made here)."""
        version = (self.directory.version if self.directory is not None else 0, self.roster.version)
        hit = self._experts.get(org)
        now = time.monotonic()
        if hit is not None and hit[0] == version and now - hit[1] < EXPERT_CACHE_SECONDS:
            return hit[2]
        if conn is None:
            async with self.db.read() as fresh:
                rows = await store.experts_of(fresh, org)
        else:
            rows = await store.experts_of(conn, org)
        self._experts[org] = (version, now, rows)
        return rows

    def on_offer(self, publisher: Publisher) -> None:
        """How to deliver ``consultation.offered`` (rendered per reader by the consultations service)."""
        self._publish_offer = publisher

    # -- pools --------------------------------------------------------------------------------

    async def pool(self, conn: AsyncConnection, org: str, name: str | None) -> PoolSettings:
        return DEFAULT_POOL if name is None else PoolSettings.of(await store.get_pool(conn, org, name))

    # -- at creation ----------------------------------------------------------------------------

    async def require_agreement(self, origin: str, target: str, topic: str, pool: str | None) -> None:
        await self.agreements.require(origin, target, topic, pool)

    async def plan(self, target_org: str, pool: str | None, expert_id: str | None, urgency: str,
                   purpose: str = "general", sla_seconds: int | None = None) -> Plan:
        """``sla_seconds`` overrides the pool's service level (a statutory contact's own)."""
        now = self.clock.now()
        c = Route(target_org, pool, expert_id, None, purpose)
        async with self.db.read() as conn:
            settings = await self.pool(conn, target_org, pool)
            reachable = [e for e in await self.experts(target_org, conn) if matches(c, e)]
            on_duty = [e for e in reachable if e["on_duty"]]
            targets, busy = await self._under_limit(conn, on_duty, settings)
            next_on = None if on_duty else await self.roster.next_on_duty(
                conn, [e["user_id"] for e in reachable], now)
            wait = await self._expected_wait(conn, target_org, pool, urgency, now)
            position = await store.queue_position(conn, target_org, pool, urgency, now)
        if not on_duty and wait is not None and next_on is not None:
            wait += (next_on - now).total_seconds()
        elif not on_duty and next_on is not None:
            wait = (next_on - now).total_seconds()
        sla = settings.sla[urgency] if sla_seconds is None else sla_seconds
        online = len(await self.online(targets))
        return Plan(targets, sla, len(on_duty), busy, next_on, wait, position + 1, now, online)

    async def online(self, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` connected to any instance of the service now."""
        if self.directory is None:
            return {u for u in user_ids if self.bus.is_online(u)}
        return await self.directory.presence.online(user_ids)

    async def status(self, c: Consultation) -> dict[str, Any] | None:
        """Where an open consultation ``c`` stands now, for its readers (read-only): the routing
        outcome as at creation (``Plan.as_json``) computed afresh — offered to how many, on duty,
        next on duty, the expected wait still to go, the place in the queue — with the stored
        step (stage, offers, next step). None once it is claimed or closed."""
        if c.status != "open":
            return None
        now = self.clock.now()
        async with self.db.read() as conn:
            row = await store.get_routing(conn, c.id)
            settings = await self.pool(conn, c.target_org, c.pool)
            reachable = [e for e in await self.experts(c.target_org, conn) if matches(c, e)]
            on_duty = [e for e in reachable if e["on_duty"]]
            targets, busy = await self._under_limit(conn, on_duty, settings)
            next_on = None if on_duty else await self.roster.next_on_duty(
                conn, [e["user_id"] for e in reachable], now)
            typical = await self._expected_wait(conn, c.target_org, c.pool, c.urgency, now)
            ahead = await store.queue_position(conn, c.target_org, c.pool, c.urgency, c.created_at)
        waited = (now - c.created_at).total_seconds()
        wait = None if typical is None else max(0.0, typical - waited)
        if next_on is not None:
            wait = (wait or 0.0) + (next_on - now).total_seconds()
        sla = row["sla_seconds"] if row is not None else settings.sla[c.urgency]
        body = Plan(targets, sla, len(on_duty), busy, next_on, wait, ahead + 1, now).as_json()
        body.update({
            "sla_due_at": iso(c.created_at + timedelta(seconds=sla)),
            "stage": row["stage"] if row is not None else None,
            "offers": row["offers"] if row is not None else None,
            "next_step_at": iso(row["next_at"]) if row is not None else None,
            "escalated_pool": c.escalated_pool,
            "as_of": iso(now),
        })
        return body

    async def _under_limit(self, conn: AsyncConnection, experts: list[dict[str, Any]], settings: PoolSettings
                           ) -> tuple[list[str], int]:
        load = await store.open_load(conn, [e["user_id"] for e in experts])
        free = [e["user_id"] for e in experts if not settings.full(load.get(e["user_id"], 0))]
        return free, len(experts) - len(free)

    async def _expected_wait(self, conn: AsyncConnection, org: str, pool: str | None, urgency: str,
                             now: datetime) -> float | None:
        """Median time to claim of the latest claims of this routing (or of the organisation)."""
        since = now - HISTORY
        samples = await store.recent_claims(conn, org, urgency, since, pool=pool, limit=HISTORY_SAMPLES)
        if len(samples) < MIN_SAMPLES and pool is not None:
            samples = await store.recent_claims(conn, org, urgency, since, pool=None, limit=HISTORY_SAMPLES)
        if len(samples) < MIN_SAMPLES:
            return None
        return statistics.median((claimed - created).total_seconds() for created, claimed in samples)

    async def record_plan(self, conn: AsyncConnection, consultation_id: str, target_org: str, pool: str | None,
                          urgency: str, plan: Plan) -> None:
        """Store the routing state with the consultation (inside its write unit)."""
        await store.insert_routing(conn, {
            "consultation_id": consultation_id, "org": target_org, "pool": pool, "urgency": urgency,
            "sla_seconds": plan.sla_seconds, "stage": "offered", "offers": 1, "escalations": 0,
            "first_offered_to": len(plan.targets), "next_at": plan.now + timedelta(seconds=plan.sla_seconds),
            "escalated_at": None, "created_at": plan.now,
        })

    async def targets(self, c: Routed) -> list[str]:
        """On-duty experts the consultation's routing (including escalation) reaches, below their limit."""
        async with self.db.read() as conn:
            settings = await self.pool(conn, c.target_org, c.pool)
            on_duty = [e for e in await self.experts(c.target_org, conn) if e["on_duty"] and matches(c, e)]
            free, _busy = await self._under_limit(conn, on_duty, settings)
        return free

    async def watchers(self, c: Routed) -> list[str]:
        """Every on-duty expert the routing reaches, whatever their load (to see it claimed)."""
        return [e["user_id"] for e in await self.experts(c.target_org) if e["on_duty"] and matches(c, e)]

    async def check_capacity(self, conn: AsyncConnection, who: Principal, c: Routed) -> None:
        """Refuse a claim beyond the pool's limit of open consultations per expert (in the claim's unit)."""
        settings = await self.pool(conn, c.target_org, c.pool)
        load = (await store.open_load(conn, [who.user_id])).get(who.user_id, 0)
        if settings.full(load):
            raise Conflict(f"You already hold {load} open consultations, the limit of this pool.",
                           code="at_capacity")

    # -- over time ------------------------------------------------------------------------------

    async def tick(self) -> dict[str, int]:
        """Apply the roster and every due routing step; returns what was done (for logs and tests)."""
        async with self._lock:
            now = self.clock.now()
            if self._on_duty is None:
                async with self.db.read() as conn:
                    self._on_duty = await store.on_duty_ids(conn)
            changes = await self.roster.sync(now)
            done = {"duty_changes": len(changes), "reoffered": 0, "escalated": 0}
            async with self.db.read() as conn:
                on_duty = await store.on_duty_ids(conn)
                due = await store.due(conn, now)
            # Whoever came on duty since the last step (by the roster, their own toggle or another
            # instance) is offered what waits for them.
            came_on = sorted(on_duty - self._on_duty)
            self._on_duty = on_duty
            if came_on:
                await self._offer_waiting(came_on)
            for step in due:
                kind = await self._step(step, now)
                if kind:
                    done[kind] += 1
            return done

    async def _offer_waiting(self, user_ids: list[str]) -> None:
        """Offer the open queue to experts who just came on duty."""
        if self._publish_offer is None:
            return
        publish = self._publish_offer
        offers: list[tuple[str, str]] = []
        async with self.db.read() as conn:
            for user_id in user_ids:
                expert = await directory_store.get_expert(conn, user_id)
                if expert is None:
                    continue
                user = await directory_store.get_user(conn, user_id)
                roles = None if user is None else list(user["roles"])
                queue = await store.queue(conn, expert["org"], user_id, list(expert["pools"]), 50, roles)
                offers += [(item["id"], user_id) for item in queue]
        for cid, user_id in offers:
            self.bus.send(await self.db.write(partial(_offer_one, publish, cid, user_id)))

    async def _step(self, step: dict[str, Any], now: datetime) -> str | None:
        cid, expected = step["consultation_id"], step["next_at"]
        if step["status"] != "open":
            await self.db.write(lambda conn: store.advance(conn, cid, expected, {
                "next_at": None, "stage": "claimed" if step["status"] == "claimed" else "closed"}))
            return None
        async with self.db.read() as conn:
            settings = await self.pool(conn, step["org"], step["pool"])
            backup = settings.backup_pool
            can_escalate = (backup is not None and step["escalated_pool"] is None and backup != step["pool"]
                            and step["offers"] > settings.reoffers)
            if can_escalate:
                sla = (await self.pool(conn, step["org"], backup)).sla.get(step["urgency"], step["sla_seconds"])
        kind = "escalated" if can_escalate else "reoffered"
        values: dict[str, Any] = {"offers": step["offers"] + 1,
                                  "next_at": now + timedelta(seconds=sla if can_escalate else step["sla_seconds"])}
        if can_escalate:
            values.update(stage="escalated", escalations=step["escalations"] + 1, escalated_at=now)
        elif step["stage"] == "offered":
            values["stage"] = "reoffered"

        c = Route(step["target_org"], step["pool"], step["expert_id"],
                  backup if can_escalate else step["escalated_pool"], step["purpose"])
        targets = await self.targets(c)
        body = {"consultation_id": cid, "offers": values["offers"], "offered_to": len(targets),
                "pool": backup if can_escalate else step["pool"], "next_at": iso(values["next_at"]), "at": iso(now)}

        async def unit(conn: AsyncConnection) -> list[Delivery] | None:
            if not await store.advance(conn, cid, expected, values):
                return None
            if can_escalate:
                await store.set_escalated_pool(conn, cid, backup)  # type: ignore[arg-type]
            await record(conn, SYSTEM, SYSTEM_CONTEXT, now, [AuditRecord(
                action="routing.escalate" if can_escalate else "routing.reoffer", consultation_id=cid,
                rule_id=f"pool:{step['org']}/{backup if can_escalate else step['pool'] or '-'}")])
            # The offers and the participants' notice are kept in the step's own transaction.
            live: list[Delivery] = []
            if self._publish_offer is not None and targets:
                live += await self._publish_offer(conn, cid, targets, {"reason": kind})
            participants = [p.user_id for p in await consultation_store.list_participants(conn, cid)]
            live += await self.bus.emit(conn, cid, participants, lambda _u: {"type": f"consultation.{kind}", **body})
            return live

        live = await self.db.write(unit)
        if live is None:
            return None  # another instance took this step
        self.bus.send(live)
        return kind

    # -- the queue and availability ------------------------------------------------------------

    async def queue(self, who: Principal, limit: int, ctx: RequestContext) -> list[dict[str, Any]]:
        """Open consultations offered to this expert: by urgency, then oldest first (no content).
        Each one listed is recorded as seen (``queue.read``), with its client."""
        now = self.clock.now()
        async with self.db.read() as conn:
            expert = await directory_store.get_expert(conn, who.user_id)
            if expert is None or expert["org"] != who.org or not actions.allows(who, "consultation.claim"):
                return []
            rows = await store.queue(conn, who.org, who.user_id, list(expert["pools"]), limit, who.roles)
        if rows:
            await self.db.write(lambda conn: record(conn, who, ctx, now, [
                AuditRecord(action="queue.read", consultation_id=r["id"], client_ref=r["client_ref"],
                            purpose=r["purpose"]) for r in rows]))
        return [{
            "id": r["id"], "topic": r["topic"], "urgency": r["urgency"], "pool": r["pool"],
            "escalated_pool": r["escalated_pool"], "origin_org": r["origin_org"],
            "created_at": iso(r["created_at"]), "waiting_seconds": round((now - r["created_at"]).total_seconds()),
            "stage": r["stage"], "offers": r["offers"], "next_step_at": iso(r["next_at"]),
            "sla_due_at": iso(r["created_at"] + timedelta(seconds=r["sla_seconds"])) if r["sla_seconds"] else None,
        } for r in rows]

    async def pools(self, org: str | None) -> list[dict[str, Any]]:
        """Every pool with who is on duty now, the next on-duty time and the expected wait (docs/capabilities.md C6)."""
        now = self.clock.now()
        async with self.db.read() as conn:
            configured = {(p["org"], p["name"]): p for p in await store.list_pools(conn, org)}
            experts = await directory_store.list_experts(conn, org)
            names = set(configured) | {(e["org"], p) for e in experts for p in e["pools"]}
            waiting = await store.open_counts(conn, org)
            out = []
            for pool_org, name in sorted(names):
                members = [e for e in experts if e["org"] == pool_org and name in e["pools"]]
                on = [e for e in members if e["on_duty"]]
                on_online = await self.online([e["user_id"] for e in on])
                settings = PoolSettings.of(configured.get((pool_org, name)))
                next_on = None if on else await self.roster.next_on_duty(conn, [e["user_id"] for e in members], now)
                out.append({
                    "org": pool_org, "name": name, "configured": (pool_org, name) in configured,
                    "sla_seconds": dict(settings.sla), "reoffers": settings.reoffers,
                    "backup_pool": settings.backup_pool, "max_open_per_expert": settings.max_open_per_expert,
                    "experts": len(members), "on_duty": len(on), "on_duty_online": len(on_online),
                    "next_on_duty": iso(next_on),
                    "waiting": waiting.get((pool_org, name), 0),
                    "expected_wait_seconds": {
                        u: (None if (w := await self._expected_wait(conn, pool_org, name, u, now)) is None
                            else round(w)) for u in ("immediate", "today", "normal")},
                })
        return out

    async def unpooled_waiting(self, org: str | None) -> list[dict[str, Any]]:
        """Open consultations per organisation sent to any on-duty expert (no pool named)."""
        async with self.db.read() as conn:
            counts = await store.open_counts(conn, org)
        return [{"org": o, "waiting": n} for (o, p), n in sorted(counts.items(), key=lambda x: x[0][0]) if p is None]

    async def set_pool(self, who: Principal, org: str, name: str, values: dict[str, Any], ctx: RequestContext
                       ) -> dict[str, Any]:
        """Configure a pool; the answer is its status as ``pools`` shows it."""
        await self._write_pool(who, org, name, values, ctx)
        return next(p for p in await self.pools(org) if p["name"] == name)

    async def _write_pool(self, who: Principal, org: str, name: str, values: dict[str, Any],
                          ctx: RequestContext) -> None:
        now = self.clock.now()
        gate.reference("backup_pool", values.get("backup_pool"))  # shown to every user as typed
        if values.get("backup_pool") == name:
            raise Unprocessable("A pool is not its own backup.", code="invalid_field")
        async with self.db.read() as conn:
            current = PoolSettings.of(await store.get_pool(conn, org, name))
        sla = {**current.sla, **(values.get("sla_seconds") or {})}
        row = {
            "org": org, "name": name, "sla_immediate_s": sla["immediate"], "sla_today_s": sla["today"],
            "sla_normal_s": sla["normal"],
            "reoffers": values.get("reoffers", current.reoffers),
            "backup_pool": values.get("backup_pool", current.backup_pool),
            "max_open_per_expert": values.get("max_open_per_expert", current.max_open_per_expert),
            "updated_at": now, "updated_by": who.user_id,
        }

        async def unit(conn: AsyncConnection) -> None:
            await store.upsert_pool(conn, row)
            await record(conn, who, ctx, now, [AuditRecord(action="routing.pool.update",
                                                           rule_id=f"pool:{org}/{name}")])

        await self.db.write(unit)

    async def seed_pool(self, org: str, name: str, **values: Any) -> None:
        """Configure a pool that is not configured yet (demo start-up): the write and audit record
        of ``set_pool``, without reading back every pool's status (expected waits) for an answer."""
        async with self.db.read() as conn:
            if await store.get_pool(conn, org, name) is not None:
                return
        await self._write_pool(SYSTEM, org, name, values, SYSTEM_CONTEXT)


async def _offer_one(publish: Publisher, cid: str, user_id: str, conn: AsyncConnection) -> list[Delivery]:
    """The write unit offering one open consultation to an expert who came on duty."""
    return await publish(conn, cid, [user_id], {"reason": "on_duty"})
