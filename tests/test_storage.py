"""Storage: migrations match the schema; group commit isolates failing units; PostgreSQL when present."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import migrate
from consult.storage.db import Database
from consult.storage.tables import described, metadata

PG_URL = os.environ.get("CONSULT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def _schema_diff(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            # Full-text structures (kb_search*) are made by the migration, outside the metadata.
            return await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"include_name": described}), metadata))
    finally:
        await engine.dispose()


async def test_migrations_create_exactly_the_schema(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    assert await _schema_diff(url) == []


async def test_group_commit_isolates_a_failing_unit(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    try:
        async def good(conn, i=0):
            await conn.execute(text("INSERT INTO directory_users VALUES (:u, 'kela', '[]', 'N', CURRENT_TIMESTAMP)"),
                               {"u": f"c{i}"})
            return i

        async def bad(conn):
            await conn.execute(text("INSERT INTO directory_users VALUES ('x', 'kela', '[]', 'N', CURRENT_TIMESTAMP)"))
            raise ValueError("boom")

        results = await asyncio.gather(*[db.write(lambda c, i=i: good(c, i)) for i in range(20)], db.write(bad),
                                       return_exceptions=True)
        assert results[:20] == list(range(20))
        assert isinstance(results[20], ValueError)
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT user_id FROM directory_users"))).scalars().all()
        assert sorted(rows) == sorted(f"c{i}" for i in range(20))
        assert db.commits < 21  # batched, not one transaction each
    finally:
        await db.close()


async def _pg_available() -> bool:
    try:
        engine = create_async_engine(PG_URL)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        await engine.dispose()
        return True
    except Exception:
        return False


async def test_sqlite_read_connections_are_reused_and_see_each_commit(tmp_path):
    """A read connection is kept between reads (no new SQLAlchemy connection per read), and
    keeping it never keeps its snapshot: each read sees everything committed before it began."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    count = text("SELECT count(*) FROM directory_users")
    try:
        seen, connections = [], []
        for i in range(3):
            async with db.read() as conn:
                connections.append(conn.sync)
                seen.append((await conn.execute(count)).scalar_one())
            await db.write(lambda c, i=i: c.execute(text(
                "INSERT INTO directory_users VALUES (:u, 'kela', '[]', 'N', CURRENT_TIMESTAMP)"), {"u": f"r{i}"}))
        assert seen == [0, 1, 2]
        assert connections[0] is connections[1] is connections[2]

        async def scan(conn):
            return (await conn.execute(count)).scalar_one()

        # Every read connection busy at once, a long scan among them, and a checkpoint beside them.
        gate = asyncio.Event()

        async def hold():
            async with db.read() as conn:
                await gate.wait()
                return (await conn.execute(count)).scalar_one()

        holders = [asyncio.create_task(hold()) for _ in range(7)]
        scanned = asyncio.create_task(db.scan(scan))
        assert await db.checkpoint() in (True, False)
        gate.set()
        assert await asyncio.gather(*holders) == [3] * 7
        assert await scanned == 3
    finally:
        await db.close()


async def test_sqlite_message_insert_stores_what_the_core_statement_stores(tmp_path):
    """The message path writes SQLite rows without SQLAlchemy's statement machinery: the rows are
    byte for byte those of the Core insert, and read back the same through the store."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    await _message_insert_stores_what_the_core_statement_stores(url)


async def test_postgresql_message_insert_stores_what_the_core_statement_stores(pg_migrated):
    """The same on PostgreSQL, where the message path writes through asyncpg."""
    await _message_insert_stores_what_the_core_statement_stores(pg_migrated)


async def _message_insert_stores_what_the_core_statement_stores(url):
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import insert

    from consult.storage import messages as store
    from consult.storage.tables import message_items, messages

    db = Database(url)
    await db.start()
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    spans = [{"kind": "phone", "start": 1, "end": 9, "name": "ä"}]
    variants = [
        store.SealedMessage(id="m-full", consultation_id="c1", author_id="u", author_org="kela", author_role="advisor",
                            author_name="Ä", text_sealed=b"\x00t", text_spans=spans,
                            flagged_categories=("health",), created_at=at.astimezone(timezone(timedelta(hours=2))),
                            sent_policy_sealed=b"\x01p",
                            items=(store.SealedItem(0, "application.status", b"v0", spans, "k1", None, "c", b"j", b"w"),
                                   store.SealedItem(1, "income", b"v1"))),
        store.SealedMessage(id="m-bare", consultation_id="c1", author_id="u", author_org="kela", author_role="advisor",
                            author_name="A", text_sealed=b"t", text_spans=None, flagged_categories=(), created_at=at,
                            items=()),
    ]

    def core_values(m):
        row = {"id": m.id + "-core", "consultation_id": m.consultation_id, "author_id": m.author_id,
               "author_org": m.author_org, "author_role": m.author_role, "author_name": m.author_name,
               "text_sealed": m.text_sealed, "text_spans": m.text_spans,
               "flagged_categories": list(m.flagged_categories) or None, "created_at": at,
               "sent_policy_sealed": m.sent_policy_sealed}
        items = [{"message_id": m.id + "-core", "idx": i.idx, "category": i.category, "value_sealed": i.value_sealed,
                  "value_spans": i.value_spans, "consent_id": i.consent_id, "attachment_id": i.attachment_id,
                  "referral_condition": i.referral_condition,
                  "referral_justification_sealed": i.referral_justification_sealed,
                  "referral_why_no_consent_sealed": i.referral_why_no_consent_sealed} for i in m.items]
        return row, items

    # Every column is written: a column added to the table and not to the driver's insert fails here.
    assert set(store._MESSAGE_COLUMNS) == {c.name for c in messages.columns} - {"seq"}
    assert set(store._ITEM_COLUMNS) == {c.name for c in message_items.columns}

    async def unit(conn):
        await conn.execute(text("INSERT INTO consultations (id, topic, urgency, question_sealed, purpose, origin_org, "
                                "created_by, target_org, status, created_at) VALUES ('c1', 'other', 'today', :q, "
                                "'p', 'kela', 'u', 'vantaa', 'open', :at)"), {"q": b"\x00", "at": at})
        seqs = []
        for m in variants:
            seqs.append(await store.insert_message(conn, m))
            row, items = core_values(m)
            await conn.execute(insert(messages), row)
            if items:
                await conn.execute(insert(message_items), items)
        return seqs

    try:
        seqs = await db.write(unit)
        assert seqs == [1, 3]
        async with db.read() as conn:
            for m in variants:
                # As the database holds them: JSON as its text, not as SQLAlchemy's type reads it back.
                as_text = "CAST({} AS TEXT)" if db.is_sqlite else "{}::text"
                row = text(f"SELECT consultation_id, author_id, author_org, author_role, author_name, text_sealed, "
                           f"{as_text.format('text_spans')}, {as_text.format('flagged_categories')}, created_at, "
                           f"sent_policy_sealed FROM messages WHERE id = :id")
                fast = (await conn.execute(row, {"id": m.id})).one()
                core = (await conn.execute(row, {"id": m.id + "-core"})).one()
                assert tuple(fast) == tuple(core)
                items = text(f"SELECT idx, category, value_sealed, {as_text.format('value_spans')}, consent_id, "
                             "attachment_id, referral_condition, referral_justification_sealed, "
                             "referral_why_no_consent_sealed FROM message_items WHERE message_id = :id ORDER BY idx")
                fast_items = [tuple(r) for r in (await conn.execute(items, {"id": m.id})).all()]
                core_items = [tuple(r) for r in (await conn.execute(items, {"id": m.id + "-core"})).all()]
                assert fast_items == core_items and len(fast_items) == len(m.items)
            stored = await store.list_messages(conn, "c1", after_seq=None, limit=10)
        back = {r.id: r for r in stored}
        for m in variants:
            assert back[m.id].items == m.items
            assert back[m.id].text_spans == m.text_spans and back[m.id].created_at == at
            assert back[m.id].flagged_categories == m.flagged_categories
    finally:
        await db.close()


async def test_sqlite_writer_begins_on_the_loop_only_when_the_lock_is_free(tmp_path):
    """The writer takes the write lock on the loop only when it is free at once; while another
    connection (another process) holds it, the attempt gives way at once, the busy timeout is
    restored, and the write waits off the loop and commits once the lock is released."""
    import sqlite3

    from consult.storage.db import BUSY_TIMEOUT_MS, _begin_now

    path = tmp_path / "w.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    insert = "INSERT INTO directory_users VALUES ('{}', 'kela', '[]', 'N', CURRENT_TIMESTAMP)"
    try:
        writer = db._backend._writer
        driver = writer.connection.driver_connection
        other.execute("BEGIN IMMEDIATE")
        other.execute(insert.format("other"))
        assert _begin_now(writer) is None
        assert driver.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert driver.in_transaction is False

        queued = asyncio.create_task(db.write(lambda c: c.execute(text(insert.format("mine")))))
        async with db.read() as conn:  # the loop keeps serving while the write waits for the lock
            assert (await conn.execute(text("SELECT count(*) FROM directory_users"))).scalar_one() == 0
        other.execute("COMMIT")
        await queued
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT user_id FROM directory_users"))).scalars().all()
        assert sorted(rows) == ["mine", "other"]

        trans = _begin_now(writer)  # free now: begun here, one transaction, no second BEGIN
        assert trans is not None and driver.in_transaction
        writer.execute(text(insert.format("again")))
        trans.commit()
        assert not driver.in_transaction
        assert other.execute("SELECT count(*) FROM directory_users").fetchone()[0] == 3
    finally:
        other.close()
        await db.close()


async def test_postgresql_migrations_and_writer():
    """The scale-out store: the same migrations and writer on PostgreSQL (skipped, saying so, if absent)."""
    if not await _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    name = f"konsulta_test_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _schema_diff(url) == []
        db = Database(url)
        await db.start()
        try:
            async def unit(conn):
                await conn.execute(text(
                    "INSERT INTO directory_users VALUES ('u1', 'kela', '[]', 'U', now())"))
                return 1
            assert await db.write(unit) == 1
        finally:
            await db.close()
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_a_unit_aborted_as_a_deadlock_victim_runs_again_and_commits(pg_migrated):
    """A unit that PostgreSQL aborts as the deadlock victim (SQLSTATE 40P01) runs again once its
    batch committed: its caller gets the result, not an error, and its change is stored once.
    Instances' writers cannot deadlock one another (each takes the write-order lock first;
    tests/scale/test_write_order_postgres.py), so the other party here is a plain connection
    that locks the same two rows in the opposite order."""
    db = Database(pg_migrated)
    await db.start()
    other = create_async_engine(pg_migrated)
    try:
        async def seed(conn):
            for user in ("u1", "u2"):
                await conn.execute(text("INSERT INTO directory_users VALUES (:u, 'kela', '[]', 'N', now())"),
                                   {"u": user})
        await db.write(seed)
        unit_holds, other_holds = asyncio.Event(), asyncio.Event()
        runs = 0

        async def unit(conn):
            nonlocal runs
            runs += 1
            await conn.execute(text("UPDATE directory_users SET name = name || 'a' WHERE user_id = 'u1'"))
            if runs == 1:
                unit_holds.set()
                await other_holds.wait()
            # Waits for the other's lock first, so this backend runs the deadlock check and is the victim.
            await conn.execute(text("UPDATE directory_users SET name = name || 'a' WHERE user_id = 'u2'"))
            return "a"

        async def outside():
            async with other.begin() as conn:
                await conn.execute(text("UPDATE directory_users SET name = name || 'b' WHERE user_id = 'u2'"))
                await unit_holds.wait()
                other_holds.set()
                await conn.execute(text("SELECT pg_sleep(0.2)"))  # the unit is now waiting on u2
                await conn.execute(text("UPDATE directory_users SET name = name || 'b' WHERE user_id = 'u1'"))

        result, _ = await asyncio.gather(db.write(unit), outside())
        assert result == "a" and runs == 2
        async with db.read() as conn:
            names = dict((await conn.execute(text("SELECT user_id, name FROM directory_users"))).all())
        assert sorted(names["u1"][1:]) == ["a", "b"] and sorted(names["u2"][1:]) == ["a", "b"]
    finally:
        await other.dispose()
        await db.close()


async def test_a_group_commit_appends_the_audit_records_and_live_events_of_its_units_at_its_end(pg_migrated):
    """On PostgreSQL the units of one group commit write their audit records and live events at the
    transaction's end, one statement per kind for all of them (not per unit and kind), under the
    write-order lock taken once at BEGIN; a unit rolled back in the batch leaves neither; the leaf
    indices stay contiguous and every event id is announced by one notification naming the newest."""
    from datetime import UTC, datetime

    import asyncpg
    from sqlalchemy import event

    from consult.audit.records import AuditRecord, record
    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.storage import audit_log
    from consult.storage import events as live_store

    actor = Principal("kela.aino", "kela", frozenset({"advisor"}), "Aino")
    ctx = RequestContext("req-1", None)
    db = Database(pg_migrated)
    await db.start()
    listener = await asyncpg.connect(pg_migrated.replace("postgresql+asyncpg://", "postgresql://"))
    notified: list[str] = []
    await listener.add_listener(live_store.CHANNEL, lambda *args: notified.append(args[-1]))
    statements: list[list[str]] = []
    try:
        # What the writer sends: through SQLAlchemy, and straight to asyncpg.
        event.listen(db._backend.write_engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a: statements.append(statement.split()[0:3]))
        assert db._backend._writer is not None
        driver = (await db._backend._writer.get_raw_connection()).driver_connection
        driver.add_query_logger(lambda logged: statements.append(logged.query.split()[0:3]))
        now = datetime.now(UTC)

        async def act(conn: object, i: int, fails: bool = False) -> list[int]:
            new = [live_store.NewEvent(f"expert{k}", f"c{i}", uuid.uuid4().hex, now, b"sealed") for k in range(5)]
            ids = await live_store.append(conn, new)
            await record(conn, actor, ctx, now, [AuditRecord(action="test.act", consultation_id=f"c{i}")] * 2)
            if fails and i == 3:
                raise RuntimeError("the unit fails after writing")
            if fails:  # the database refuses a statement: the transaction goes on from the savepoint
                await conn.execute(text("SELECT 1 / 0"))
            return ids

        commits = db.commits
        results = await asyncio.gather(*(db.write(lambda conn, i=i: act(conn, i, fails=i in (3, 5)))
                                         for i in range(8)), return_exceptions=True)
        assert db.commits == commits + 1  # one group commit
        assert isinstance(results[3], RuntimeError) and "division by zero" in str(results[5])
        assert all(r == [] for k, r in enumerate(results) if k not in (3, 5))  # ids are not known inside the unit
        count = lambda *head: sum(1 for s in statements if s[:len(head)] == list(head))  # noqa: E731
        live = count("WITH", "new", "AS") + count("INSERT", "INTO", "live_events")
        notify = count("WITH", "new", "AS") + count("SELECT", "pg_notify('konsulta_events',")
        assert live == 1 and notify == 1, statements  # one statement inserts and announces them
        assert count("INSERT", "INTO", "audit_events") == 1, statements
        assert count("UPDATE", "audit_head") == 1, statements
        assert count("SELECT", "1", "FROM") == 1, statements  # the write-order lock, at BEGIN only
        # a unit's savepoint: one name, a simple query (SQLAlchemy named each anew and prepared it)
        assert count("SAVEPOINT", "konsulta_unit") == 8 and count("RELEASE", "SAVEPOINT", "konsulta_unit") == 6
        assert not [st for st in statements if st[0] == "SAVEPOINT" and st[1:2] != ["konsulta_unit"]], statements
        async with db.read() as conn:
            kept = await live_store.after(conn, 0)
            rows = []
            async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
                rows += part
        assert sorted({e["consultation_id"] for e in kept}) == [f"c{i}" for i in range(8) if i not in (3, 5)]
        assert len(kept) == 30
        assert sorted(r["leaf_index"] for r in rows) == list(range(12))
        assert {"c3", "c5"}.isdisjoint({r["consultation_id"] for r in rows})
        for _ in range(100):
            if notified:
                break
            await asyncio.sleep(0.02)
        assert notified == [str(max(e["id"] for e in kept))]
    finally:
        await listener.close()
        await db.close()


async def test_sqlite_live_events_of_one_act_get_their_ids_in_the_order_given(tmp_path):
    """On SQLite an act's live events are inserted a few hundred rows per statement; each event's
    id is its own row's, and the ids ascend in the order the events were given."""
    from datetime import UTC, datetime, timedelta

    from consult.storage import events as live_store

    url = f"sqlite+aiosqlite:///{tmp_path / 'e.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    try:
        now = datetime.now(UTC)
        first = [live_store.NewEvent("warm", "c0", uuid.uuid4().hex, now, b"w")]
        new = [live_store.NewEvent(f"expert{i}", "c1", uuid.uuid4().hex, now + timedelta(microseconds=i % 3),
                                   bytes([i % 256])) for i in range(450)]
        await db.write(lambda conn: live_store.append(conn, first))
        ids = await db.write(lambda conn: live_store.append(conn, new))
        assert ids == sorted(ids) and len(set(ids)) == 450
        async with db.read() as conn:
            kept = {e["id"]: e for e in await live_store.after(conn, 0, limit=1000)}
        for event, event_id in zip(new, ids, strict=True):
            row = kept[event_id]
            assert (row["user_id"], row["ref"], bytes(row["payload_sealed"]), row["created_at"]) == (
                event.user_id, event.ref, event.payload_sealed, event.created_at)
    finally:
        await db.close()
