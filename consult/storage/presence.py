"""SQL for presence: which instance holds a live connection of which user, until when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.tables import presence


async def mark(conn: AsyncConnection, instance_id: str, user_ids: Iterable[str], now: datetime,
               until: datetime) -> None:
    """``user_ids`` are connected to ``instance_id`` (kept since their first row), until ``until``."""
    rows = [{"instance_id": instance_id, "user_id": u, "since": now, "expires_at": until} for u in user_ids]
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(presence)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["instance_id", "user_id"],
                                                  set_={"expires_at": stmt.excluded.expires_at}), rows)


async def unmark(conn: AsyncConnection, instance_id: str, user_ids: Iterable[str]) -> None:
    ids = list(user_ids)
    if ids:
        await conn.execute(delete(presence).where(presence.c.instance_id == instance_id,
                                                  presence.c.user_id.in_(ids)))


async def extend(conn: AsyncConnection, instance_id: str, until: datetime) -> int:
    """Renew every row of ``instance_id``; returns how many there are."""
    result = await conn.execute(update(presence).where(presence.c.instance_id == instance_id)
                                .values(expires_at=until))
    return int(result.rowcount)


async def forget_instance(conn: AsyncConnection, instance_id: str, keep: Iterable[str] = ()) -> None:
    """Drop the rows of ``instance_id`` except those of ``keep``."""
    query = delete(presence).where(presence.c.instance_id == instance_id)
    kept = list(keep)
    if kept:
        query = query.where(presence.c.user_id.not_in(kept))
    await conn.execute(query)


async def sweep(conn: AsyncConnection, before: datetime) -> None:
    """Drop rows that expired before ``before`` (of instances that stopped without saying so)."""
    await conn.execute(delete(presence).where(presence.c.expires_at < before))


async def online_elsewhere(conn: AsyncConnection, instance_id: str, now: datetime) -> set[str]:
    """Users with an unexpired row of another instance than ``instance_id``."""
    query = (select(presence.c.user_id).distinct()
             .where(presence.c.instance_id != instance_id, presence.c.expires_at > now))
    return {row.user_id for row in await conn.execute(query)}
