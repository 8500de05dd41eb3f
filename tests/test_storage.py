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
