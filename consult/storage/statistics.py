"""SQL for the steering-meeting statistics (docs/capabilities.md C8): consultation timings and the permitted
disclosures of a period. Only codes, times and categories are read, never content or clients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import audit_events, consultation_routing, consultations

c, r, a = consultations.c, consultation_routing.c, audit_events.c


async def consultation_rows(conn: AsyncConnection, start: datetime, end: datetime, org: str
                            ) -> list[dict[str, Any]]:
    query = (
        select(c.created_at, c.topic, c.urgency, c.origin_org, c.target_org, c.claimed_at, c.first_response_at,
               c.closed_at, c.outcome, r.sla_seconds, r.escalations, r.offers)
        .select_from(consultations.outerjoin(consultation_routing, r.consultation_id == c.id))
        .where(c.created_at >= start, c.created_at < end, or_(c.origin_org == org, c.target_org == org))
    )
    return [as_dict(row) for row in (await conn.execute(query)).all()]


async def disclosure_rows(conn: AsyncConnection, start: datetime, end: datetime, org: str
                          ) -> list[dict[str, Any]]:
    query = (
        select(a.at, a.categories, a.basis, a.flags, c.origin_org, c.target_org)
        .join(consultations, c.id == a.consultation_id)
        .where(a.action == "disclose", a.outcome == "permit", a.at >= start, a.at < end,
               or_(c.origin_org == org, c.target_org == org))
    )
    return [as_dict(row) for row in (await conn.execute(query)).all()]
