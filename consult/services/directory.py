"""The directory (docs/capabilities.md C6): the users the service has seen, named experts, duty and presence."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.model.vocabulary import INTAKE_ROLE
from consult.services import gate
from consult.services.events import EventBus
from consult.services.presence import Presence
from consult.storage import directory as store
from consult.storage import routing as routing_store
from consult.storage.db import Database

log = logging.getLogger("consult.directory")

_SEEN_REFRESH = timedelta(minutes=10)
DIRECTORY = Principal(user_id="system:directory", org="system", roles=frozenset(), name="Directory")


@dataclass(frozen=True)
class ExpertInput:
    name: str | None
    topics: list[str] | None
    pools: list[str] | None
    languages: list[str] | None
    on_duty: bool | None


def expert_json(row: dict[str, Any], online: bool) -> dict[str, Any]:
    return {
        "id": row["user_id"],
        "name": row["name"],
        "org": row["org"],
        "topics": list(row["topics"]),
        "pools": list(row["pools"]),
        "languages": list(row["languages"]),
        "on_duty": bool(row["on_duty"]),
        "presence": "online" if online else "offline",
        "updated_at": iso(row["updated_at"]),
    }


class Directory:
    def __init__(self, db: Database, bus: EventBus, clock: Clock, presence: Presence, *,
                 intake_pools: frozenset[str] = frozenset()) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        # Who is online on any instance (consult/services/presence.py).
        self.presence = presence
        # Intake pools of statutory contacts take social workers only (consult/model/intake.py).
        self.intake_pools = intake_pools
        self._seen: dict[str, tuple[datetime, tuple[str, frozenset[str], str]]] = {}
        self._expert_ids: set[str] = set()
        # Bumped on every change of an expert entry this process makes (routing caches by it).
        self.version = 0
        self._announcing: set[asyncio.Task[None]] = set()
        bus.on_presence(self._presence_changed)

    async def load(self) -> None:
        async with self.db.read() as conn:
            self._expert_ids = {row["user_id"] for row in await store.list_experts(conn)}

    async def seen(self, who: Principal) -> None:
        """Remember who a user is (org, roles, name) so they can be added as a participant."""
        now = self.clock.now()
        # A name from the identity provider: identifiers removed, never refused (consult/services/gate.py).
        name = gate.display_name(who.name)
        identity = (who.org, who.roles, name)
        last = self._seen.get(who.user_id)
        if last and last[1] == identity and now - last[0] < _SEEN_REFRESH:
            return
        self._seen[who.user_id] = (now, identity)
        moved = await self.db.write(lambda conn: self._record_seen(conn, who, name, now))
        if moved:
            self.version += 1

    async def _record_seen(self, conn: Any, who: Principal, name: str, now: datetime) -> bool:
        """Remember the user; an expert entry made for them under another organisation (named
        before they ever signed in) moves to their own organisation, off duty, for its admin to
        review. Returns whether an entry moved."""
        await store.upsert_user(conn, user_id=who.user_id, org=who.org, roles=sorted(who.roles), name=name,
                                at=now)
        # Read, not the in-memory id set: another instance may have named the expert.
        entry = await store.get_expert(conn, who.user_id)
        if entry is None or entry["org"] == who.org:
            return False
        await store.upsert_expert(conn, {**entry, "org": who.org, "on_duty": False, "updated_at": now,
                                         "updated_by": DIRECTORY.user_id})
        await record(conn, DIRECTORY, SYSTEM_CONTEXT, now, [AuditRecord(
            action="directory.expert.reassign", subject_user=who.user_id, recipient_org=who.org)])
        return True

    async def user(self, user_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            return await store.get_user(conn, user_id)

    async def expert(self, user_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            return await store.get_expert(conn, user_id)

    async def list_experts(self, org: str | None = None) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await store.list_experts(conn, org)
        online = await self.presence.online(r["user_id"] for r in rows)
        return [expert_json(r, r["user_id"] in online) for r in rows]

    async def put_expert(
        self, actor: Principal, user_id: str, data: ExpertInput, ctx: RequestContext
    ) -> dict[str, Any]:
        """Name or update an expert. An admin of the expert's org may change everything;
        the expert themselves may only go on or off duty."""
        now = self.clock.now()
        existing = await self.expert(user_id)
        known = await self.user(user_id)
        # The entry belongs to the user's own organisation, as their last sign-in said; for a
        # user the service has not seen yet, to the existing entry's, else to the naming admin's.
        org = known["org"] if known else (existing["org"] if existing else actor.org)
        if actions.allows(actor, "expert.manage") and org == actor.org:
            pass
        elif actor.user_id == user_id and existing is not None and actions.allows(actor, "expert.own_duty"):
            if any(v is not None for v in (data.name, data.topics, data.pools, data.languages)):
                raise Forbidden("An expert may only change their own on-duty status.")
            if data.on_duty is None:
                raise Unprocessable("on_duty is required.")
        else:
            raise Forbidden("Only an admin of the expert's organisation may change this entry.")
        gate.reference("name", data.name)  # shown to every user as typed
        for name, values in (("topics", data.topics), ("pools", data.pools), ("languages", data.languages)):
            gate.references(name, values or ())
        base: dict[str, Any] = existing or {
            "name": (known or {}).get("name") or data.name,
            "topics": [],
            "pools": [],
            "languages": ["fi"],
            "on_duty": False,
        }
        if not (data.name or base["name"]):
            raise Unprocessable("name is required for a user the service has not seen.")
        intake = sorted(set(data.pools or ()) & self.intake_pools)
        if intake and (known is None or INTAKE_ROLE not in known["roles"]):
            raise Unprocessable(f"Only a social worker who has signed in is named to an intake pool "
                                f"({', '.join(intake)}).", code="intake_role")
        expert: dict[str, Any] = {
            "user_id": user_id,
            "org": org,
            "name": data.name or base["name"],
            "topics": data.topics if data.topics is not None else list(base["topics"]),
            "pools": data.pools if data.pools is not None else list(base["pools"]),
            "languages": data.languages if data.languages is not None else list(base["languages"]),
            "on_duty": data.on_duty if data.on_duty is not None else bool(base["on_duty"]),
            "updated_at": now,
            "updated_by": actor.user_id,
        }

        new_pools = sorted(set(data.pools or ()) - set(base["pools"]) - self.intake_pools)

        async def unit(conn: Any) -> None:
            if new_pools:
                # Checked in the writing transaction: a pool exists once configured through the
                # pool endpoint (or already named by one of the organisation's experts).
                existing_pools = {p["name"] for p in await routing_store.list_pools(conn, org)}
                existing_pools |= {p for e in await store.list_experts(conn, org) for p in e["pools"]}
                unknown = [p for p in new_pools if p not in existing_pools]
                if unknown:
                    raise Unprocessable(
                        f"No such pool in {org}: {', '.join(unknown)}. A pool is created with "
                        f"PUT /api/v1/pools/{org}/{{name}} before experts are named to it.", code="unknown_pool")
            await store.upsert_expert(conn, expert)
            await record(
                conn, actor, ctx, now,
                [AuditRecord(action="directory.expert.update", subject_user=user_id)],
            )

        await self.db.write(unit)
        self._expert_ids.add(user_id)
        self.version += 1
        row = {**expert}
        body = expert_json(row, await self.presence.is_online(user_id))
        self.bus.broadcast({"type": "expert.updated", "expert": body})
        return body

    async def seed(self, entries: list[dict[str, Any]]) -> None:
        """Create experts that do not exist yet (demo data); existing entries are left as they are."""
        now = self.clock.now()

        async def unit(conn: Any) -> None:
            for entry in entries:
                roles = entry.get("roles", ["expert"])
                values = {k: v for k, v in entry.items() if k != "roles"}
                if await store.get_expert(conn, entry["user_id"]) is None:
                    await store.upsert_expert(conn, {**values, "updated_at": now, "updated_by": "system"})
                await store.upsert_user(
                    conn, user_id=entry["user_id"], org=entry["org"], roles=roles, name=entry["name"], at=now
                )

        await self.db.write(unit)
        self.version += 1
        await self.load()

    async def offer_targets(
        self, org: str, pool: str | None, expert_id: str | None
    ) -> list[str]:
        """The on-duty experts of ``org`` to whom a consultation with this routing is offered."""
        async with self.db.read() as conn:
            rows = await store.on_duty_experts(conn, org)
        return [
            r["user_id"]
            for r in rows
            if (expert_id is None or r["user_id"] == expert_id) and (pool is None or pool in r["pools"])
        ]

    def _presence_changed(self, user_id: str, online: bool) -> None:
        """An expert's first connection to this instance opened, or the last one closed. The
        change is announced only as the whole service sees it: the last connection here closing
        says nothing while the expert is connected to another instance."""
        if user_id not in self._expert_ids:
            return
        if online:
            # Deferred so the connection that caused the change is fully registered first.
            asyncio.get_running_loop().call_soon(self._announce_presence, user_id, True)
            return
        task = asyncio.get_running_loop().create_task(self._offline(user_id))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _offline(self, user_id: str) -> None:
        try:
            if not await self.presence.is_online(user_id):
                self._announce_presence(user_id, False)
        except Exception:  # the database is gone (shutdown); nobody is left to tell
            log.warning("presence of an expert could not be read; its change is not announced")

    def _announce_presence(self, user_id: str, online: bool) -> None:
        self.bus.broadcast({"type": "presence", "user_id": user_id, "presence": "online" if online else "offline"})
