"""The database: one engine for reads, one writer connection that group-commits writes.

Every write is a *unit* — an async function run on the writer connection inside its own
savepoint. Units queued while a commit is in flight are committed together in the next
transaction, so many concurrent writers share one fsync (SPEC §7: commit batching). A unit's
caller is answered only after its transaction committed, so an acknowledged write survives a
hard kill. A unit that raises is rolled back alone; the others in its batch still commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger("consult.storage")

T = TypeVar("T")
Unit = Callable[[AsyncConnection], Awaitable[T]]

MAX_BATCH = 512


@dataclass
class _Pending:
    unit: Unit[Any]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _sqlite_pragmas(engine: AsyncEngine, *, writer: bool) -> None:
    """WAL, full fsync, foreign keys; explicit BEGIN so savepoints work (SQLAlchemy's pysqlite recipe)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=10000")  # first: the others may wait for a lock
        # WAL persists in the file; switching needs an exclusive lock, so only when not yet WAL.
        cur.execute("PRAGMA journal_mode")
        if str(cur.fetchone()[0]).lower() != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten content (a destroyed data key) is zeroed, not left in free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def ensure_sqlite_file(url: str) -> None:
    """Create an SQLite database file owner-only (0600); SQLite gives its -wal and -shm the same mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def make_engine(url: str, *, writer: bool) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_file(url)
        engine = create_async_engine(url, pool_size=1 if writer else 5, max_overflow=0 if writer else 10)
        _sqlite_pragmas(engine, writer=writer)
        return engine
    return create_async_engine(url, pool_size=1 if writer else 10, max_overflow=0 if writer else 10)


class Database:
    """Reads through a pool; writes through one group-committing writer task."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.read_engine = make_engine(url, writer=False)
        self.write_engine = make_engine(url, writer=True)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.units = 0

    async def start(self) -> None:
        async with self.read_engine.connect():
            pass  # the first connection switches the file to WAL before any other opens
        self._task = asyncio.create_task(self._writer(), name="consult-db-writer")

    async def close(self) -> None:
        if self._task is not None:
            # Let queued writes finish before stopping: a graceful shutdown loses nothing.
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.write_engine.dispose()
        await self.read_engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def checkpoint(self) -> bool:
        """SQLite: copy the WAL into the database file and truncate it, so that overwritten bytes
        (a destroyed data key) leave the WAL too. Best effort: False if readers kept it busy."""
        if make_url(self.url).get_backend_name() != "sqlite":
            return True
        async with self.read_engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            busy, _log, _done = (await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        return busy == 0

    async def write(self, unit: Unit[T]) -> T:
        """Run ``unit`` in the next group commit and return its result once committed."""
        if self._task is None:
            raise RuntimeError("Database.start() was not called")
        pending = _Pending(unit)
        await self._queue.put(pending)
        return await pending.future

    async def _writer(self) -> None:
        while True:
            try:
                async with self.write_engine.connect() as conn:
                    while True:
                        batch = [await self._queue.get()]
                        while len(batch) < MAX_BATCH and not self._queue.empty():
                            batch.append(self._queue.get_nowait())
                        try:
                            await self._commit_batch(conn, batch)
                        finally:
                            for _ in batch:
                                self._queue.task_done()
            except asyncio.CancelledError:
                raise
            except Exception:  # connection lost: log, reconnect, keep serving
                log.exception("database writer connection failed; reconnecting")
                await asyncio.sleep(0.5)

    async def _commit_batch(self, conn: AsyncConnection, batch: list[_Pending]) -> None:
        results: list[tuple[_Pending, bool, Any]] = []
        alone = len(batch) == 1  # a lone unit needs no savepoint: its failure rolls back only itself
        try:
            async with conn.begin() as transaction:
                for pending in batch:
                    if pending.future.cancelled():
                        continue
                    if alone:
                        try:
                            results.append((pending, True, await pending.unit(conn)))
                        except Exception as exc:  # noqa: BLE001 - handed to the caller
                            await transaction.rollback()
                            results.append((pending, False, exc))
                        continue
                    savepoint = await conn.begin_nested()
                    try:
                        value = await pending.unit(conn)
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        await savepoint.rollback()
                        results.append((pending, False, exc))
                    else:
                        await savepoint.commit()
                        results.append((pending, True, value))
        except Exception as exc:
            log.error("group commit of %d units failed: %s", len(batch), type(exc).__name__)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self.commits += 1
        self.units += len(results)
        for pending, ok, value in results:
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)
