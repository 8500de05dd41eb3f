"""SQL for the audit log: append-only; nothing here updates or deletes a record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import audit_events


async def append(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(audit_events), rows)


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(audit_events))).scalar_one())


async def for_consultation(conn: AsyncConnection, consultation_id: str) -> list[dict[str, Any]]:
    query = select(audit_events).where(audit_events.c.consultation_id == consultation_id).order_by(audit_events.c.seq)
    return [as_dict(r) for r in (await conn.execute(query)).all()]
