"""SQL for the client registry: a pseudonymous ref, a keyed blind index and the sealed HETU."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.clients import ClientRecord
from consult.model.identifiers import ClientRef
from consult.storage.tables import clients


async def ref_by_index(conn: AsyncConnection, hetu_index: str) -> ClientRef | None:
    query = select(clients.c.client_ref).where(clients.c.hetu_index == hetu_index)
    return (await conn.execute(query)).scalar_one_or_none()


async def exists(conn: AsyncConnection, client_ref: ClientRef) -> bool:
    query = select(clients.c.client_ref).where(clients.c.client_ref == client_ref)
    return (await conn.execute(query)).scalar_one_or_none() is not None


async def insert_client(conn: AsyncConnection, client: ClientRecord) -> None:
    await conn.execute(insert(clients).values(**asdict(client)))


async def created(conn: AsyncConnection, client_ref: ClientRef) -> datetime | None:
    query = select(clients.c.created_at).where(clients.c.client_ref == client_ref)
    return (await conn.execute(query)).scalar_one_or_none()
