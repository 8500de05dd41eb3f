"""SQL for the audit log: append-only; nothing here updates or deletes a record.

Leaf indices come from the one-row ``audit_head``: `reserve` advances it inside the caller's
write transaction, so a unit that is rolled back (alone, or as a savepoint in a batch) gives its
indices back with everything else it wrote, and the log stays contiguous from 0.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import audit_events, audit_head

HEAD_ID = 1


async def reserve(conn: AsyncConnection, n: int) -> int:
    """Reserve ``n`` leaf indices in the current transaction; the first one is returned."""
    result = await conn.execute(
        update(audit_head)
        .where(audit_head.c.id == HEAD_ID)
        .values(size=audit_head.c.size + n)
        .returning(audit_head.c.size)
    )
    size = result.scalar_one_or_none()
    if size is None:  # a database created without the migration's head row
        first = int((await conn.execute(select(func.count()).select_from(audit_events))).scalar_one())
        await conn.execute(insert(audit_head).values(id=HEAD_ID, size=first + n))
        return first
    return int(size) - n


async def append(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(audit_events), rows)


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(audit_events))).scalar_one())


async def for_consultation(conn: AsyncConnection, consultation_id: str) -> list[dict[str, Any]]:
    query = select(audit_events).where(audit_events.c.consultation_id == consultation_id).order_by(audit_events.c.seq)
    return [as_dict(r) for r in (await conn.execute(query)).all()]
