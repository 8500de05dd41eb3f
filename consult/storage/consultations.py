"""SQL for consultations and their participants."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.consultations import Consultation, Notification, Participant
from consult.model.vocabulary import INTAKE_PURPOSES, INTAKE_ROLE
from consult.storage.prepared import Prepared
from consult.storage.rows import as_dict
from consult.storage.tables import child_welfare_notifications, consultations, participants


def offered_purposes(roles: frozenset[str] | set[str] | list[str] | None) -> Any:
    """Which consultations may be offered to a user with ``roles``: statutory contacts
    (``INTAKE_PURPOSES``) only to a social worker, the others only to an expert. ``None`` (the
    user's roles are not known yet) is treated as an expert's, as the directory was before."""
    c = consultations.c
    if roles is None:
        return c.purpose.not_in(INTAKE_PURPOSES)
    clauses = []
    if INTAKE_ROLE in roles:
        clauses.append(c.purpose.in_(INTAKE_PURPOSES))
    if "expert" in roles:
        clauses.append(c.purpose.not_in(INTAKE_PURPOSES))
    return or_(*clauses) if clauses else false()


# Written when a consultation is opened; the rest stay NULL until it is escalated or closed.
_OPENED = ("id", "topic", "urgency", "question_sealed", "question_spans", "outcome_note_spans", "closed_by",
           "closed_org", "closed_role", "legal_hold", "shredded_at", "purpose", "origin_org", "created_by",
           "created_role", "target_org", "pool", "expert_id", "client_ref", "case_ref", "status", "claimed_by",
           "claimed_at", "first_response_at", "closed_at", "outcome", "created_at")


_INSERT = insert(consultations)
_INSERT_PARTICIPANT = insert(participants)
_CLAIM = (update(consultations)
          .where(consultations.c.id == bindparam("cid"), consultations.c.status == "open")
          .values(status="claimed", claimed_by=bindparam("by"), claimed_at=bindparam("at")))


async def insert_consultation(conn: AsyncConnection, c: Consultation) -> None:
    values = {k: getattr(c, k) for k in _OPENED}
    values["question_flagged"] = list(c.question_flagged) or None
    await conn.execute(_INSERT, values)


def _consultation(row: Any) -> Consultation:
    return _consultation_of(as_dict(row))


def _consultation_of(values: dict[str, Any]) -> Consultation:
    values = dict(values)
    values["legal_hold"] = bool(values["legal_hold"])
    values["question_flagged"] = tuple(values["question_flagged"] or ())
    values["outcome_flagged"] = tuple(values["outcome_flagged"] or ())
    return Consultation(**values)


# The statements on the message path are built once: SQLAlchemy then reuses their compiled form.
_GET = select(consultations).where(consultations.c.id == bindparam("id"))
_PARTICIPANTS = (
    select(participants)
    .where(participants.c.consultation_id == bindparam("id"))
    .order_by(participants.c.added_at, participants.c.user_id)
)
_PARTICIPANT = select(participants).where(
    participants.c.consultation_id == bindparam("id"), participants.c.user_id == bindparam("user")
)


_GET_PREPARED = Prepared(_GET)
_PARTICIPANTS_PREPARED = Prepared(_PARTICIPANTS)
_PARTICIPANT_PREPARED = Prepared(_PARTICIPANT)


async def get(conn: AsyncConnection, consultation_id: str) -> Consultation | None:
    values = await _GET_PREPARED.first(conn, {"id": consultation_id})
    return _consultation_of(values) if values else None


async def add_participant(conn: AsyncConnection, p: Participant) -> bool:
    """Insert a participant; False if they already were one."""
    present = await get_participant(conn, p.consultation_id, p.user_id)
    if present:
        return False
    await conn.execute(_INSERT_PARTICIPANT, asdict(p))
    return True


async def get_participant(conn: AsyncConnection, consultation_id: str, user_id: str) -> Participant | None:
    values = await _PARTICIPANT_PREPARED.first(conn, {"id": consultation_id, "user": user_id})
    return Participant(**values) if values else None


async def list_participants(conn: AsyncConnection, consultation_id: str) -> list[Participant]:
    return [Participant(**values) for values in await _PARTICIPANTS_PREPARED.all(conn, {"id": consultation_id})]


async def claim(conn: AsyncConnection, consultation_id: str, user_id: str, at: datetime) -> bool:
    """Claim an open consultation; False if someone else was first (the row is no longer open)."""
    result = await conn.execute(_CLAIM, {"cid": consultation_id, "by": user_id, "at": at})
    return result.rowcount == 1


async def close(
    conn: AsyncConnection, consultation_id: str, outcome: str, note_sealed: bytes | None, at: datetime,
    closing: dict[str, Any] | None = None,
) -> bool:
    """Close unless already closed; ``closing`` adds who closed it and the note's identifier spans."""
    result = await conn.execute(
        update(consultations)
        .where(consultations.c.id == consultation_id, consultations.c.status != "closed")
        .values(status="closed", outcome=outcome, outcome_note_sealed=note_sealed, closed_at=at, **(closing or {}))
    )
    return result.rowcount == 1


async def mark_first_response(conn: AsyncConnection, consultation_id: str, at: datetime) -> None:
    await conn.execute(
        update(consultations)
        .where(consultations.c.id == consultation_id, consultations.c.first_response_at.is_(None))
        .values(first_response_at=at)
    )


async def list_visible(
    conn: AsyncConnection,
    *,
    user_id: str,
    offer_org: str | None,
    offer_pools: list[str],
    status: str | None,
    offer_roles: frozenset[str] | None = None,
    before_seq: int | None,
    limit: int,
) -> list[Consultation]:
    """Consultations the user takes part in, plus open offers if they are an on-duty expert."""
    c = consultations
    mine = exists().where(participants.c.consultation_id == c.c.id, participants.c.user_id == user_id)
    offered: ColumnElement[bool] = false()
    if offer_org is not None:
        direct = and_(
            or_(c.c.expert_id.is_(None), c.c.expert_id == user_id),
            or_(c.c.pool.is_(None), c.c.pool.in_(offer_pools)) if offer_pools else c.c.pool.is_(None),
        )
        escalated = c.c.escalated_pool.in_(offer_pools) if offer_pools else false()
        offered = and_(c.c.status == "open", c.c.target_org == offer_org, or_(direct, escalated),
                       offered_purposes(offer_roles))
    query = select(c).where(or_(mine, offered))
    if status is not None:
        query = query.where(c.c.status == status)
    if before_seq is not None:
        query = query.where(c.c.seq < before_seq)
    query = query.order_by(c.c.seq.desc()).limit(limit)
    return [_consultation(r) for r in (await conn.execute(query)).all()]


async def insert_notification(conn: AsyncConnection, n: Notification) -> None:
    await conn.execute(insert(child_welfare_notifications).values(**asdict(n)))


async def get_notification(conn: AsyncConnection, consultation_id: str) -> Notification | None:
    query = select(child_welfare_notifications).where(
        child_welfare_notifications.c.consultation_id == consultation_id)
    row = (await conn.execute(query)).first()
    return Notification(**as_dict(row)) if row else None
