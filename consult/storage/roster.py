"""SQL for the on-duty roster: periods, weekly rules, the sync watermark, and the experts'
materialised ``on_duty`` (what the roster or the expert's own toggle last set)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict, as_utc
from consult.storage.tables import experts, roster_periods, roster_rules, roster_sync


async def insert_period(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(roster_periods).values(**values))


async def insert_rule(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(roster_rules).values(**values))


async def get_period(conn: AsyncConnection, period_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(roster_periods).where(roster_periods.c.id == period_id))).first()
    return as_dict(row) if row else None


async def get_rule(conn: AsyncConnection, rule_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(roster_rules).where(roster_rules.c.id == rule_id))).first()
    return as_dict(row) if row else None


async def delete_period(conn: AsyncConnection, period_id: str) -> None:
    await conn.execute(delete(roster_periods).where(roster_periods.c.id == period_id))


async def delete_rule(conn: AsyncConnection, rule_id: str) -> None:
    await conn.execute(delete(roster_rules).where(roster_rules.c.id == rule_id))


async def periods_between(conn: AsyncConnection, start: datetime, end: datetime, *, org: str | None = None,
                          user_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    p = roster_periods.c
    query = select(roster_periods).where(p.starts_at < end, p.ends_at > start).order_by(p.starts_at)
    if org is not None:
        query = query.where(p.org == org)
    if user_ids is not None:
        query = query.where(p.user_id.in_(list(user_ids)))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def rules(conn: AsyncConnection, *, org: str | None = None, user_ids: Iterable[str] | None = None
                ) -> list[dict[str, Any]]:
    r = roster_rules.c
    query = select(roster_rules).order_by(r.user_id, r.weekday, r.start_time)
    if org is not None:
        query = query.where(r.org == org)
    if user_ids is not None:
        query = query.where(r.user_id.in_(list(user_ids)))
    return [as_dict(row) for row in (await conn.execute(query)).all()]


async def watermark(conn: AsyncConnection) -> datetime | None:
    value = (await conn.execute(select(roster_sync.c.synced_at).where(roster_sync.c.id == 1))).scalar()
    return as_utc(value)


async def set_watermark(conn: AsyncConnection, at: datetime) -> None:
    result = await conn.execute(update(roster_sync).where(roster_sync.c.id == 1).values(synced_at=at))
    if result.rowcount == 0:
        await conn.execute(insert(roster_sync).values(id=1, synced_at=at))


async def set_on_duty(conn: AsyncConnection, user_id: str, on_duty: bool, at: datetime, by: str) -> bool:
    """Set an expert's on-duty state; False if it already was that."""
    result = await conn.execute(
        update(experts).where(experts.c.user_id == user_id, experts.c.on_duty.is_(not on_duty))
        .values(on_duty=on_duty, updated_at=at, updated_by=by)
    )
    return result.rowcount == 1
