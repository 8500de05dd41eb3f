"""SQL for consents (versioned rows), their events, and disclosure prohibitions.

Consent versions and events come and go as records (consult/model/consents.py); the audit
log's subject digests read the stored rows as they are (``version``, ``event``, ``all_*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.consents import ConsentEvent, ConsentVersion
from consult.model.identifiers import ClientRef
from consult.storage.prepared import Prepared
from consult.storage.rows import as_dict, as_utc
from consult.storage.tables import consent_events, consents, prohibitions

_JSON_LISTS = ("categories", "recipient_orgs", "recipient_roles", "recipient_users", "purposes")


async def insert_version(conn: AsyncConnection, version: ConsentVersion) -> None:
    values = {f: getattr(version, f) for f in ConsentVersion.__dataclass_fields__}
    values.update({f: list(values[f]) for f in _JSON_LISTS})
    await conn.execute(insert(consents).values(**values))


def _version(row: Row[Any]) -> ConsentVersion:
    data = as_dict(row)
    data.update({f: tuple(data[f]) for f in _JSON_LISTS})
    return ConsentVersion(**data)


def _event(row: Row[Any]) -> ConsentEvent:
    at = as_utc(row.at)
    assert at is not None
    return ConsentEvent(event=row.event, version=row.version, at=at, actor_id=row.actor_id, actor_org=row.actor_org)


async def add_event(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert one event; its ``seq``."""
    result = await conn.execute(insert(consent_events).values(**values).returning(consent_events.c.seq))
    return int(result.scalar_one())


async def event(conn: AsyncConnection, seq: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(consent_events).where(consent_events.c.seq == seq))).first()
    return as_dict(row) if row else None


async def version(conn: AsyncConnection, consent_id: str, number: int) -> dict[str, Any] | None:
    query = select(consents).where(consents.c.id == consent_id, consents.c.version == number)
    row = (await conn.execute(query)).first()
    return as_dict(row) if row else None


async def all_versions(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every version of every consent (for verifying the log's history rows)."""
    return [as_dict(r) for r in (await conn.execute(select(consents))).all()]


async def all_events(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [as_dict(r) for r in (await conn.execute(select(consent_events).order_by(consent_events.c.seq))).all()]


async def all_prohibitions(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [as_dict(r) for r in (await conn.execute(select(prohibitions))).all()]


async def latest(conn: AsyncConnection, consent_id: str) -> ConsentVersion | None:
    query = (
        select(consents)
        .where(consents.c.id == consent_id)
        .order_by(consents.c.version.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return _version(row) if row else None


_NEWEST = (
    select(consents.c.id, func.max(consents.c.version).label("v"))
    .where(consents.c.id.in_(bindparam("ids", expanding=True)))
    .group_by(consents.c.id)
    .subquery()
)
# Built once: the message path reads the consents its items name with every message.
_LATEST_MANY = select(consents).join(_NEWEST, (consents.c.id == _NEWEST.c.id) & (consents.c.version == _NEWEST.c.v))


async def latest_many(conn: AsyncConnection, consent_ids: list[str]) -> dict[str, ConsentVersion]:
    if not consent_ids:
        return {}
    return {row.id: _version(row) for row in (await conn.execute(_LATEST_MANY, {"ids": consent_ids})).all()}


async def for_client(conn: AsyncConnection, client_ref: ClientRef) -> list[ConsentVersion]:
    query = select(consents).where(consents.c.client_ref == client_ref).order_by(
        consents.c.created_at, consents.c.id, consents.c.version
    )
    return [_version(r) for r in (await conn.execute(query)).all()]


async def set_status(
    conn: AsyncConnection, consent_id: str, version: int, status: str, at: datetime, *, expect: tuple[str, ...]
) -> bool:
    result = await conn.execute(
        update(consents)
        .where(consents.c.id == consent_id, consents.c.version == version, consents.c.status.in_(expect))
        .values(status=status, status_changed_at=at)
    )
    return result.rowcount == 1


_EVENTS = select(consent_events).where(consent_events.c.consent_id == bindparam("id")).order_by(consent_events.c.seq)


async def events(conn: AsyncConnection, consent_id: str) -> list[ConsentEvent]:
    return [_event(r) for r in (await conn.execute(_EVENTS, {"id": consent_id})).all()]


async def insert_prohibition(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(prohibitions).values(**values))


_PROHIBITIONS = select(prohibitions).where(prohibitions.c.client_ref == bindparam("ref")).order_by(
    prohibitions.c.created_at)
_ACTIVE_PROHIBITIONS = (
    select(prohibitions)
    .where(prohibitions.c.client_ref == bindparam("ref"), prohibitions.c.revoked_at.is_(None))
    .order_by(prohibitions.c.created_at)
)


async def prohibitions_for(conn: AsyncConnection, client_ref: ClientRef, *, active_only: bool) -> list[dict[str, Any]]:
    query = _ACTIVE_PROHIBITIONS_PREPARED if active_only else _PROHIBITIONS_PREPARED
    return await query.all(conn, {"ref": client_ref})


_ACTIVE_PROHIBITIONS_PREPARED = Prepared(_ACTIVE_PROHIBITIONS)
_PROHIBITIONS_PREPARED = Prepared(_PROHIBITIONS)


async def get_prohibition(conn: AsyncConnection, prohibition_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(prohibitions).where(prohibitions.c.id == prohibition_id))).first()
    return as_dict(row) if row else None


async def revoke_prohibition(conn: AsyncConnection, prohibition_id: str, by: str, at: datetime) -> bool:
    result = await conn.execute(
        update(prohibitions)
        .where(prohibitions.c.id == prohibition_id, prohibitions.c.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )
    return result.rowcount == 1
