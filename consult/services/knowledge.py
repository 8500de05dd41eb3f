"""The knowledge base (docs/capabilities.md C9): an expert turns a closed consultation into an anonymised
question-and-answer entry, another expert of the same organisation approves it, and advisors
search the approved entries before asking.

An entry must hold no personal data. The policy engine's identifier scanner (HETU, IBAN, phone,
e-mail, with real validators) and a check for client links must find nothing in it, else it is
refused naming what was found where — kinds and positions, never the values. The entry is
written anew by the expert (nothing is copied from the consultation), so it is kept in clear for
full-text search; the source consultation is shown only to the authoring organisation.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.context import RequestContext
from consult.services import access
from consult.services.content import Content
from consult.services.gate import PersonalDataFound, entry_findings
from consult.storage import knowledge as store
from consult.storage.db import Database

_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 8


def fold(text: str) -> str:
    """Lower case without diacritics (ä → a), as both search indexes see the text."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_prefix(word: str) -> str:
    """A crude Finnish stem for prefix matching: inflection and consonant gradation change the
    end of a word (tuki → tuen, liite → liitteet), so long words drop their last four letters."""
    return word if len(word) <= 4 else word[: max(4, len(word) - 4)]


def entry_json(row: dict[str, Any], who: Principal) -> dict[str, Any]:
    body = {
        "id": row["id"], "org": row["org"], "topic": row["topic"], "question": row["question"],
        "answer": row["answer"], "status": row["status"], "created_at": iso(row["created_at"]),
        "approved_at": iso(row["approved_at"]),
    }
    if who.org == row["org"]:
        body.update(source_consultation_id=row["source_consultation_id"], created_by=row["created_by"],
                    approved_by=row["approved_by"])
    return body


class KnowledgeBase:
    def __init__(self, db: Database, content: Content, clock: Clock, *, topics: frozenset[str]) -> None:
        self.db = db
        self.content = content
        self.clock = clock
        self.topics = topics

    async def propose(self, who: Principal, consultation_id: str, question: str, answer: str, topic: str | None,
                      ctx: RequestContext) -> dict[str, Any]:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
        c = acc.consultation
        if acc.participant is None or not actions.allows(who, "knowledge.propose") or who.org != c.target_org:
            raise Forbidden("An expert who took part in the consultation writes its entry.")
        if c.status != "closed":
            raise Conflict("Only a closed consultation becomes a knowledge entry.", code="not_closed")
        topic = topic or c.topic
        if topic not in self.topics:
            raise Unprocessable("topic is not a known topic.", code="invalid_field")
        now = self.clock.now()
        found = entry_findings({"question": question, "answer": answer})
        if found:
            await self.db.write(lambda conn: record(conn, who, ctx, now, [AuditRecord(
                action="knowledge.refuse", outcome="deny", consultation_id=consultation_id,
                rule_id="knowledge:no_personal_data")]))
            raise PersonalDataFound(found)
        row = {
            "id": str(uuid.uuid4()), "org": who.org, "topic": topic, "question": question, "answer": answer,
            "search_text": fold(f"{question}\n{answer}"), "status": "draft",
            "source_consultation_id": consultation_id, "created_by": who.user_id, "created_at": now,
            "approved_by": None, "approved_at": None, "withdrawn_at": None,
        }

        async def unit(conn: AsyncConnection) -> None:
            await store.insert_entry(conn, row)
            await record(conn, who, ctx, now, [AuditRecord(action="knowledge.propose",
                                                           consultation_id=consultation_id,
                                                           rule_id=f"knowledge:{row['id']}")])

        await self.db.write(unit)
        return entry_json(row, who)

    async def _own(self, who: Principal, entry_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await store.get(conn, entry_id)
        if row is None or (row["status"] != "approved" and row["org"] != who.org):
            raise NotFound()
        return row

    async def get(self, who: Principal, entry_id: str, ctx: RequestContext) -> dict[str, Any]:
        row = await self._own(who, entry_id)
        await self._read(who, ctx, "knowledge.read", [row])
        return entry_json(row, who)

    async def _read(self, who: Principal, ctx: RequestContext, action: str, rows: list[dict[str, Any]]) -> None:
        """Record a read of entries (one record per call). Entries hold no personal data, but their
        questions are read like any other; a single entry is named (with, to its own organisation,
        the consultation it came from)."""
        one = rows[0] if len(rows) == 1 and action == "knowledge.read" else None
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [AuditRecord(
            action=action,
            consultation_id=one["source_consultation_id"] if one and one["org"] == who.org else None,
            rule_id=f"knowledge:{one['id']}" if one else None)]))

    async def approve(self, who: Principal, entry_id: str, ctx: RequestContext) -> dict[str, Any]:
        row = await self._own(who, entry_id)
        if not actions.allows(who, "knowledge.approve") or who.org != row["org"]:
            raise Forbidden("An expert of the organisation that wrote the entry approves it.")
        if row["created_by"] == who.user_id:
            raise Forbidden("Another expert approves the entry (four eyes).", code="own_entry")
        # Checked again: the scanner may have learnt more since the entry was written.
        found = entry_findings({"question": row["question"], "answer": row["answer"]})
        if found:
            raise PersonalDataFound(found)
        return await self._transition(who, row, "draft", {"status": "approved", "approved_by": who.user_id},
                                      "approved_at", "knowledge.approve", ctx)

    async def withdraw(self, who: Principal, entry_id: str, ctx: RequestContext) -> dict[str, Any]:
        row = await self._own(who, entry_id)
        if who.org != row["org"] or not actions.allows(who, "knowledge.withdraw"):
            raise Forbidden("An expert or admin of the organisation that wrote the entry withdraws it.")
        if row["status"] == "withdrawn":
            raise Conflict("The entry is already withdrawn.", code="withdrawn")
        return await self._transition(who, row, row["status"], {"status": "withdrawn"}, "withdrawn_at",
                                      "knowledge.withdraw", ctx)

    async def _transition(self, who: Principal, row: dict[str, Any], expected: str, values: dict[str, Any],
                          stamp: str, action: str, ctx: RequestContext) -> dict[str, Any]:
        now = self.clock.now()
        values = {**values, stamp: now}

        async def unit(conn: AsyncConnection) -> bool:
            if not await store.set_status(conn, row["id"], expected, values):
                return False
            await record(conn, who, ctx, now, [AuditRecord(action=action, rule_id=f"knowledge:{row['id']}")])
            return True

        if not await self.db.write(unit):
            raise Conflict("The entry changed meanwhile; reload it.", code="stale")
        return entry_json({**row, **values}, who)

    async def search(self, who: Principal, query: str | None, topic: str | None, limit: int,
                     ctx: RequestContext) -> list[dict[str, Any]]:
        if not actions.allows(who, "knowledge.read"):
            raise Forbidden("Your role does not read the knowledge base.", code="role")
        words = [w for w in _WORD.findall(fold(query or "")) if len(w) >= 2][:MAX_TERMS]
        async with self.db.read() as conn:
            if not words:
                rows = await store.list_entries(conn, status="approved", org=None, topic=topic, limit=limit)
            else:
                rows = await store.search(conn, [search_prefix(w) for w in words], " ".join(words),
                                          topic=topic, limit=limit)
        await self._read(who, ctx, "knowledge.search", rows)
        return [entry_json(r, who) for r in rows]

    async def drafts(self, who: Principal, limit: int, ctx: RequestContext) -> list[dict[str, Any]]:
        """Entries of the caller's organisation waiting for approval (experts and admins)."""
        if not actions.allows(who, "knowledge.drafts"):
            raise Forbidden("Your role does not approve entries.", code="role")
        async with self.db.read() as conn:
            rows = await store.list_entries(conn, status="draft", org=who.org, topic=None, limit=limit)
        await self._read(who, ctx, "knowledge.drafts", rows)
        return [entry_json(r, who) for r in rows]
