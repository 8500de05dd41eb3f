"""Write transactions of several instances on one PostgreSQL database never deadlock: each takes
the audit log's head row lock before anything else. Before, instance a's group commit could lock a
row (a user's directory entry, a consultation being claimed) and then wait for the head while
instance b's held the head and then wanted that row: PostgreSQL aborted one, a 500 for its caller.
Skipped, saying so, when no PostgreSQL server is reachable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.storage import audit_log
from consult.storage import directory as users
from consult.storage.db import Database

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def _touch_user(conn: Any) -> None:
    await users.upsert_user(conn, user_id="vantaa.sanna", org="vantaa", roles=["expert"], name="Sanna", at=AT)


async def test_two_instances_locking_a_row_and_the_audit_head_in_opposite_orders_both_commit(
        pg_migrated: str) -> None:
    a, b = Database(pg_migrated), Database(pg_migrated)
    watcher = create_async_engine(pg_migrated)
    await a.start()
    await b.start()
    try:
        b_holds_head = asyncio.Event()
        a_holds_row = asyncio.Event()

        async def a_is_waiting() -> bool:
            """a holds the user's row, or a waits for a lock (its transaction's first, the head)."""
            if a_holds_row.is_set():
                return True
            async with watcher.connect() as conn:
                waiting = (await conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))).scalar_one()
            return int(waiting) > 0

        async def on_b(conn: Any) -> str:
            await audit_log.reserve(conn, 0)  # the head, as an audit record takes it
            b_holds_head.set()
            while True:  # polling the server's view of a, not a barrier
                if await a_is_waiting():
                    break
                await asyncio.sleep(0.05)
            await _touch_user(conn)
            return "b"

        async def on_a(conn: Any) -> str:
            await _touch_user(conn)
            a_holds_row.set()
            await audit_log.reserve(conn, 0)
            return "a"

        first = asyncio.create_task(b.write(on_b))
        await b_holds_head.wait()
        second = asyncio.create_task(a.write(on_a))
        assert await asyncio.gather(first, second) == ["b", "a"]
    finally:
        await a.close()
        await b.close()
        await watcher.dispose()
