"""Agreements between organisations (docs/capabilities.md C6a): who may consult whom, from when until when, on
which topics and pools. No agreement in force, no new consultation; every change is a new
version, kept and audited. The experiment of 2015-16 ran on such a written agreement between
Kela and the City of Vantaa, terminable at six months' notice; today the party is the wellbeing
services county (org id ``vantaa``: the Vantaa and Kerava wellbeing services county).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import subjects
from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.services import gate
from consult.storage import agreements as store
from consult.storage.db import Database

SYSTEM = Principal(user_id="system:agreements", org="system", roles=frozenset(), name="Agreements")


@dataclass(frozen=True)
class AgreementInput:
    reference: str | None = None
    parties: tuple[str, str] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    clear_until: bool = False
    topics: list[str] | None = None
    pools: list[str] | None = None


def agreement_json(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reference": row["reference"],
        "parties": [row["org_a"], row["org_b"]],
        "valid_from": iso(row["valid_from"]),
        "valid_until": iso(row["valid_until"]),
        "in_force": row["valid_from"] <= now and (row["valid_until"] is None or now < row["valid_until"]),
        "topics": list(row["topics"]),
        "pools": list(row["pools"]),
        "version": row["version"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }


def covers(row: dict[str, Any], topic: str, pool: str | None) -> bool:
    return (not row["topics"] or topic in row["topics"]) and (not row["pools"] or pool is None
                                                              or pool in row["pools"])


class Agreements:
    def __init__(self, db: Database, clock: Clock, *, orgs: frozenset[str]) -> None:
        self.db = db
        self.clock = clock
        self.orgs = orgs

    async def require(self, origin: str, target: str, topic: str, pool: str | None) -> None:
        """Refuse (403 ``no_agreement``) unless an agreement in force covers this consultation."""
        async with self.db.read() as conn:
            rows = await store.in_force(conn, origin, target, self.clock.now())
        if any(covers(r, topic, pool) for r in rows):
            return
        scope = f"topic '{topic}'" + (f" and pool '{pool}'" if pool else "")
        raise Forbidden(
            f"No agreement between {origin} and {target} covering {scope} is in force; "
            f"an admin of either organisation can record one.",
            code="no_agreement",
        )

    async def list_for(self, who: Principal) -> list[dict[str, Any]]:
        now = self.clock.now()
        async with self.db.read() as conn:
            rows = await store.list_for_org(conn, who.org)
        return [agreement_json(r, now) for r in rows]

    async def get(self, who: Principal, agreement_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await store.get(conn, agreement_id)
            if row is None or who.org not in (row["org_a"], row["org_b"]):
                raise NotFound()
            history = await store.versions(conn, agreement_id)
        body = agreement_json(row, self.clock.now())
        body["versions"] = [{"version": h["version"], "at": iso(h["at"]), "by": h["actor_id"],
                             "agreement": h["snapshot"]} for h in history]
        return body

    async def create(self, who: Principal, data: AgreementInput, ctx: RequestContext) -> dict[str, Any]:
        if not actions.allows(who, "agreement.manage"):
            raise Forbidden("Only admins record agreements.")
        if data.parties is None or data.reference is None or data.valid_from is None:
            raise Unprocessable("reference, parties and valid_from are required.", code="invalid_field")
        a, b = sorted(data.parties)
        if a == b or a not in self.orgs or b not in self.orgs:
            raise Unprocessable("parties must be two different known organisations.", code="unknown_org")
        if who.org not in (a, b):
            raise Forbidden("Only an admin of a party organisation records its agreements.")
        _gate(data)
        _check_window(data.valid_from, data.valid_until)
        now = self.clock.now()
        row = {
            "id": str(uuid.uuid4()), "reference": data.reference, "org_a": a, "org_b": b,
            "valid_from": data.valid_from, "valid_until": data.valid_until,
            "topics": data.topics or [], "pools": data.pools or [], "version": 1,
            "created_at": now, "created_by": who.user_id, "updated_at": now, "updated_by": who.user_id,
        }
        await self.db.write(lambda conn: self._store(conn, who, ctx, row, "agreement.create", new=True))
        return agreement_json(row, now)

    async def update(self, who: Principal, agreement_id: str, data: AgreementInput, ctx: RequestContext
                     ) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await store.get(conn, agreement_id)
        if row is None or who.org not in (row["org_a"], row["org_b"]):
            raise NotFound()
        if not actions.allows(who, "agreement.manage"):
            raise Forbidden("Only admins change agreements.")
        _gate(data)
        if data.parties is not None and sorted(data.parties) != [row["org_a"], row["org_b"]]:
            raise Unprocessable("The parties of an agreement do not change; record a new one.",
                                code="invalid_field")
        changed = dict(row)
        for name in ("reference", "valid_from", "topics", "pools"):
            value = getattr(data, name)
            if value is not None:
                changed[name] = value
        if data.valid_until is not None or data.clear_until:
            changed["valid_until"] = data.valid_until
        _check_window(changed["valid_from"], changed["valid_until"])
        now = self.clock.now()
        changed.update(version=row["version"] + 1, updated_at=now, updated_by=who.user_id)
        await self.db.write(lambda conn: self._store(conn, who, ctx, changed, "agreement.update",
                                                     new=False, expected=row["version"]))
        return agreement_json(changed, now)

    async def _store(self, conn: AsyncConnection, who: Principal, ctx: RequestContext, row: dict[str, Any],
                     action: str, *, new: bool, expected: int = 0) -> None:
        if new:
            await store.insert_agreement(conn, row)
        elif not await store.update_agreement(conn, row["id"], expected,
                                              {k: v for k, v in row.items() if k not in ("id", "created_at",
                                                                                         "created_by")}):
            raise Conflict("The agreement was changed meanwhile; reload it.", code="stale")
        snapshot = agreement_json(row, row["updated_at"])
        snapshot.pop("in_force")
        await store.insert_version(conn, {"agreement_id": row["id"], "version": row["version"],
                                          "snapshot": snapshot, "at": row["updated_at"],
                                          "actor_id": who.user_id, "actor_org": who.org})
        stored = await store.version(conn, row["id"], row["version"])
        assert stored is not None  # written just before, in this transaction
        # The agreement is what permits consultations between the parties: its id is the rule.
        await record(conn, who, ctx, row["updated_at"], [AuditRecord(
            action=action, rule_id=f"agreement:{row['id']}@{row['version']}", basis=row["reference"][:200],
            subject_digest=subjects.agreement_version(stored))])

    async def seed(self, reference: str, parties: tuple[str, str], valid_from: datetime) -> None:
        """Record an agreement between ``parties`` unless they already have one (demo data)."""
        async with self.db.read() as conn:
            if await store.between(conn, *parties):
                return
        now = self.clock.now()
        a, b = sorted(parties)
        row = {
            "id": str(uuid.uuid4()), "reference": reference, "org_a": a, "org_b": b, "valid_from": valid_from,
            "valid_until": None, "topics": [], "pools": [], "version": 1, "created_at": now,
            "created_by": SYSTEM.user_id, "updated_at": now, "updated_by": SYSTEM.user_id,
        }
        await self.db.write(lambda conn: self._store(conn, SYSTEM, SYSTEM_CONTEXT, row, "agreement.create",
                                                     new=True))


def _gate(data: AgreementInput) -> None:
    # The reference is copied into the audit log's basis column, which is append-only; pool
    # names are shown as typed (consult/services/gate.py).
    gate.reference("reference", data.reference)
    gate.references("topics", data.topics or ())
    gate.references("pools", data.pools or ())


def _check_window(start: datetime, end: datetime | None) -> None:
    if end is not None and end <= start:
        raise Unprocessable("valid_until must be after valid_from.", code="invalid_field")
