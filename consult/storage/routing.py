"""SQL for routing: pool settings, each consultation's routing state, expert load, waiting
times and the queue of open consultations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.consultations import offered_purposes
from consult.storage.prepared import Prepared
from consult.storage.rows import as_dict
from consult.storage.tables import consultation_routing, consultations, directory_users, experts, routing_pools

_URGENCY_RANK = {"immediate": 0, "today": 1, "normal": 2}


# -- pools -------------------------------------------------------------------------------------


async def upsert_pool(conn: AsyncConnection, values: dict[str, Any]) -> None:
    insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert_(routing_pools).values(**values)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["org", "name"],
        set_={k: stmt.excluded[k] for k in values if k not in ("org", "name")},
    ))


# The statements of opening and claiming a consultation are built once (their construction cost
# more than running them), and the pool's settings are a prepared read.
_POOL = Prepared(select(routing_pools).where(routing_pools.c.org == bindparam("org"),
                                             routing_pools.c.name == bindparam("name")))
_INSERT_ROUTING = insert(consultation_routing)
_OPEN_LOAD = (select(consultations.c.claimed_by, func.count())
              .where(consultations.c.status == "claimed",
                     consultations.c.claimed_by.in_(bindparam("ids", expanding=True)))
              .group_by(consultations.c.claimed_by))


async def get_pool(conn: AsyncConnection, org: str, name: str) -> dict[str, Any] | None:
    return await _POOL.first(conn, {"org": org, "name": name})


async def list_pools(conn: AsyncConnection, org: str | None = None) -> list[dict[str, Any]]:
    query = select(routing_pools).order_by(routing_pools.c.org, routing_pools.c.name)
    if org is not None:
        query = query.where(routing_pools.c.org == org)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


# -- routing state -----------------------------------------------------------------------------


async def insert_routing(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(_INSERT_ROUTING, values)


async def get_routing(conn: AsyncConnection, consultation_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(consultation_routing).where(
        consultation_routing.c.consultation_id == consultation_id))).first()
    return as_dict(row) if row else None


async def due(conn: AsyncConnection, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Routing steps that are due, with the consultation's status and routing fields."""
    r, c = consultation_routing.c, consultations.c
    query = (
        select(consultation_routing, c.status, c.target_org, c.expert_id, c.escalated_pool,
               c.created_by, c.origin_org, c.purpose)
        .join(consultations, c.id == r.consultation_id)
        .where(r.next_at.is_not(None), r.next_at <= now)
        .order_by(r.next_at)
        .limit(limit)
    )
    return [as_dict(row) for row in (await conn.execute(query)).all()]


async def advance(conn: AsyncConnection, consultation_id: str, expected_next: datetime, values: dict[str, Any]
                  ) -> bool:
    """Move a routing step on, unless another instance did it first."""
    r = consultation_routing.c
    result = await conn.execute(
        update(consultation_routing)
        .where(r.consultation_id == consultation_id, r.next_at == expected_next)
        .values(**values)
    )
    return result.rowcount == 1


async def set_escalated_pool(conn: AsyncConnection, consultation_id: str, pool: str) -> None:
    await conn.execute(update(consultations).where(consultations.c.id == consultation_id)
                       .values(escalated_pool=pool))


# -- load, waits and queue ------------------------------------------------------------------


async def open_load(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[str, int]:
    """How many claimed, not yet closed consultations each expert holds."""
    ids = list(user_ids)
    if not ids:
        return {}
    return {user: count for user, count in (await conn.execute(_OPEN_LOAD, {"ids": ids})).all()}


async def recent_claims(conn: AsyncConnection, org: str, urgency: str, since: datetime, *,
                        pool: str | None, limit: int) -> list[tuple[datetime, datetime]]:
    """(created_at, claimed_at) of the latest claimed consultations of this routing."""
    c = consultations.c
    query = (select(c.created_at, c.claimed_at)
             .where(c.target_org == org, c.urgency == urgency, c.claimed_at.is_not(None), c.created_at >= since)
             .order_by(c.claimed_at.desc()).limit(limit))
    if pool is not None:
        query = query.where(c.pool == pool)
    return [(as_dict(r)["created_at"], as_dict(r)["claimed_at"]) for r in (await conn.execute(query)).all()]


def _rank() -> Any:
    return case(_URGENCY_RANK, value=consultations.c.urgency, else_=3)


def _offered_to(org: str, user_id: str | None, pools: list[str], roles: Any = None) -> Any:
    c = consultations.c
    matches = and_(
        or_(c.expert_id.is_(None), c.expert_id == user_id) if user_id else c.expert_id.is_(None),
        or_(c.pool.is_(None), c.pool.in_(pools)) if pools else c.pool.is_(None),
    )
    if pools:
        matches = or_(matches, c.escalated_pool.in_(pools))
    return and_(c.status == "open", c.target_org == org, matches, offered_purposes(roles))


async def queue(conn: AsyncConnection, org: str, user_id: str, pools: list[str], limit: int,
                roles: Any = None) -> list[dict[str, Any]]:
    """Open consultations offered to this expert (or intake social worker, by ``roles``): most
    urgent first, then oldest first."""
    c, r = consultations.c, consultation_routing.c
    query = (
        select(c.id, c.topic, c.urgency, c.pool, c.expert_id, c.escalated_pool, c.created_at, c.origin_org,
               c.client_ref, c.purpose, r.stage, r.offers, r.next_at, r.sla_seconds)
        .select_from(consultations.outerjoin(consultation_routing, r.consultation_id == c.id))
        .where(_offered_to(org, user_id, pools, roles))
        .order_by(_rank(), c.created_at, c.seq)
        .limit(limit)
    )
    return [as_dict(row) for row in (await conn.execute(query)).all()]


async def queue_position(conn: AsyncConnection, org: str, pool: str | None, urgency: str, created_at: datetime) -> int:
    """How many open consultations of the same routing are ahead of one with this urgency and age."""
    c = consultations.c
    rank = _URGENCY_RANK.get(urgency, 3)
    ahead = or_(_rank() < rank, and_(_rank() == rank, c.created_at < created_at))
    query = select(func.count()).where(c.status == "open", c.target_org == org, ahead)
    query = query.where(c.pool == pool) if pool is not None else query
    return int((await conn.execute(query)).scalar() or 0)


async def open_counts(conn: AsyncConnection, org: str | None = None) -> dict[tuple[str, str | None], int]:
    """Open consultations per (target org, pool)."""
    c = consultations.c
    query = select(c.target_org, c.pool, func.count()).where(c.status == "open").group_by(c.target_org, c.pool)
    if org is not None:
        query = query.where(c.target_org == org)
    return {(o, p): n for o, p, n in (await conn.execute(query)).all()}


async def experts_of(conn: AsyncConnection, org: str) -> list[dict[str, Any]]:
    """The directory entries of ``org``, each with the user's ``roles`` from their last sign-in
    (None for a user named before they ever signed in)."""
    query = (select(experts, directory_users.c.roles)
             .select_from(experts.outerjoin(directory_users, directory_users.c.user_id == experts.c.user_id))
             .where(experts.c.org == org).order_by(experts.c.user_id))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def on_duty_ids(conn: AsyncConnection) -> set[str]:
    return set((await conn.execute(select(experts.c.user_id).where(experts.c.on_duty.is_(True)))).scalars())
