"""Audit records: who did what to which consultation or client, why, and with what outcome.

A record is written in the same transaction as the act it records (the service passes the
writer connection), so there is no act without its record and no record without its act.
Records carry ids, categories and bases — never message content or an identity code.

In the PostgreSQL writer's transactions the records are appended at the transaction's end, those
of every unit of a group commit together (consult/storage/db.py `Deferred`): one reservation of
leaf indices and one insert per commit instead of per unit. A caller that needs the leaf index of
its record asks for it to be written at once (``now=True``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.entry import ENTRY_VERSION, FIELDS, encode, format_time
from consult.model import Principal
from consult.model.audit_fields import ACTOR_FIELDS
from consult.model.context import RequestContext
from consult.model.identifiers import ClientRef
from consult.storage import audit_log
from consult.storage.db import deferred


@dataclass(frozen=True, slots=True)
class AuditRecord:
    action: str
    outcome: str = "permit"
    consultation_id: str | None = None
    message_id: str | None = None
    client_ref: ClientRef | None = None
    categories: tuple[str, ...] = ()
    purpose: str | None = None
    basis: str | None = None
    rule_id: str | None = None
    policy_version: str | None = None
    subject_user: str | None = None
    consent_id: str | None = None
    consent_version: int | None = None
    flags: tuple[str, ...] = ()
    recipient_org: str | None = None
    recipient_role: str | None = None
    reason_id: str | None = None
    reason_digest: str | None = None
    subject_digest: str | None = None  # the history row this act wrote (consult/audit/subjects.py)


RECORD_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in ACTOR_FIELDS and f != "leaf_index")
"""The entry fields an `AuditRecord` carries: every field the writer does not fill itself (the
dataclass above must declare exactly these; tests/audit_log/test_audit_fields.py checks)."""


def _actor_role(actor: Principal) -> str:
    return ",".join(sorted(actor.roles)) or "-"


async def record(
    conn: AsyncConnection,
    actor: Principal,
    ctx: RequestContext,
    at: datetime,
    records: Iterable[AuditRecord],
    *,
    now: bool = False,
) -> int:
    """Append ``records`` to the log inside the caller's write transaction; with ``now``, return
    the leaf index of the first (-1 if there were none, or if they are appended at the
    transaction's end).

    Each gets the next leaf index and the RFC 9162 leaf hash of its canonical entry; the time is
    stored in UTC so the entry recomputed from the row is byte-for-byte the one hashed here.
    """
    return await record_all(conn, at, [(actor, ctx, records)], now=now)


async def record_all(
    conn: AsyncConnection,
    at: datetime,
    groups: Iterable[tuple[Principal, RequestContext, Iterable[AuditRecord]]],
    *,
    now: bool = False,
) -> int:
    """`record` for several actors at once (an act and the live deliveries it makes): one
    reservation of leaf indices and one insert for all of them, in the order given."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    rows = [row for actor, ctx, records in groups for row in _rows(actor, ctx, at, records)]
    if not rows:
        return -1
    later = None if now else deferred(conn)
    if later is not None:
        later.add("audit_events", _append, rows)
        return -1
    return await _append(conn, rows)


async def _append(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Leaf indices, leaf hashes and the insert, for ``rows`` in the order given; the first index."""
    first = await audit_log.reserve(conn, len(rows))
    sha256 = hashlib.sha256
    entry_times: dict[datetime, str] = {}
    for offset, row in enumerate(rows):
        at = row["at"]
        entry_time = entry_times.get(at)
        if entry_time is None:
            entry_time = entry_times[at] = format_time(at)
        row["leaf_index"] = first + offset
        row["leaf_hash"] = sha256(b"\x00" + encode({**row, "at": entry_time})).digest()
    await audit_log.append(conn, rows)
    return first


def _rows(actor: Principal, ctx: RequestContext, at: datetime, records: Iterable[AuditRecord]
          ) -> list[dict[str, Any]]:
    source = (ctx.source or "")[:64] or None
    actor_role = _actor_role(actor)
    return [
        {
            "id": str(uuid.uuid4()),
            "at": at,
            "actor_id": actor.user_id,
            "actor_org": actor.org,
            "actor_role": actor_role,
            "request_id": ctx.request_id[:64],
            "source": source,
            **{name: getattr(rec, name) for name in RECORD_FIELDS},
            "categories": list(rec.categories),
            "flags": list(rec.flags) or None,
            "entry_version": ENTRY_VERSION,
        }
        for rec in records
    ]
