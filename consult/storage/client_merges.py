"""SQL for re-indexing the client registry under the canonical identity-code form and merging
the duplicates it reveals: rows still under the old form, repointing a duplicate's
consultations, consents and prohibitions, the merge record, and the sealed texts of a
consultation whose client links may need repointing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.identifiers import ClientRef
from consult.storage.rows import as_dict
from consult.storage.tables import (
    attachments,
    client_merges,
    clients,
    consents,
    consultations,
    message_items,
    messages,
    prohibitions,
)


async def legacy(conn: AsyncConnection, form: int, *, after: str, limit: int) -> list[dict[str, Any]]:
    """Rows indexed under a form older than ``form``, by ref, after ``after``."""
    query = (select(clients).where(clients.c.hetu_form < form, clients.c.client_ref > after)
             .order_by(clients.c.client_ref).limit(limit))
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def by_index(conn: AsyncConnection, hetu_index: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(clients).where(clients.c.hetu_index == hetu_index))).first()
    return as_dict(row) if row else None


async def refs_by_index(conn: AsyncConnection, hetu_indexes: list[str]) -> dict[str, str]:
    """``{hetu_index: client_ref}`` of those of ``hetu_indexes`` that a client holds."""
    found: dict[str, str] = {}
    for start in range(0, len(hetu_indexes), 500):
        chunk = hetu_indexes[start:start + 500]
        rows = await conn.execute(select(clients.c.hetu_index, clients.c.client_ref)
                                  .where(clients.c.hetu_index.in_(chunk)))
        found.update({row.hetu_index: row.client_ref for row in rows.all()})
    return found


async def mark_form(conn: AsyncConnection, client_refs: list[str], form: int, *, below: int) -> None:
    """Record that these clients' index is already the one of ``form`` (if still below it)."""
    await conn.execute(update(clients).where(clients.c.client_ref.in_(client_refs), clients.c.hetu_form < below)
                       .values(hetu_form=form))


async def by_ref(conn: AsyncConnection, client_ref: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(clients).where(clients.c.client_ref == client_ref))).first()
    return as_dict(row) if row else None


async def merge(conn: AsyncConnection, merged_ref: str, into_ref: str, at: datetime) -> None:
    """Everything of ``merged_ref`` now belongs to ``into_ref``; the duplicate row goes."""
    for table in (consultations, consents, prohibitions):
        await conn.execute(update(table).where(table.c.client_ref == merged_ref).values(client_ref=into_ref))
    # Earlier merges into the duplicate follow it, so a reference is never two hops away.
    await conn.execute(update(client_merges).where(client_merges.c.into_ref == merged_ref)
                       .values(into_ref=into_ref))
    await conn.execute(insert(client_merges).values(merged_ref=merged_ref, into_ref=into_ref, merged_at=at))
    await conn.execute(delete(clients).where(clients.c.client_ref == merged_ref))


async def set_index(conn: AsyncConnection, client_ref: str, hetu_index: str, hetu_sealed: bytes,
                    form: int) -> None:
    await conn.execute(update(clients).where(clients.c.client_ref == client_ref)
                       .values(hetu_index=hetu_index, hetu_sealed=hetu_sealed, hetu_form=form))


async def merged_into(conn: AsyncConnection, client_ref: str) -> list[str]:
    """The references merged into ``client_ref``, oldest merge first."""
    query = (select(client_merges.c.merged_ref).where(client_merges.c.into_ref == client_ref)
             .order_by(client_merges.c.merged_at, client_merges.c.merged_ref))
    return list((await conn.execute(query)).scalars())


async def all_merged(conn: AsyncConnection) -> dict[str, str]:
    """``{merged_ref: into_ref}`` of every merge (for verifying the rows the audit log vouches for)."""
    query = select(client_merges.c.merged_ref, client_merges.c.into_ref)
    return {row.merged_ref: row.into_ref for row in (await conn.execute(query)).all()}


async def links_pending(conn: AsyncConnection) -> dict[str, str]:
    """``{merged_ref: into_ref}`` of merges whose client links are not yet repointed."""
    query = select(client_merges.c.merged_ref, client_merges.c.into_ref).where(
        client_merges.c.links_repointed_at.is_(None))
    return {row.merged_ref: row.into_ref for row in (await conn.execute(query)).all()}


async def links_repointed(conn: AsyncConnection, merged_refs: list[str], at: datetime) -> None:
    if merged_refs:
        await conn.execute(update(client_merges).where(client_merges.c.merged_ref.in_(merged_refs))
                           .values(links_repointed_at=at))


async def consultation_ids(conn: AsyncConnection, *, after: int, limit: int) -> list[tuple[int, str, ClientRef | None]]:
    """``(seq, id, client_ref)`` of consultations whose content still exists, after ``seq``."""
    query = (select(consultations.c.seq, consultations.c.id, consultations.c.client_ref)
             .where(consultations.c.seq > after, consultations.c.shredded_at.is_(None))
             .order_by(consultations.c.seq).limit(limit))
    return [(r.seq, r.id, r.client_ref) for r in (await conn.execute(query)).all()]


@dataclass(frozen=True, slots=True)
class SealedText:
    """One sealed free-text value of a consultation, with the names its associated data binds."""

    table: str
    row_id: str
    field: str
    blob: bytes


async def sealed_texts(conn: AsyncConnection, consultation_id: str) -> list[SealedText]:
    """Every sealed text of one consultation that a client link can appear in."""
    found: list[SealedText] = []
    c = (await conn.execute(select(consultations.c.question_sealed, consultations.c.outcome_note_sealed)
                            .where(consultations.c.id == consultation_id))).first()
    if c is None:
        return found
    found.append(SealedText("consultations", consultation_id, "question", bytes(c.question_sealed)))
    if c.outcome_note_sealed is not None:
        found.append(SealedText("consultations", consultation_id, "outcome_note", bytes(c.outcome_note_sealed)))
    rows = await conn.execute(select(messages.c.id, messages.c.text_sealed)
                              .where(messages.c.consultation_id == consultation_id))
    message_ids = []
    for row in rows.all():
        message_ids.append(row.id)
        found.append(SealedText("messages", row.id, "text", bytes(row.text_sealed)))
    if message_ids:
        items = await conn.execute(select(message_items).where(message_items.c.message_id.in_(message_ids)))
        for item in items.all():
            row_id = f"{item.message_id}/{item.idx}"
            found.append(SealedText("message_items", row_id, "value", bytes(item.value_sealed)))
            if item.referral_justification_sealed is not None:
                found.append(SealedText("message_items", row_id, "referral_justification",
                                        bytes(item.referral_justification_sealed)))
            if item.referral_why_no_consent_sealed is not None:
                found.append(SealedText("message_items", row_id, "referral_why_no_consent",
                                        bytes(item.referral_why_no_consent_sealed)))
    files = await conn.execute(select(attachments.c.id, attachments.c.filename_sealed)
                               .where(attachments.c.consultation_id == consultation_id))
    for row in files.all():
        found.append(SealedText("attachments", row.id, "filename", bytes(row.filename_sealed)))
    return found


async def reseal(conn: AsyncConnection, text: SealedText, blob: bytes) -> None:
    """Store ``blob`` in place of ``text``'s ciphertext."""
    if text.table == "consultations":
        column = {"question": "question_sealed", "outcome_note": "outcome_note_sealed"}[text.field]
        stmt = update(consultations).where(consultations.c.id == text.row_id).values({column: blob})
    elif text.table == "messages":
        stmt = update(messages).where(messages.c.id == text.row_id).values(text_sealed=blob)
    elif text.table == "message_items":
        message_id, idx = text.row_id.rsplit("/", 1)
        column = {"value": "value_sealed", "referral_justification": "referral_justification_sealed",
                  "referral_why_no_consent": "referral_why_no_consent_sealed"}[text.field]
        stmt = (update(message_items)
                .where(message_items.c.message_id == message_id, message_items.c.idx == int(idx))
                .values({column: blob}))
    elif text.table == "attachments":
        stmt = update(attachments).where(attachments.c.id == text.row_id).values(filename_sealed=blob)
    else:
        raise ValueError(f"no sealed text in table {text.table!r}")
    await conn.execute(stmt)
