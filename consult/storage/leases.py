"""SQL for job leases: one row per periodic job naming the instance that runs it, until when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import job_leases


async def claim(conn: AsyncConnection, name: str, holder: str, now: datetime, until: datetime) -> int | None:
    """Take lease ``name`` for ``holder`` until ``until`` if it is free (never taken, or expired
    at ``now``) or already ``holder``'s (then renewed); returns the term held, or None.

    One conditional statement decides: on PostgreSQL a concurrent claim waits for the row lock and
    then re-checks the condition against the committed row, so of two instances claiming an
    expired lease at once exactly one gets it."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    fresh = {"name": name, "holder": holder, "term": 1, "acquired_at": now, "expires_at": until}
    created = await conn.execute(insert(job_leases).values(**fresh).on_conflict_do_nothing(index_elements=["name"]))
    if created.rowcount == 1:
        return 1
    t = job_leases.c
    mine = t.holder == holder
    result = await conn.execute(
        update(job_leases)
        .where(t.name == name, or_(mine, t.expires_at <= now))
        .values(holder=holder, expires_at=until, term=case((mine, t.term), else_=t.term + 1),
                acquired_at=case((mine, t.acquired_at), else_=now))
        .returning(t.term))
    row = result.first()
    return None if row is None else int(row.term)


async def release(conn: AsyncConnection, name: str, holder: str, now: datetime) -> None:
    """Let lease ``name`` expire now, if ``holder`` still holds it."""
    t = job_leases.c
    await conn.execute(update(job_leases).where(t.name == name, t.holder == holder).values(expires_at=now))


async def all_leases(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [as_dict(r) for r in await conn.execute(select(job_leases).order_by(job_leases.c.name))]
