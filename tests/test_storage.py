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


async def test_writers_of_two_instances_that_deadlock_both_commit(pg_migrated):
    """Two instances' writers lock the same two rows in opposite orders (as when a user's first
    requests reach two instances at once and each records the user): PostgreSQL aborts one as the
    deadlock victim, and that unit runs again once the other has committed — both callers get
    their result, none an error, and each row carries both changes exactly once."""
    a, b = Database(pg_migrated), Database(pg_migrated)
    await a.start()
    await b.start()
    try:
        async def seed(conn):
            for user in ("u1", "u2"):
                await conn.execute(text("INSERT INTO directory_users VALUES (:u, 'kela', '[]', 'N', now())"),
                                   {"u": user})
        await a.write(seed)
        a_holds, b_holds = asyncio.Event(), asyncio.Event()

        def unit(first, second, mark, mine, theirs):
            async def run(conn):
                await conn.execute(text("UPDATE directory_users SET name = name || :m WHERE user_id = :u"),
                                   {"m": mark, "u": first})
                mine.set()
                await theirs.wait()
                await conn.execute(text("UPDATE directory_users SET name = name || :m WHERE user_id = :u"),
                                   {"m": mark, "u": second})
                return mark
            return run

        results = await asyncio.gather(a.write(unit("u1", "u2", "a", a_holds, b_holds)),
                                       b.write(unit("u2", "u1", "b", b_holds, a_holds)), return_exceptions=True)
        assert results == ["a", "b"]
        async with a.read() as conn:
            names = dict((await conn.execute(text("SELECT user_id, name FROM directory_users"))).all())
        assert sorted(names["u1"][1:]) == ["a", "b"] and sorted(names["u2"][1:]) == ["a", "b"]
    finally:
        await a.close()
        await b.close()
