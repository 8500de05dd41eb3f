"""SQL for wrapped data keys: one row per owner (a consultation, the client registry)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import data_keys

_GET = select(data_keys).where(data_keys.c.owner == bindparam("owner"))


async def get(conn: AsyncConnection, owner: str) -> dict[str, Any] | None:
    row = (await conn.execute(_GET, {"owner": owner})).first()
    return as_dict(row) if row else None


async def insert_key_if_absent(conn: AsyncConnection, owner: str, version: int, wrapped: bytes,
                               at: datetime) -> bool:
    """Store ``owner``'s data key unless it has one; False when another transaction stored one
    first. On PostgreSQL a concurrent insert of the same owner waits for that transaction: if it
    commits this does nothing (and the caller reads the row it committed), if it rolls back this
    inserts."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = await conn.execute(
        dialect_insert(data_keys).values(owner=owner, kek_version=version, wrapped=wrapped, created_at=at)
        .on_conflict_do_nothing(index_elements=["owner"]))
    return bool(result.rowcount == 1)


async def rewrap(conn: AsyncConnection, owner: str, version: int, wrapped: bytes) -> None:
    await conn.execute(
        update(data_keys).where(data_keys.c.owner == owner).values(kek_version=version, wrapped=wrapped)
    )


async def compare_and_rewrap(
    conn: AsyncConnection, owner: str, old_version: int, new_version: int, wrapped: bytes
) -> bool:
    """Rewrap only if the row is still under ``old_version`` (a concurrent writer may have moved it)."""
    result = await conn.execute(
        update(data_keys)
        .where(data_keys.c.owner == owner, data_keys.c.kek_version == old_version, data_keys.c.destroyed_at.is_(None))
        .values(kek_version=new_version, wrapped=wrapped)
    )
    return result.rowcount == 1
