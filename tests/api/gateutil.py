"""Helpers for content-gate tests: every text the database holds (sealed content opened with the
service's own keys) and a leak check that sees an identifier through any way of writing it."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from sqlalchemy import select

from consult.http import keys
from consult.storage import attachments as attachment_store
from consult.storage import consultations as consultation_store
from consult.storage import messages as message_store
from consult.storage import tables

# Columns that hold the identity code by design: sealed (and not opened here) or keyed digests.
_HETU_HOLDERS = frozenset({"clients"})


async def stored_texts(app: Any) -> list[tuple[str, str]]:
    """``(table.column, text)`` for every text in the database: plain columns as stored, and
    sealed content (questions, close notes, message texts, item values, referral justifications,
    attachment file names) opened with the service's keys. The clients table is left out: it
    holds the identity code sealed, which is its job."""
    content = app[keys.MESSAGES].content
    found: list[tuple[str, str]] = []
    async with app[keys.DB].read() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name in _HETU_HOLDERS:
                continue
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, bytes | bytearray | memoryview):
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    found.append((f"{table.name}.{column}", text))
        for row in (await conn.execute(select(tables.consultations.c.id))).all():
            stored = await consultation_store.get(conn, row.id)
            assert stored is not None
            c = await content.open_consultation(conn, stored)
            found.append(("consultations.question (sealed)", c.question or ""))
            found.append(("consultations.outcome_note (sealed)", c.outcome_note or ""))
            listed = await message_store.list_messages(conn, c.id, after_seq=None, limit=100_000)
            for m in await content.open_messages(conn, c, listed):
                found.append(("messages.text (sealed)", m.text))
                for item in m.items:
                    found.append(("message_items.value (sealed)", item.value or ""))
                    found.append(("message_items.referral_justification (sealed)",
                                  item.referral_justification or ""))
                    found.append(("message_items.referral_why_no_consent (sealed)",
                                  item.referral_why_no_consent or ""))
        for row in (await conn.execute(select(tables.attachments))).mappings():
            key = await content.key(conn, row["consultation_id"])
            name, _data = content.open_attachment(key, dict(row))
            found.append(("attachments.filename (sealed)", name))
    return found


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).upper()


def leaks(identifier: str, kind: str, text: str) -> bool:
    """Whether ``text`` holds ``identifier`` in clear, however it is written: for an identity
    code any separator or none, any case; for an IBAN or a phone number with or without
    spaces and dashes; for an e-mail address in any case."""
    folded = _fold(text)
    if kind == "hetu":
        code = re.sub(r"[\W_]", "", _fold(identifier))
        date, tail = code[:6], code[-4:]
        return re.search(rf"{date}[\W_]*[A-FU-Y+\-]?[\W_]*{tail}", folded) is not None or (
            date + tail) in re.sub(r"[\W_]", "", folded)
    if kind == "email":
        return _fold(identifier) in folded
    if kind in ("iban", "phone"):
        compact = re.sub(r"[\W_]", "", _fold(identifier))
        if kind == "phone" and compact.startswith("0"):
            compact = compact[1:]  # +358 40 … and 040 … are the same number
        return compact in re.sub(r"[\s\-\u2010-\u2015\u2212().]", "", folded)
    raise ValueError(kind)


def leaked(identifier: str, kind: str, texts: list[tuple[str, str]]) -> list[str]:
    """Where among ``texts`` the identifier is in clear."""
    return [where for where, text in texts if leaks(identifier, kind, text)]
