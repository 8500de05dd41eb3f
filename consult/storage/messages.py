"""SQL for messages, their structured data items and read markers.

Messages come and go as `SealedMessage` records: their text and item values sealed
(consult/services/content.py opens them). The statements on the message path are built once,
so SQLAlchemy reuses their compiled form on every message.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.messages import ReadMarker, Spans
from consult.storage.db import asyncpg_connection
from consult.storage.rows import as_utc, sqlite_stamp
from consult.storage.tables import message_items, messages, read_markers


@dataclass(frozen=True, slots=True)
class SealedItem:
    """A ``message_items`` row: the value and the referral texts sealed."""

    idx: int
    category: str
    value_sealed: bytes
    value_spans: Spans = None
    consent_id: str | None = None
    attachment_id: str | None = None
    referral_condition: str | None = None
    referral_justification_sealed: bytes | None = None
    referral_why_no_consent_sealed: bytes | None = None


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """A ``messages`` row with its items; ``seq`` is 0 until the row is stored."""

    id: str
    consultation_id: str
    author_id: str
    author_org: str
    author_role: str
    author_name: str
    text_sealed: bytes
    text_spans: Spans
    flagged_categories: tuple[str, ...]
    created_at: datetime
    items: tuple[SealedItem, ...]
    seq: int = 0
    sent_policy_sealed: bytes | None = None


_INSERT = insert(messages).returning(messages.c.seq)
_INSERT_ITEMS = insert(message_items)
_GET = select(messages).where(messages.c.id == bindparam("id"))
_MARKERS = select(read_markers).where(read_markers.c.consultation_id == bindparam("id"))
_PAGE = (select(messages).where(messages.c.consultation_id == bindparam("id"))
         .order_by(messages.c.seq).limit(bindparam("limit")))
_PAGE_AFTER = (select(messages)
               .where(messages.c.consultation_id == bindparam("id"), messages.c.seq > bindparam("after"))
               .order_by(messages.c.seq).limit(bindparam("limit")))
_ITEMS = (select(message_items).where(message_items.c.message_id.in_(bindparam("ids", expanding=True)))
          .order_by(message_items.c.message_id, message_items.c.idx))


# On SQLite the message and its items go straight to the sqlite3 connection, inside the
# transaction SQLAlchemy opened on it, as the audit log's append does: this runs for every message,
# and the statement execution machinery cost more than the inserts. Values are stored exactly as
# SQLAlchemy's SQLite types store them (UTC text timestamps, JSON text with None as 'null').
_ITEM_COLUMNS = ("message_id", "idx", "category", "value_sealed", "value_spans", "consent_id", "attachment_id",
                 "referral_condition", "referral_justification_sealed", "referral_why_no_consent_sealed")
_MESSAGE_COLUMNS = ("id", "consultation_id", "author_id", "author_org", "author_role", "author_name",
                    "text_sealed", "text_spans", "flagged_categories", "created_at", "sent_policy_sealed")
_SQLITE_INSERT = (f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))}) RETURNING seq")
_SQLITE_INSERT_ITEMS = (f"INSERT INTO message_items ({', '.join(_ITEM_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(_ITEM_COLUMNS))})")


def _sqlite_insert(sync: Any, message: SealedMessage) -> int:
    driver = sync.connection.driver_connection
    stamp = sqlite_stamp(message.created_at)
    seq = driver.execute(_SQLITE_INSERT, (
        message.id, message.consultation_id, message.author_id, message.author_org, message.author_role,
        message.author_name, message.text_sealed, json.dumps(message.text_spans),
        json.dumps(list(message.flagged_categories) or None), stamp, message.sent_policy_sealed,
    )).fetchone()[0]
    if message.items:
        driver.executemany(_SQLITE_INSERT_ITEMS, [
            (message.id, i.idx, i.category, i.value_sealed, json.dumps(i.value_spans), i.consent_id,
             i.attachment_id, i.referral_condition, i.referral_justification_sealed,
             i.referral_why_no_consent_sealed)
            for i in message.items
        ])
    return int(seq)


# On PostgreSQL they go straight to asyncpg in the writer's transaction, for the same reason. JSON
# values are passed as text, as SQLAlchemy's JSON type hands them to the codec it sets on asyncpg
# connections (None as JSON 'null').
_PG_INSERT = (f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) "
              f"VALUES ({', '.join(f'${i}' for i in range(1, len(_MESSAGE_COLUMNS) + 1))}) RETURNING seq")
_PG_INSERT_ITEMS = (f"INSERT INTO message_items ({', '.join(_ITEM_COLUMNS)}) "
                    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_ITEM_COLUMNS) + 1))})")


async def _asyncpg_insert(conn: AsyncConnection, message: SealedMessage) -> int:
    driver = await asyncpg_connection(conn)
    seq = await driver.fetchval(
        _PG_INSERT, message.id, message.consultation_id, message.author_id, message.author_org,
        message.author_role, message.author_name, message.text_sealed, json.dumps(message.text_spans),
        json.dumps(list(message.flagged_categories) or None), message.created_at, message.sent_policy_sealed)
    if message.items:
        await driver.executemany(_PG_INSERT_ITEMS, [
            (message.id, i.idx, i.category, i.value_sealed, json.dumps(i.value_spans), i.consent_id,
             i.attachment_id, i.referral_condition, i.referral_justification_sealed,
             i.referral_why_no_consent_sealed)
            for i in message.items
        ])
    return int(seq)


async def insert_message(conn: AsyncConnection, message: SealedMessage) -> int:
    """Store ``message`` and its items; returns its ``seq``."""
    if conn.dialect.name == "sqlite":
        return await conn.run_sync(_sqlite_insert, message)
    if conn.dialect.driver == "asyncpg":
        return await _asyncpg_insert(conn, message)
    values = {
        "id": message.id, "consultation_id": message.consultation_id, "author_id": message.author_id,
        "author_org": message.author_org, "author_role": message.author_role, "author_name": message.author_name,
        "text_sealed": message.text_sealed, "text_spans": message.text_spans,
        "flagged_categories": list(message.flagged_categories) or None, "created_at": message.created_at,
        "sent_policy_sealed": message.sent_policy_sealed,
    }
    result = await conn.execute(_INSERT, values)
    seq = int(result.scalar_one())
    if message.items:
        await conn.execute(_INSERT_ITEMS, [{"message_id": message.id, **asdict(item)} for item in message.items])
    return seq


def _message(row: Row[Any], items: tuple[SealedItem, ...]) -> SealedMessage:
    created_at = as_utc(row.created_at)
    assert created_at is not None
    return SealedMessage(
        id=row.id, consultation_id=row.consultation_id, author_id=row.author_id, author_org=row.author_org,
        author_role=row.author_role, author_name=row.author_name, text_sealed=row.text_sealed,
        text_spans=row.text_spans, flagged_categories=tuple(row.flagged_categories or ()),
        created_at=created_at, items=items, seq=row.seq,
        sent_policy_sealed=None if row.sent_policy_sealed is None else bytes(row.sent_policy_sealed),
    )


def _item(row: Row[Any]) -> SealedItem:
    return SealedItem(
        idx=row.idx, category=row.category, value_sealed=row.value_sealed, value_spans=row.value_spans,
        consent_id=row.consent_id, attachment_id=row.attachment_id, referral_condition=row.referral_condition,
        referral_justification_sealed=row.referral_justification_sealed,
        referral_why_no_consent_sealed=row.referral_why_no_consent_sealed,
    )


async def get_message(conn: AsyncConnection, message_id: str) -> SealedMessage | None:
    """The message without its items (for a read receipt)."""
    row = (await conn.execute(_GET, {"id": message_id})).first()
    return _message(row, ()) if row else None


async def list_messages(
    conn: AsyncConnection, consultation_id: str, *, after_seq: int | None, limit: int
) -> list[SealedMessage]:
    if after_seq is None:
        result = await conn.execute(_PAGE, {"id": consultation_id, "limit": limit})
    else:
        result = await conn.execute(_PAGE_AFTER, {"id": consultation_id, "after": after_seq, "limit": limit})
    rows = result.all()
    if not rows:
        return []
    items: dict[str, list[SealedItem]] = defaultdict(list)
    for item in (await conn.execute(_ITEMS, {"ids": [r.id for r in rows]})).all():
        items[item.message_id].append(_item(item))
    return [_message(row, tuple(items.get(row.id, ()))) for row in rows]


async def read_markers_for(conn: AsyncConnection, consultation_id: str) -> list[ReadMarker]:
    return [ReadMarker(r.user_id, r.message_seq, as_utc(r.read_at) or r.read_at)
            for r in (await conn.execute(_MARKERS, {"id": consultation_id})).all()]


async def advance_read_marker(
    conn: AsyncConnection, consultation_id: str, user_id: str, message_seq: int, at: datetime
) -> bool:
    """Move the user's read marker forward (never back); True if it moved."""
    current = (
        await conn.execute(
            select(read_markers.c.message_seq).where(
                read_markers.c.consultation_id == consultation_id, read_markers.c.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if current is None:
        await conn.execute(
            insert(read_markers).values(
                consultation_id=consultation_id, user_id=user_id, message_seq=message_seq, read_at=at
            )
        )
        return True
    if current >= message_seq:
        return False
    await conn.execute(
        update(read_markers)
        .where(read_markers.c.consultation_id == consultation_id, read_markers.c.user_id == user_id)
        .values(message_seq=message_seq, read_at=at)
    )
    return True
