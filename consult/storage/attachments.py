"""SQL for attachments: sealed bytes and metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import attachments, message_items, messages


async def insert_attachment(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(attachments).values(**values))


async def get(conn: AsyncConnection, attachment_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(attachments).where(attachments.c.id == attachment_id))).first()
    return as_dict(row) if row else None


async def item_for(conn: AsyncConnection, attachment_id: str) -> dict[str, Any] | None:
    """The data item that carries the attachment, with its message's author."""
    query = (
        select(message_items.c.category, message_items.c.consent_id, message_items.c.referral_condition,
               message_items.c.value_spans,
               messages.c.id.label("message_id"), messages.c.author_id, messages.c.author_org,
               messages.c.author_role)
        .join(messages, messages.c.id == message_items.c.message_id)
        .where(message_items.c.attachment_id == attachment_id)
    )
    row = (await conn.execute(query)).first()
    return as_dict(row) if row else None
