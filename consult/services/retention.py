"""Retention (SPEC C4): closed consultations are deleted after the retention period by destroying
their data key (crypto-shredding). Content becomes unreadable everywhere it was stored — the
database, its WAL and any backup — while metadata and the audit trail remain. Legal hold stops it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, NotFound
from consult.model import Clock, Principal, iso
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.services.content import Content
from consult.services.vault import Vault, consultation_owner
from consult.storage import consultations as consultation_store
from consult.storage import retention as store
from consult.storage.db import Database

log = logging.getLogger("consult.retention")

SYSTEM = Principal(user_id="system:retention", org="system", roles=frozenset(), name="Retention")
BATCH = 200


@dataclass(frozen=True)
class RetentionReport:
    shredded: list[str]
    held: int

    def as_json(self) -> dict[str, Any]:
        return {"shredded": len(self.shredded), "consultation_ids": self.shredded, "held": self.held}


class Retention:
    def __init__(self, db: Database, vault: Vault, content: Content, clock: Clock, *, period: timedelta) -> None:
        self.db = db
        self.vault = vault
        self.content = content
        self.clock = clock
        self.period = period

    async def run(self, ctx: RequestContext = SYSTEM_CONTEXT) -> RetentionReport:
        now = self.clock.now()
        cutoff = now - self.period
        shredded: list[str] = []
        while True:
            async with self.db.read() as conn:
                batch = await store.due(conn, cutoff, BATCH)
            if not batch:
                break
            for row in batch:
                if await self._shred(row, ctx):
                    shredded.append(row["id"])
            if len(batch) < BATCH:
                break
        async with self.db.read() as conn:
            held = await store.held(conn, cutoff)
        if shredded and not await self.db.checkpoint():
            log.warning("retention run: the WAL could not be truncated now; SQLite will checkpoint it later")
        log.info("retention run: shredded=%d held=%d ids=%s", len(shredded), held, ",".join(shredded))
        return RetentionReport(shredded, held)

    async def _shred(self, row: dict[str, Any], ctx: RequestContext) -> bool:
        owner = consultation_owner(row["id"])
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> bool:
            if not await store.shred(conn, row["id"], owner, now):
                return False
            await record(conn, SYSTEM, ctx, now, [AuditRecord(
                action="retention.shred", consultation_id=row["id"], client_ref=row["client_ref"],
                basis=f"retention:{self.period.days}d")])
            return True

        done = await self.db.write(unit)
        self.vault.forget(owner)
        return done

    async def legal_hold(self, who: Principal, consultation_id: str, hold: bool, ctx: RequestContext) -> dict[str, Any]:
        """Privacy officers and admins of either party organisation set or lift a legal hold."""
        if not (who.has("privacy_officer") or who.has("admin")):
            raise Forbidden("Only privacy officers and admins set a legal hold.", code="role")
        async with self.db.read() as conn:
            row = await consultation_store.get(conn, consultation_id) if len(consultation_id) <= 36 else None
        if row is None or who.org not in (row["origin_org"], row["target_org"]):
            raise NotFound()
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> None:
            await store.set_legal_hold(conn, consultation_id, hold)
            await record(conn, who, ctx, now, [AuditRecord(
                action="consultation.legal_hold." + ("set" if hold else "clear"),
                consultation_id=consultation_id, client_ref=row["client_ref"])])

        await self.db.write(unit)
        return {"consultation_id": consultation_id, "legal_hold": hold, "shredded_at": iso(row["shredded_at"])}

