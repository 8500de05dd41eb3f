"""Retention (docs/capabilities.md C4) per record type and controller (``consult/model/retention.py``).

Closed consultations are deleted after their period by destroying their data key
(crypto-shredding): content becomes unreadable everywhere it was stored — the database, its WAL
and any backup — while metadata and the audit trail remain. Legal hold stops it. Consultations
never closed are closed by the system after a period without activity, and then age as closed
ones. Ended consents, revoked prohibitions and client registry entries with nothing left are
deleted. The audit log is never deleted (its Merkle tree cannot lose a leaf); each run counts
the records past the log's period. Every close, shred and deletion is itself an audit record
carrying ids and the period applied, never content or an identity code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import subjects
from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, NotFound
from consult.model import Clock, Principal, actions, iso
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.model.retention import (
    AUDIT_LOG,
    CLIENT,
    CONSENT,
    CONSULTATION_CLOSED,
    CONSULTATION_INACTIVE,
    PROHIBITION,
    RetentionSchedule,
)
from consult.services.content import Content
from consult.services.vault import Vault, consultation_owner
from consult.storage import consultations as consultation_store
from consult.storage import retention as store
from consult.storage.db import Database

log = logging.getLogger("consult.retention")

SYSTEM = Principal(user_id="system:retention", org="system", roles=frozenset(), name="Retention")
BATCH = 200


@dataclass
class RetentionReport:
    """What one run did, by record type; ids only, never content."""

    shredded: list[str] = field(default_factory=list)
    held: int = 0
    closed_inactive: list[str] = field(default_factory=list)
    consents_deleted: list[str] = field(default_factory=list)
    prohibitions_deleted: list[str] = field(default_factory=list)
    clients_deleted: int = 0
    audit_past_period: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"shredded": len(self.shredded), "consultation_ids": self.shredded, "held": self.held,
                "closed_inactive": self.closed_inactive, "consents_deleted": self.consents_deleted,
                "prohibitions_deleted": self.prohibitions_deleted, "clients_deleted": self.clients_deleted,
                "audit_records_past_period": self.audit_past_period, "audit_records_deleted": 0}


def _basis(kind: str, days: int) -> str:
    return f"retention:{kind}:{days}d"


class Retention:
    """Applies the retention schedule: each step is one transaction per record with its audit record."""

    def __init__(self, db: Database, vault: Vault, content: Content, clock: Clock, *,
                 period: timedelta | None = None, schedule: RetentionSchedule | None = None,
                 actor: Principal = SYSTEM) -> None:
        self.actor = actor  # the audit log's actor of each step: the service, or the command line's operator
        self.db = db
        self.vault = vault
        self.content = content
        self.clock = clock
        schedule = schedule or RetentionSchedule()
        if period is not None and CONSULTATION_CLOSED not in schedule.days:
            schedule = schedule.with_days(CONSULTATION_CLOSED, period.days)
        self.schedule = schedule

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.schedule.period(CONSULTATION_CLOSED, fallback=730))

    def _days(self, kind: str, *orgs: str | None) -> int:
        return self.schedule.period(kind, *orgs, fallback=730)

    async def run(self, ctx: RequestContext = SYSTEM_CONTEXT) -> RetentionReport:
        report = RetentionReport()
        await self._close_inactive(report, ctx)
        await self._shred_closed(report, ctx)
        await self._delete_consents(report, ctx)
        await self._delete_prohibitions(report, ctx)
        await self._delete_clients(report, ctx)
        now = self.clock.now()
        async with self.db.read() as conn:
            report.audit_past_period = await store.audit_records_before(
                conn, now - timedelta(days=self._days(AUDIT_LOG)))
        if (report.shredded or report.consents_deleted or report.clients_deleted) and not await self.db.checkpoint():
            log.warning("retention run: the WAL could not be truncated now; SQLite will checkpoint it later")
        log.info("retention run: closed_inactive=%d shredded=%d held=%d consents=%d prohibitions=%d clients=%d "
                 "audit_past_period=%d", len(report.closed_inactive), len(report.shredded), report.held,
                 len(report.consents_deleted), len(report.prohibitions_deleted), report.clients_deleted,
                 report.audit_past_period)
        return report

    async def _close_inactive(self, report: RetentionReport, ctx: RequestContext) -> None:
        now = self.clock.now()
        shortest = self._days(CONSULTATION_INACTIVE)
        after = 0
        while True:
            async with self.db.read() as conn:
                batch = await store.inactive(conn, now - timedelta(days=shortest), BATCH, after)
            for row in batch:
                after = row["seq"]
                days = self._days(CONSULTATION_INACTIVE, row["origin_org"], row["target_org"])
                if row["last_activity"] >= now - timedelta(days=days):
                    continue

                async def unit(conn: AsyncConnection, row: dict[str, Any] = row, days: int = days) -> bool:
                    if not await store.close_inactive(conn, row["id"], now):
                        return False
                    await record(conn, self.actor, ctx, now, [AuditRecord(
                        action="retention.close", consultation_id=row["id"], client_ref=row["client_ref"],
                        basis=_basis(CONSULTATION_INACTIVE, days))])
                    return True

                if await self.db.write(unit):
                    report.closed_inactive.append(row["id"])
            if len(batch) < BATCH:
                break

    async def _shred_closed(self, report: RetentionReport, ctx: RequestContext) -> None:
        now = self.clock.now()
        shortest = self._days(CONSULTATION_CLOSED)
        after = 0
        while True:
            async with self.db.read() as conn:
                batch = await store.due(conn, now - timedelta(days=shortest), BATCH, after)
            for row in batch:
                after = row["seq"]
                days = self._days(CONSULTATION_CLOSED, row["origin_org"], row["target_org"])
                if row["closed_at"] >= now - timedelta(days=days):
                    continue
                if await self._shred(row, days, ctx):
                    report.shredded.append(row["id"])
            if len(batch) < BATCH:
                break
        async with self.db.read() as conn:
            report.held = await store.held(conn, now - timedelta(days=shortest))

    async def _shred(self, row: dict[str, Any], days: int, ctx: RequestContext) -> bool:
        owner = consultation_owner(row["id"])
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> bool:
            if not await store.shred(conn, row["id"], owner, now):
                return False
            await record(conn, self.actor, ctx, now, [AuditRecord(
                action="retention.shred", consultation_id=row["id"], client_ref=row["client_ref"],
                basis=_basis(CONSULTATION_CLOSED, days))])
            return True

        done = await self.db.write(unit)
        self.vault.forget(owner)
        return done

    async def _delete_consents(self, report: RetentionReport, ctx: RequestContext) -> None:
        now = self.clock.now()
        async with self.db.read() as conn:
            ended = await store.ended_consents(conn, now)
        for row in ended:
            # The recording organisation and every recipient rely on it: the longest period wins.
            days = self._days(CONSENT, row["recorded_org"], *(row["recipient_orgs"] or []))
            if row["ended_at"] >= now - timedelta(days=days):
                continue

            async def unit(conn: AsyncConnection, row: dict[str, Any] = row, days: int = days) -> bool:
                if not await store.delete_consent(conn, row["id"]):
                    return False
                await record(conn, self.actor, ctx, now, [AuditRecord(
                    action="retention.delete", client_ref=row["client_ref"], consent_id=row["id"],
                    basis=_basis(CONSENT, days))])
                return True

            if await self.db.write(unit):
                report.consents_deleted.append(row["id"])

    async def _delete_prohibitions(self, report: RetentionReport, ctx: RequestContext) -> None:
        now = self.clock.now()
        async with self.db.read() as conn:
            revoked = await store.revoked_prohibitions(conn, now - timedelta(days=self._days(PROHIBITION)))
        for row in revoked:
            days = self._days(PROHIBITION, row["created_org"])
            if row["revoked_at"] >= now - timedelta(days=days):
                continue

            async def unit(conn: AsyncConnection, row: dict[str, Any] = row, days: int = days) -> bool:
                stored = await store.delete_prohibition(conn, row["id"])
                if stored is None:
                    return False
                # The record vouches for exactly the row it ends: verification accepts the absence of
                # the prohibition's own records' rows only against this digest (consult/audit/subjects.py).
                await record(conn, self.actor, ctx, now, [AuditRecord(
                    action="retention.delete", client_ref=row["client_ref"],
                    basis=f"{_basis(PROHIBITION, days)}:{row['id']}",
                    subject_digest=subjects.prohibition_deleted(stored))])
                return True

            if await self.db.write(unit):
                report.prohibitions_deleted.append(row["id"])

    async def _delete_clients(self, report: RetentionReport, ctx: RequestContext) -> None:
        now = self.clock.now()
        async with self.db.read() as conn:
            idle = await store.idle_clients(conn, now - timedelta(days=self._days(CLIENT)))
        for row in idle:
            days = self._days(CLIENT, row["created_org"])
            if row["last_record"] >= now - timedelta(days=days):
                continue

            async def unit(conn: AsyncConnection, row: dict[str, Any] = row, days: int = days) -> bool:
                if not await store.delete_client(conn, row["client_ref"]):
                    return False
                await record(conn, self.actor, ctx, now, [AuditRecord(
                    action="retention.delete", client_ref=row["client_ref"], basis=_basis(CLIENT, days))])
                return True

            if await self.db.write(unit):
                report.clients_deleted += 1

    async def legal_hold(self, who: Principal, consultation_id: str, hold: bool, ctx: RequestContext) -> dict[str, Any]:
        """Privacy officers and admins of either party organisation set or lift a legal hold."""
        if not actions.allows(who, "legal_hold.set"):
            raise Forbidden("Only privacy officers and admins set a legal hold.", code="role")
        async with self.db.read() as conn:
            row = await consultation_store.get(conn, consultation_id) if len(consultation_id) <= 36 else None
        if row is None or who.org not in (row.origin_org, row.target_org):
            raise NotFound()
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> None:
            await store.set_legal_hold(conn, consultation_id, hold)
            await record(conn, who, ctx, now, [AuditRecord(
                action="consultation.legal_hold." + ("set" if hold else "clear"),
                consultation_id=consultation_id, client_ref=row.client_ref)])

        await self.db.write(unit)
        return {"consultation_id": consultation_id, "legal_hold": hold, "shredded_at": iso(row.shredded_at)}

