"""SQL for the audit log: append-only; nothing here updates or deletes a record.

Leaf indices come from the one-row ``audit_head``: `reserve` advances it inside the caller's
write transaction, so a unit that is rolled back (alone, or as a savepoint in a batch) gives its
indices back with everything else it wrote, and the log stays contiguous from 0. Committed
records therefore always form a prefix ``0..size-1``, which is what readers see.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.model.audit_fields import FIELDS, LIST_FIELDS, ROW_FIELDS
from consult.storage.db import asyncpg_connection
from consult.storage.rows import as_dict, sqlite_stamp
from consult.storage.tables import (
    audit_checkpoints,
    audit_events,
    audit_head,
    audit_reasons,
    directory_users,
)

HEAD_ID = 1

# Built once: the append path runs in every write unit of the service.
_RESERVE = (
    update(audit_head)
    .where(audit_head.c.id == HEAD_ID)
    .values(size=audit_head.c.size + bindparam("n"))
    .returning(audit_head.c.size)
)
_INSERT = insert(audit_events)

# On SQLite the two statements go straight to the sqlite3 connection, inside the transaction
# SQLAlchemy opened on it: the log's append is on every write path, and skipping the statement
# execution machinery more than halves its cost there. Values are stored exactly as SQLAlchemy's
# SQLite types store them (UTC text timestamps, JSON text).
_APPEND_COLUMNS = (*FIELDS, *ROW_FIELDS)
_SQLITE_RESERVE = f"UPDATE audit_head SET size = size + ? WHERE id = {HEAD_ID} RETURNING size"
_SQLITE_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_APPEND_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_APPEND_COLUMNS))})"
)

# On PostgreSQL they go straight to asyncpg in the writer's transaction, for the same reason (once
# per group commit: consult/storage/db.py `Deferred`). JSON values are passed as text, as
# SQLAlchemy's JSON type hands them to the codec it sets on asyncpg connections.
_PG_RESERVE = f"UPDATE audit_head SET size = size + $1 WHERE id = {HEAD_ID} RETURNING size"
_PG_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_APPEND_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_APPEND_COLUMNS) + 1))})"
)

DISCLOSURE_ACTIONS = ("disclose", "disclose.withheld")


# -- appending ------------------------------------------------------------------------------------


async def reserve(conn: AsyncConnection, n: int) -> int:
    """Reserve ``n`` leaf indices in the current transaction; the first one is returned."""
    if conn.dialect.name == "sqlite":
        size = await conn.run_sync(_sqlite_reserve, n)
    elif conn.dialect.driver == "asyncpg":
        size = await (await asyncpg_connection(conn)).fetchval(_PG_RESERVE, n)
    else:
        size = (await conn.execute(_RESERVE, {"n": n})).scalar_one_or_none()
    if size is None:  # a database created without the migration's head row
        first = int((await conn.execute(select(func.count()).select_from(audit_events))).scalar_one())
        await conn.execute(insert(audit_head).values(id=HEAD_ID, size=first + n))
        return first
    return int(size) - n


async def append(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        await conn.run_sync(_sqlite_insert, rows)
    elif conn.dialect.driver == "asyncpg":
        dumps = json.dumps
        params = []
        for row in rows:
            values = list(_values(row))
            values[_CATEGORIES] = dumps(values[_CATEGORIES])
            values[_FLAGS] = dumps(values[_FLAGS])
            params.append(values)
        await (await asyncpg_connection(conn)).executemany(_PG_INSERT, params)
    else:
        await conn.execute(_INSERT, rows)


def _sqlite_reserve(sync: Any, n: int) -> int | None:
    found = sync.connection.driver_connection.execute(_SQLITE_RESERVE, (n,)).fetchone()
    return None if found is None else found[0]


_values = itemgetter(*_APPEND_COLUMNS)
_AT, _CATEGORIES, _FLAGS = (_APPEND_COLUMNS.index(c) for c in ("at", "categories", "flags"))


def _sqlite3(sync: Any) -> sqlite3.Connection:
    """The sqlite3 connection under a synchronous SQLAlchemy connection to SQLite."""
    driver: sqlite3.Connection = sync.connection.driver_connection
    return driver


def _sqlite_insert(sync: Any, rows: list[dict[str, Any]]) -> None:
    dumps = json.dumps
    texts: dict[datetime, str] = {}
    params = []
    for row in rows:
        values = list(_values(row))
        at = values[_AT]
        text = texts.get(at)
        if text is None:
            text = texts[at] = sqlite_stamp(at)
        values[_AT] = text
        values[_CATEGORIES] = dumps(values[_CATEGORIES])
        values[_FLAGS] = dumps(values[_FLAGS])
        params.append(values)
    sync.connection.driver_connection.executemany(_SQLITE_INSERT, params)


async def insert_reason(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(audit_reasons).values(**values))


async def insert_checkpoint(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(audit_checkpoints).values(**values))


# -- the tree and its verification -----------------------------------------------------------------


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(audit_events))).scalar_one())


async def head_size(conn: AsyncConnection) -> int | None:
    """The size the head row claims (None if it is missing)."""
    value = (await conn.execute(select(audit_head.c.size).where(audit_head.c.id == HEAD_ID))).scalar()
    return None if value is None else int(value)


_LEAF_HASHES = (
    select(audit_events.c.leaf_index, audit_events.c.leaf_hash)
    .where(audit_events.c.leaf_index >= bindparam("start"))
    .order_by(audit_events.c.leaf_index)
    .limit(bindparam("limit"))
)
_SQLITE_LEAF_HASHES = "SELECT leaf_index, leaf_hash FROM audit_events WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?"


async def leaf_hashes(conn: AsyncConnection, start: int, limit: int) -> list[tuple[int, bytes]]:
    """Stored ``(leaf_index, leaf_hash)`` from ``start`` on, in order (committed records only)."""
    if conn.dialect.name == "sqlite":
        return await conn.run_sync(
            lambda sync: _sqlite3(sync).execute(_SQLITE_LEAF_HASHES, (start, limit)).fetchall())
    rows = (await conn.execute(_LEAF_HASHES, {"start": start, "limit": limit})).all()
    return [(int(i), bytes(h)) for i, h in rows]


async def leaf_row(conn: AsyncConnection, index: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(audit_events).where(audit_events.c.leaf_index == index))).first()
    return as_dict(row) if row else None


def _entry_columns(dialect: str) -> list[ColumnElement[Any]]:
    """The entry fields in ``consult.audit.entry.FIELDS`` order (version 2), read without type processing.

    ``at`` comes back as UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` on both dialects (SQLite keeps
    timestamps in that form already), and the JSON lists as their stored text.
    """
    t = audit_events.c
    at: ColumnElement[Any]
    if dialect == "postgresql":
        at = func.to_char(func.timezone("UTC", t.at), "YYYY-MM-DD HH24:MI:SS.US")
    else:
        at = type_coerce(t.at, String)
    columns: list[ColumnElement[Any]] = []
    for name in FIELDS:
        column = t[name]
        columns.append(at if name == "at" else cast(column, Text) if name in LIST_FIELDS else column)
    # not part of the entry:
    return [*columns, t.leaf_hash, t.seq, t.entry_version]


ENTRY_AT, ENTRY_CATEGORIES, ENTRY_FLAGS = (FIELDS.index(name) for name in ("at", "categories", "flags"))
"""Positions in `iter_entry_rows` rows of the fields the verifier turns into entry values."""
ENTRY_WIDTH = len(FIELDS)
"""How many entry fields an `iter_entry_rows` row starts with (``leaf_hash``, ``seq`` and
``entry_version`` follow)."""


async def iter_entry_rows(conn: AsyncConnection, batch: int = 50_000) -> AsyncIterator[Sequence[Any]]:
    """Every record as a raw row, ordered by leaf index then insertion, ``batch`` rows at a time.

    Each row holds the entry fields of the current version (``FIELDS``, see `_entry_columns`) then ``leaf_hash``,
    ``seq`` and ``entry_version``.
    """
    query = select(*_entry_columns(conn.dialect.name)).order_by(audit_events.c.leaf_index, audit_events.c.seq)
    if conn.dialect.name == "sqlite":
        # Plain tuples straight from sqlite3: a million rows through Row objects cost seconds.
        sql = str(query.compile(dialect=conn.dialect))
        cursor = await conn.run_sync(lambda sync: _sqlite3(sync).execute(sql))
        while part := cursor.fetchmany(batch):
            yield part
            await asyncio.sleep(0)
        return
    result = await conn.stream(query.execution_options(yield_per=batch))
    async for rows in result.partitions():
        yield rows


async def checkpoints(conn: AsyncConnection) -> list[dict[str, Any]]:
    query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


async def newest_kept_in_file(conn: AsyncConnection) -> dict[str, Any] | None:
    """The largest checkpoint that was also appended to the checkpoint file."""
    t = audit_checkpoints.c
    query = select(audit_checkpoints).where(t.kept_in_file.is_(True)).order_by(t.tree_size.desc()).limit(1)
    row = (await conn.execute(query)).first()
    return as_dict(row) if row else None


async def latest_checkpoint(conn: AsyncConnection) -> dict[str, Any] | None:
    query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
    row = (await conn.execute(query)).first()
    return as_dict(row) if row else None


async def reasons(conn: AsyncConnection) -> list[dict[str, Any]]:
    query = select(audit_reasons.c.id, audit_reasons.c.text, audit_reasons.c.digest)
    return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def get_reason(conn: AsyncConnection, reason_id: str) -> dict[str, Any] | None:
    """A written reason and the organisations of the records that refer to it."""
    row = (await conn.execute(select(audit_reasons).where(audit_reasons.c.id == reason_id))).first()
    if row is None:
        return None
    t = audit_events.c
    orgs = (await conn.execute(select(t.actor_org, t.recipient_org).where(t.reason_id == reason_id))).all()
    return {**as_dict(row), "orgs": {o for pair in orgs for o in pair if o}}


async def reason_refs(conn: AsyncConnection) -> list[tuple[int, str, str | None]]:
    """``(leaf_index, reason_id, reason_digest)`` of every record that cites a written reason."""
    t = audit_events.c
    query = select(t.leaf_index, t.reason_id, t.reason_digest).where(t.reason_id.is_not(None)).order_by(t.leaf_index)
    return [(int(i), r, d) for i, r, d in (await conn.execute(query)).all()]


async def subject_records(conn: AsyncConnection, actions: Sequence[str]) -> list[dict[str, Any]]:
    """The records of ``actions`` with what links each to the history row it vouches for."""
    t = audit_events.c
    query = select(t.leaf_index, t.action, t.at, t.actor_id, t.consent_id, t.consent_version, t.rule_id,
                   t.client_ref, t.subject_digest, t.entry_version).where(t.action.in_(list(actions)))
    return [dict(r._mapping) for r in (await conn.execute(query.order_by(t.leaf_index))).all()]


async def first_older_than(conn: AsyncConnection, start: int, before: datetime) -> int | None:
    """The smallest leaf index from ``start`` on whose record is dated before ``before``."""
    t = audit_events.c
    query = select(func.min(t.leaf_index)).where(t.leaf_index >= start, t.at < before)
    value = (await conn.execute(query)).scalar()
    return None if value is None else int(value)


# -- privacy-officer queries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a privacy officer asks for; every field narrows. ``org`` scopes to one organisation:
    records whose actor or (for disclosures) recipient belongs to it."""

    org: str | None = None
    client_ref: str | None = None
    actor_id: str | None = None
    actions: tuple[str, ...] = ()
    outcome: str | None = None
    category: str | None = None
    basis: str | None = None
    consultation_id: str | None = None
    flag: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(f: EventFilter) -> list[ColumnElement[bool]]:
    t = audit_events.c
    where: list[ColumnElement[bool]] = []
    if f.org is not None:
        where.append(or_(t.actor_org == f.org, t.recipient_org == f.org))
    if f.client_ref is not None:
        where.append(t.client_ref == f.client_ref)
    if f.actor_id is not None:
        where.append(t.actor_id == f.actor_id)
    if len(f.actions) == 1:
        where.append(t.action == f.actions[0])
    elif f.actions:
        where.append(t.action.in_(f.actions))
    if f.outcome is not None:
        where.append(t.outcome == f.outcome)
    if f.category is not None:
        # JSON lists are stored as text on both dialects; a quoted name cannot match a substring.
        where.append(cast(t.categories, Text).contains(f'"{f.category}"', autoescape=True))
    if f.flag is not None:
        where.append(cast(t.flags, Text).contains(f'"{f.flag}"', autoescape=True))
    if f.basis is not None:
        if ":" in f.basis:
            where.append(t.basis == f.basis)
        else:  # a kind of basis: statute, consent, internal
            where.append(or_(t.basis == f.basis, t.basis.startswith(f.basis + ":", autoescape=True)))
    if f.consultation_id is not None:
        where.append(t.consultation_id == f.consultation_id)
    if f.since is not None:
        where.append(t.at >= f.since)
    if f.until is not None:
        where.append(t.at < f.until)
    return where


async def query(
    conn: AsyncConnection, f: EventFilter, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Records matching ``f``, newest first, below leaf index ``before`` (the cursor)."""
    where = _conditions(f)
    if before is not None:
        where.append(audit_events.c.leaf_index < before)
    stmt = select(audit_events).where(and_(literal(True), *where))
    stmt = stmt.order_by(audit_events.c.leaf_index.desc()).limit(limit)
    return [as_dict(r) for r in (await conn.execute(stmt)).all()]


async def iter_query(conn: AsyncConnection, f: EventFilter, batch: int = 5_000) -> AsyncIterator[list[dict[str, Any]]]:
    """All records matching ``f`` in log order, for exports."""
    stmt = select(audit_events).where(and_(literal(True), *_conditions(f))).order_by(audit_events.c.leaf_index)
    result = await conn.stream(stmt.execution_options(yield_per=batch))
    async for part in result.partitions():
        yield [as_dict(r) for r in part]


async def client_records(
    conn: AsyncConnection, client_ref: str, *, org: str | None, since: datetime, until: datetime | None, limit: int,
    merged: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One client's records in a period, oldest first (uses the client/time index), with those
    written under the references ``merged`` into it."""
    f = EventFilter(org=org, since=since, until=until)
    refs = audit_events.c.client_ref.in_((client_ref, *merged)) if merged else audit_events.c.client_ref == client_ref
    stmt = (
        select(audit_events)
        .where(and_(refs, *_conditions(f)))
        .order_by(audit_events.c.at, audit_events.c.leaf_index)
        .limit(limit)
    )
    return [as_dict(r) for r in (await conn.execute(stmt)).all()]


async def access_feed(
    conn: AsyncConnection, *, org: str | None, since: datetime, until: datetime | None
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """``(leaf_index, at, actor_id, actor_org, client_ref, action)`` of every record that touches a
    client in a period, oldest first — the input of the anomaly rules."""
    t = audit_events.c
    where = [t.client_ref.is_not(None), *_conditions(EventFilter(org=org, since=since, until=until))]
    stmt = (select(t.leaf_index, t.at, t.actor_id, t.actor_org, t.client_ref, t.action)
            .where(and_(*where)).order_by(t.at))
    result = await conn.stream(stmt.execution_options(yield_per=10_000))
    async for part in result.partitions():
        yield [(i, _utc(at), a, o, c, act) for i, at, a, o, c, act in part]


async def display_names(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, str]:
    """Names of staff as the directory last saw them (for the client access report only)."""
    if not user_ids:
        return {}
    stmt = (select(directory_users.c.user_id, directory_users.c.name)
            .where(directory_users.c.user_id.in_(list(user_ids))))
    return {u: n for u, n in (await conn.execute(stmt)).all()}


async def for_consultation(conn: AsyncConnection, consultation_id: str) -> list[dict[str, Any]]:
    query = select(audit_events).where(audit_events.c.consultation_id == consultation_id).order_by(audit_events.c.seq)
    return [as_dict(r) for r in (await conn.execute(query)).all()]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
