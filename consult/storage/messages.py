"""SQL for messages, their structured data items and read markers."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import message_items, messages, read_markers

_INSERT = insert(messages).returning(messages.c.seq)
_INSERT_ITEMS = insert(message_items)
_GET = select(messages).where(messages.c.id == bindparam("id"))
_MARKERS = select(read_markers).where(read_markers.c.consultation_id == bindparam("id"))


async def insert_message(conn: AsyncConnection, values: dict[str, Any], items: list[dict[str, Any]]) -> int:
    result = await conn.execute(_INSERT, values)
    seq = int(result.scalar_one())
    if items:
        await conn.execute(_INSERT_ITEMS, [{"message_id": values["id"], **item} for item in items])
    return seq


async def get_message(conn: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(_GET, {"id": message_id})).first()
    return as_dict(row) if row else None


async def list_messages(
    conn: AsyncConnection, consultation_id: str, *, after_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(messages).where(messages.c.consultation_id == consultation_id)
    if after_seq is not None:
        query = query.where(messages.c.seq > after_seq)
    rows = [as_dict(r) for r in (await conn.execute(query.order_by(messages.c.seq).limit(limit))).all()]
    if not rows:
        return rows
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    item_rows = await conn.execute(
        select(message_items)
        .where(message_items.c.message_id.in_([r["id"] for r in rows]))
        .order_by(message_items.c.message_id, message_items.c.idx)
    )
    for item in item_rows.all():
        items[item.message_id].append(as_dict(item))
    for row in rows:
        row["items"] = items.get(row["id"], [])
    return rows


async def read_markers_for(conn: AsyncConnection, consultation_id: str) -> list[dict[str, Any]]:
    return [as_dict(r) for r in (await conn.execute(_MARKERS, {"id": consultation_id})).all()]


async def advance_read_marker(
    conn: AsyncConnection, consultation_id: str, user_id: str, message_seq: int, at: datetime
) -> bool:
    """Move the user's read marker forward (never back); True if it moved."""
    current = (
        await conn.execute(
            select(read_markers.c.message_seq).where(
                read_markers.c.consultation_id == consultation_id, read_markers.c.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if current is None:
        await conn.execute(
            insert(read_markers).values(
                consultation_id=consultation_id, user_id=user_id, message_seq=message_seq, read_at=at
            )
        )
        return True
    if current >= message_seq:
        return False
    await conn.execute(
        update(read_markers)
        .where(read_markers.c.consultation_id == consultation_id, read_markers.c.user_id == user_id)
        .values(message_seq=message_seq, read_at=at)
    )
    return True
