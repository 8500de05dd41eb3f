"""SQL for ended sessions: the latest moment each user's tokens stopped counting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.tables import session_ends


async def end(conn: AsyncConnection, org: str, user_id: str, at: datetime, by: str) -> None:
    """Record that ``user_id``'s sessions in ``org`` ended at ``at`` (a later end replaces an earlier)."""
    where = (session_ends.c.org == org) & (session_ends.c.user_id == user_id)
    result = await conn.execute(update(session_ends).where(where).values(ended_at=at, ended_by=by))
    if result.rowcount == 0:
        await conn.execute(insert(session_ends).values(org=org, user_id=user_id, ended_at=at, ended_by=by))


async def all_ends(conn: AsyncConnection) -> list[tuple[str, str, datetime]]:
    rows = await conn.execute(select(session_ends.c.org, session_ends.c.user_id, session_ends.c.ended_at))
    return [(r.org, r.user_id, r.ended_at) for r in rows]
