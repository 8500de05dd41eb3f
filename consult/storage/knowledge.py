"""SQL for the knowledge base (docs/capabilities.md C9) and its full-text search: an FTS5 table on SQLite,
GIN-indexed ``to_tsvector`` expressions on PostgreSQL (both made by migration 0005)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, column, func, insert, literal_column, or_, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.rows import as_dict
from consult.storage.tables import knowledge_entries

k = knowledge_entries.c
# The FTS5 table (SQLite only; made by migration 0005, outside the metadata).
_fts = table("kb_search", column("rowid"), column("search_text"))


async def insert_entry(conn: AsyncConnection, values: dict[str, Any]) -> int:
    seq = (await conn.execute(insert(knowledge_entries).values(**values).returning(k.seq))).scalar_one()
    if conn.dialect.name == "sqlite":
        await conn.execute(text("INSERT INTO kb_search (rowid, search_text) VALUES (:seq, :t)"),
                           {"seq": seq, "t": values["search_text"]})
    return int(seq)


async def get(conn: AsyncConnection, entry_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(knowledge_entries).where(k.id == entry_id))).first()
    return as_dict(row) if row else None


async def set_status(conn: AsyncConnection, entry_id: str, expected: str, values: dict[str, Any]) -> bool:
    result = await conn.execute(update(knowledge_entries).where(k.id == entry_id, k.status == expected)
                                .values(**values))
    return result.rowcount == 1


async def list_entries(conn: AsyncConnection, *, status: str, org: str | None, topic: str | None, limit: int
                       ) -> list[dict[str, Any]]:
    query = select(knowledge_entries).where(k.status == status).order_by(k.seq.desc()).limit(limit)
    if org is not None:
        query = query.where(k.org == org)
    if topic is not None:
        query = query.where(k.topic == topic)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def search(conn: AsyncConnection, prefixes: list[str], words: str, *, topic: str | None, limit: int
                 ) -> list[dict[str, Any]]:
    """Approved entries matching every prefix (``prefixes`` are letters and digits only), best first.

    PostgreSQL also matches Finnish stems (Snowball) of ``words``, so an inflected form finds an
    entry whose words share no long prefix with it.
    """
    if conn.dialect.name == "sqlite":
        match = " ".join(f'"{p}"*' for p in prefixes)
        query = (select(knowledge_entries).join(_fts, _fts.c.rowid == k.seq)
                 .where(text("kb_search MATCH :match").bindparams(match=match), k.status == "approved")
                 .order_by(func.bm25(literal_column("kb_search"))).limit(limit))
        if topic is not None:
            query = query.where(k.topic == topic)
        return [as_dict(r) for r in (await conn.execute(query)).all()]
    simple = func.to_tsvector("simple", k.search_text)
    prefix_query = func.to_tsquery("simple", " & ".join(f"{p}:*" for p in prefixes))
    finnish = func.to_tsvector("finnish", k.question + " " + k.answer)
    stem_query = func.plainto_tsquery("finnish", words)
    rank = func.ts_rank(simple, prefix_query) + func.ts_rank(finnish, stem_query)
    query = (select(knowledge_entries)
             .where(k.status == "approved", or_(simple.op("@@", return_type=Boolean)(prefix_query),
                                                finnish.op("@@", return_type=Boolean)(stem_query)))
             .order_by(rank.desc(), k.seq.desc()).limit(limit))
    if topic is not None:
        query = query.where(k.topic == topic)
    return [as_dict(r) for r in (await conn.execute(query)).all()]
