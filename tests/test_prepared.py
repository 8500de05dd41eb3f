"""Prepared SELECTs read exactly as the Core statement through ``as_dict``: on SQLite inside the
connection's one read transaction, on PostgreSQL straight on asyncpg, alone or inside the
transaction the connection is in."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text

from consult.storage import consultations as store
from consult.storage import migrate
from consult.storage.db import Database
from consult.storage.prepared import Prepared
from consult.storage.rows import as_dict
from consult.storage.tables import consultations, participants

AT = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)


def _consultation(cid: str, **extra: object) -> dict[str, object]:
    return {"id": cid, "topic": "other", "urgency": "today", "question_sealed": b"\x00q", "purpose": "p",
            "origin_org": "kela", "created_by": "kela.aino", "target_org": "vantaa", "status": "open",
            "created_at": AT, **extra}


@pytest.fixture
async def db(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    async for database in _filled(url):
        yield database


@pytest.fixture
async def pg_db(pg_migrated):
    async for database in _filled(pg_migrated):
        yield database


async def _filled(url):
    database = Database(url)
    await database.start()

    async def fill(conn):
        for values in [
            _consultation("c-full", question_spans=[{"kind": "phone", "start": 0, "end": 5}], pool="p1",
                          client_ref="cl_1", claimed_by="vantaa.sanna", claimed_at=AT + timedelta(seconds=1),
                          outcome_note_sealed=b"n", outcome_note_spans=[], legal_hold=True,
                          question_flagged=["health"], outcome_flagged=None),
            _consultation("c-bare"),
        ]:
            await conn.execute(insert(consultations), values)
        await conn.execute(insert(participants), [
            {"consultation_id": "c-full", "user_id": u, "org": "kela", "role": "advisor", "added_by": u,
             "added_at": AT + timedelta(minutes=i)} for i, u in enumerate(("b.user", "a.user", "c.user"))])

    await database.write(fill)
    try:
        yield database
    finally:
        await database.close()


async def _core(conn, statement, params):
    return [as_dict(r) for r in (await conn.execute(statement, params)).all()]


async def test_prepared_rows_equal_the_core_rows_on_reader_and_writer(db):
    await _same_rows(db)


async def test_prepared_rows_equal_the_core_rows_on_postgresql(pg_db):
    await _same_rows(pg_db)


async def test_a_prepared_read_on_postgresql_begins_no_transaction_but_reads_in_the_writers(pg_db):
    """A read alone is one round trip (no BEGIN and ROLLBACK around it); in a write transaction it
    reads what the transaction wrote."""
    async with pg_db.read() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert (await store.get(conn, "c-full")) is not None
        assert len(await store.list_participants(conn, "c-full")) == 3
        assert not driver.is_in_transaction()

    async def unit(conn):
        await conn.execute(text("UPDATE consultations SET status = 'closed' WHERE id = 'c-bare'"))
        driver = (await conn.get_raw_connection()).driver_connection
        return driver.is_in_transaction(), (await store.get(conn, "c-bare")).status

    assert await pg_db.write(unit) == (True, "closed")


async def _same_rows(db):
    queries = [
        (store._GET, {"id": "c-full"}), (store._GET, {"id": "c-bare"}), (store._GET, {"id": "none"}),
        (store._PARTICIPANTS, {"id": "c-full"}), (store._PARTICIPANT, {"id": "c-full", "user": "a.user"}),
        # a LIMIT from a parameter (SQLite adds an OFFSET the statement carries itself)
        (select(participants).order_by(participants.c.user_id).limit(bindparam("limit")), {"limit": 2}),
    ]
    async with db.read() as conn:
        for statement, params in queries:
            fast = await Prepared(statement).all(conn, params)
            assert fast == await _core(conn, statement, params)
            assert [type(v) for row in fast for v in row.values()] == [
                type(v) for row in await _core(conn, statement, params) for v in row.values()]
        full = await store.get(conn, "c-full")
    assert full is not None and full.legal_hold is True and full.claimed_at is not None
    assert full.claimed_at.tzinfo is UTC
    assert full.question_spans == [{"kind": "phone", "start": 0, "end": 5}] and full.outcome_flagged == ()

    async def on_writer(conn):
        return [(await Prepared(s).all(conn, p), await _core(conn, s, p)) for s, p in queries]

    for fast, core in await db.write(on_writer):
        assert fast == core


async def test_a_prepared_read_begins_the_read_transaction(db, tmp_path):
    """Reads after a prepared one see the same snapshot, not a commit made in between."""
    other = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    try:
        async with db.read() as conn:
            assert (await store.get(conn, "c-bare")).status == "open"
            other.execute("UPDATE consultations SET status = 'closed' WHERE id = 'c-bare'")
            assert (await conn.execute(text("SELECT status FROM consultations WHERE id = 'c-bare'"))).scalar() == "open"
        async with db.read() as conn:
            assert (await store.get(conn, "c-bare")).status == "closed"
    finally:
        other.close()


def test_prepared_refuses_parameters_it_would_not_pass_as_they_are():
    with pytest.raises(ValueError):
        Prepared(select(consultations).where(consultations.c.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError):
        after = bindparam("at", type_=consultations.c.created_at.type)
        Prepared(select(consultations).where(consultations.c.created_at > after))
