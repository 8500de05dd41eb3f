"""SQL for agreements between organisations (docs/capabilities.md C6a) and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import agreement_versions, agreements


def _pair(org1: str, org2: str) -> tuple[str, str]:
    a, b = sorted((org1, org2))
    return a, b


async def insert_agreement(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(agreements).values(**values))


async def update_agreement(conn: AsyncConnection, agreement_id: str, expected_version: int,
                           values: dict[str, Any]) -> bool:
    """Update if still at ``expected_version`` (concurrent edits do not overwrite each other)."""
    result = await conn.execute(
        update(agreements)
        .where(agreements.c.id == agreement_id, agreements.c.version == expected_version)
        .values(**values)
    )
    return result.rowcount == 1


async def insert_version(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(agreement_versions).values(**values))


async def get(conn: AsyncConnection, agreement_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(agreements).where(agreements.c.id == agreement_id))).first()
    return as_dict(row) if row else None


async def versions(conn: AsyncConnection, agreement_id: str) -> list[dict[str, Any]]:
    query = (select(agreement_versions).where(agreement_versions.c.agreement_id == agreement_id)
             .order_by(agreement_versions.c.version))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def version(conn: AsyncConnection, agreement_id: str, number: int) -> dict[str, Any] | None:
    query = select(agreement_versions).where(agreement_versions.c.agreement_id == agreement_id,
                                             agreement_versions.c.version == number)
    row = (await conn.execute(query)).first()
    return as_dict(row) if row else None


async def all_versions(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every version of every agreement (for verifying the log's history rows)."""
    return [as_dict(r) for r in (await conn.execute(select(agreement_versions))).all()]


async def all_agreements(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [as_dict(r) for r in (await conn.execute(select(agreements))).all()]


async def list_for_org(conn: AsyncConnection, org: str | None) -> list[dict[str, Any]]:
    query = select(agreements).order_by(agreements.c.org_a, agreements.c.org_b, agreements.c.valid_from)
    if org is not None:
        query = query.where(or_(agreements.c.org_a == org, agreements.c.org_b == org))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def between(conn: AsyncConnection, org1: str, org2: str) -> list[dict[str, Any]]:
    a, b = _pair(org1, org2)
    query = select(agreements).where(agreements.c.org_a == a, agreements.c.org_b == b)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def in_force(conn: AsyncConnection, org1: str, org2: str, at: datetime) -> list[dict[str, Any]]:
    a, b = _pair(org1, org2)
    query = select(agreements).where(
        agreements.c.org_a == a, agreements.c.org_b == b, agreements.c.valid_from <= at,
        or_(agreements.c.valid_until.is_(None), agreements.c.valid_until > at),
    )
    return [as_dict(r) for r in (await conn.execute(query)).all()]
