"""SQL for the directory: users seen by the service and named experts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import directory_users, experts


def _upsert(conn: AsyncConnection, table: Any, values: dict[str, Any], key: str) -> Any:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[key], set_={k: stmt.excluded[k] for k in values if k != key}
    )


async def upsert_user(
    conn: AsyncConnection, *, user_id: str, org: str, roles: list[str], name: str, at: datetime
) -> None:
    values = {"user_id": user_id, "org": org, "roles": roles, "name": name, "last_seen": at}
    await conn.execute(_upsert(conn, directory_users, values, "user_id"))


async def get_user(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(directory_users).where(directory_users.c.user_id == user_id))).first()
    return as_dict(row) if row else None


async def upsert_expert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(_upsert(conn, experts, values, "user_id"))


_EXPERT = select(experts).where(experts.c.user_id == bindparam("id"))


async def get_expert(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(_EXPERT, {"id": user_id})).first()
    return as_dict(row) if row else None


async def list_experts(conn: AsyncConnection, org: str | None = None) -> list[dict[str, Any]]:
    query = select(experts).order_by(experts.c.org, experts.c.name)
    if org is not None:
        query = query.where(experts.c.org == org)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def on_duty_experts(conn: AsyncConnection, org: str) -> list[dict[str, Any]]:
    query = select(experts).where(experts.c.org == org, experts.c.on_duty.is_(True))
    return [as_dict(r) for r in (await conn.execute(query)).all()]
