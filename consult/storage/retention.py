"""SQL for retention: which closed consultations are due, legal hold, and destroying data keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import consultations, data_keys


async def due(conn: AsyncConnection, closed_before: datetime, limit: int) -> list[dict[str, Any]]:
    c = consultations
    query = (
        select(c.c.id, c.c.client_ref)
        .where(c.c.status == "closed", c.c.closed_at < closed_before, c.c.legal_hold.is_(False),
               c.c.shredded_at.is_(None))
        .order_by(c.c.closed_at)
        .limit(limit)
    )
    return [as_dict(r) for r in (await conn.execute(query)).all()]


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
