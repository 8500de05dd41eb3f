"""SQL for retention: which records are due (consultations closed or inactive, ended consents,
revoked prohibitions, clients with nothing left), legal hold, destroying data keys, and deleting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import (
    audit_events,
    client_merges,
    clients,
    consent_events,
    consents,
    consultations,
    data_keys,
    message_items,
    messages,
    prohibitions,
)


async def due(conn: AsyncConnection, closed_before: datetime, limit: int, after_seq: int = 0
              ) -> list[dict[str, Any]]:
    """Closed, unheld, unshredded consultations closed before ``closed_before``, by ``seq``."""
    c = consultations
    query = (
        select(c.c.seq, c.c.id, c.c.client_ref, c.c.closed_at, c.c.origin_org, c.c.target_org)
        .where(c.c.status == "closed", c.c.closed_at < closed_before, c.c.legal_hold.is_(False),
               c.c.shredded_at.is_(None), c.c.seq > after_seq)
        .order_by(c.c.seq)
        .limit(limit)
    )
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def inactive(conn: AsyncConnection, before: datetime, limit: int, after_seq: int = 0
                   ) -> list[dict[str, Any]]:
    """Unclosed, unheld consultations whose last activity (opened, claimed, last message) is
    before ``before``, with that time as ``last_activity``."""
    c = consultations
    last_message = (select(func.max(messages.c.created_at)).where(messages.c.consultation_id == c.c.id)
                    .scalar_subquery())
    query = (
        select(c.c.seq, c.c.id, c.c.client_ref, c.c.origin_org, c.c.target_org, c.c.created_at,
               c.c.claimed_at, last_message.label("last_message_at"))
        .where(c.c.status != "closed", c.c.legal_hold.is_(False), c.c.shredded_at.is_(None),
               c.c.created_at < before, or_(c.c.claimed_at.is_(None), c.c.claimed_at < before),
               c.c.seq > after_seq,
               ~exists().where(messages.c.consultation_id == c.c.id, messages.c.created_at >= before))
        .order_by(c.c.seq)
        .limit(limit)
    )
    rows = []
    for r in (await conn.execute(query)).all():
        row = as_dict(r)
        row["last_activity"] = max(t for t in (row["created_at"], row["claimed_at"], row["last_message_at"]) if t)
        rows.append(row)
    return rows


async def close_inactive(conn: AsyncConnection, consultation_id: str, at: datetime) -> bool:
    """Close an unclosed consultation as the system: no outcome, closed by ``system:retention``."""
    result = await conn.execute(
        update(consultations)
        .where(consultations.c.id == consultation_id, consultations.c.status != "closed",
               consultations.c.legal_hold.is_(False))
        .values(status="closed", outcome=None, closed_at=at, closed_by="system:retention", closed_org="system",
                closed_role=None)
    )
    return result.rowcount == 1


def _relied_on(consent_id: Any) -> Any:
    """Some consultation whose content is still readable carries an item disclosed on the consent."""
    return exists().where(
        message_items.c.consent_id == consent_id,
        messages.c.id == message_items.c.message_id,
        consultations.c.id == messages.c.consultation_id,
        consultations.c.shredded_at.is_(None),
    )


async def ended_consents(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Consents whose latest version has ended (withdrawn, or expired by ``valid_until``), with
    ``ended_at`` and the recording organisation; those still relied on are left out."""
    latest = (select(consents.c.id, func.max(consents.c.version).label("version"))
              .group_by(consents.c.id).subquery())
    k = consents
    query = (
        select(k.c.id, k.c.client_ref, k.c.recorded_org, k.c.recipient_orgs, k.c.status, k.c.status_changed_at,
               k.c.valid_until)
        .join(latest, and_(latest.c.id == k.c.id, latest.c.version == k.c.version))
        .where(or_(k.c.status == "withdrawn", and_(k.c.valid_until.is_not(None), k.c.valid_until <= now)),
               ~_relied_on(k.c.id))
        .order_by(k.c.id)
    )
    rows = []
    for r in (await conn.execute(query)).all():
        row = as_dict(r)
        row["ended_at"] = row["status_changed_at"] if row["status"] == "withdrawn" else row["valid_until"]
        rows.append(row)
    return rows


async def delete_consent(conn: AsyncConnection, consent_id: str) -> bool:
    """Delete every version of a consent and its events, unless something came to rely on it."""
    if (await conn.execute(select(_relied_on(consent_id)))).scalar():
        return False
    await conn.execute(delete(consent_events).where(consent_events.c.consent_id == consent_id))
    return (await conn.execute(delete(consents).where(consents.c.id == consent_id))).rowcount > 0


async def revoked_prohibitions(conn: AsyncConnection, revoked_before: datetime) -> list[dict[str, Any]]:
    p = prohibitions
    query = (select(p.c.id, p.c.client_ref, p.c.created_org, p.c.revoked_at)
             .where(p.c.revoked_at.is_not(None), p.c.revoked_at < revoked_before).order_by(p.c.revoked_at))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def delete_prohibition(conn: AsyncConnection, prohibition_id: str) -> dict[str, Any] | None:
    """Delete a lifted prohibition; the row as it was stored, or None when there was none to delete."""
    row = (await conn.execute(select(prohibitions).where(prohibitions.c.id == prohibition_id,
                                                         prohibitions.c.revoked_at.is_not(None)))).first()
    if row is None:
        return None
    await conn.execute(delete(prohibitions).where(prohibitions.c.id == prohibition_id))
    return as_dict(row)


def _client_has_records(client_ref: Any) -> Any:
    return or_(
        exists().where(consultations.c.client_ref == client_ref, consultations.c.shredded_at.is_(None)),
        exists().where(consents.c.client_ref == client_ref),
        exists().where(prohibitions.c.client_ref == client_ref),
        exists().where(client_merges.c.into_ref == client_ref),
        exists().where(client_merges.c.merged_ref == client_ref),
    )


async def idle_clients(conn: AsyncConnection, before: datetime) -> list[dict[str, Any]]:
    """Clients with no readable consultation, no consent and no prohibition, registered and last
    named in the audit log before ``before``; ``last_record`` is the later of the two."""
    last = (select(func.max(audit_events.c.at)).where(audit_events.c.client_ref == clients.c.client_ref)
            .scalar_subquery())
    query = (select(clients.c.client_ref, clients.c.created_org, clients.c.created_at, last.label("last_audit"))
             .where(clients.c.created_at < before, ~_client_has_records(clients.c.client_ref),
                    or_(last.is_(None), last < before))
             .order_by(clients.c.client_ref))
    rows = []
    for r in (await conn.execute(query)).all():
        row = as_dict(r)
        row["last_record"] = max(t for t in (row["created_at"], row["last_audit"]) if t)
        rows.append(row)
    return rows


async def delete_client(conn: AsyncConnection, client_ref: str) -> bool:
    if (await conn.execute(select(_client_has_records(client_ref)))).scalar():
        return False
    return (await conn.execute(delete(clients).where(clients.c.client_ref == client_ref))).rowcount == 1


async def audit_records_before(conn: AsyncConnection, before: datetime) -> int:
    query = select(func.count()).select_from(audit_events).where(audit_events.c.at < before)
    return int((await conn.execute(query)).scalar_one())


async def held(conn: AsyncConnection, closed_before: datetime) -> int:
    c = consultations
    query = select(func.count()).select_from(c).where(
        c.c.status == "closed", c.c.closed_at < closed_before, c.c.legal_hold.is_(True), c.c.shredded_at.is_(None))
    return int((await conn.execute(query)).scalar_one())


async def shred(conn: AsyncConnection, consultation_id: str, owner: str, at: datetime) -> bool:
    """Destroy the data key (the wrapped bytes are overwritten) and mark the consultation."""
    marked = await conn.execute(
        update(consultations)
        .where(consultations.c.id == consultation_id, consultations.c.shredded_at.is_(None),
               consultations.c.legal_hold.is_(False))
        .values(shredded_at=at)
    )
    if marked.rowcount != 1:
        return False
    await conn.execute(
        update(data_keys).where(data_keys.c.owner == owner).values(wrapped=None, kek_version=None, destroyed_at=at)
    )
    return True


async def set_legal_hold(conn: AsyncConnection, consultation_id: str, hold: bool) -> bool:
    result = await conn.execute(
        update(consultations).where(consultations.c.id == consultation_id).values(legal_hold=hold)
    )
    return result.rowcount == 1


async def key_versions(conn: AsyncConnection) -> dict[int | None, int]:
    query = select(data_keys.c.kek_version, func.count()).group_by(data_keys.c.kek_version)
    return {v: int(n) for v, n in (await conn.execute(query)).all()}


async def keys_not_at(conn: AsyncConnection, version: int, limit: int) -> list[dict[str, Any]]:
    query = (
        select(data_keys.c.owner, data_keys.c.kek_version, data_keys.c.wrapped)
        .where(data_keys.c.kek_version.is_not(None), data_keys.c.kek_version != version,
               data_keys.c.destroyed_at.is_(None))
        .limit(limit)
    )
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def client_record_candidates(conn: AsyncConnection, org: str, *, since: datetime | None,
                                   until: datetime | None, client_refs: tuple[str, ...], outcomes: tuple[str, ...]
                                   ) -> list[dict[str, Any]]:
    """Closed, readable consultations ``org`` is a party to that carry a § 35 referral item or
    ended with one of ``outcomes``; ``referrals`` says whether they carry a referral item."""
    c = consultations
    referral = exists().where(message_items.c.referral_condition.is_not(None),
                              messages.c.id == message_items.c.message_id, messages.c.consultation_id == c.c.id)
    query = (
        select(c.c.id, c.c.client_ref, c.c.outcome, referral.label("referrals"))
        .where(or_(c.c.origin_org == org, c.c.target_org == org), c.c.status == "closed",
               c.c.shredded_at.is_(None), c.c.client_ref.is_not(None), or_(referral, c.c.outcome.in_(outcomes)))
        .order_by(c.c.closed_at, c.c.seq)
    )
    if since is not None:
        query = query.where(c.c.closed_at >= since)
    if until is not None:
        query = query.where(c.c.closed_at < until)
    if client_refs:
        query = query.where(c.c.client_ref.in_(client_refs))
    return [as_dict(r) for r in (await conn.execute(query)).all()]
