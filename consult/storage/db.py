"""The database: pooled reads, and one writer connection that group-commits writes.

Every write is a *unit* — an async function run on the writer connection inside its own
savepoint. Units queued while a commit is in flight are committed together in the next
transaction, so many concurrent writers share one fsync (commit batching; bench/delivery_bench.py
measures what it buys). A unit's caller is answered only after its transaction committed, so an
acknowledged write survives a hard kill. A unit that raises is rolled back alone; the others in its batch still commit.

On PostgreSQL several instances write at once, each batch holding its rows' locks until it
commits, so two instances' batches can lock the same rows in opposite orders (a user's first
request reaching two instances together, each recording the user). PostgreSQL breaks such a
deadlock by aborting one statement (SQLSTATE 40P01; 40001 for a serialisation failure): that
unit is rolled back to its savepoint and queued again, to run after its batch committed and
released its locks, up to ``RETRIES`` times, before its caller gets the error.

Two backends behind the same interface:

- **SQLite** (the embedded default) runs statements synchronously on the event loop through
  pysqlite: a statement on a local file takes microseconds, while handing each one to a driver
  thread (as aiosqlite does) costs several thread switches per statement and dominated the CPU
  of the message path. Only what can wait — the durable ``COMMIT`` with its fsync, and taking the
  write lock (``BEGIN IMMEDIATE``) while another process holds it — runs on a dedicated thread,
  so the loop never blocks on disk or on another process's lock; a free lock is taken on the loop
  without waiting (busy timeout 0 for that statement). WAL readers never wait for the writer.
- **PostgreSQL** uses SQLAlchemy's async engine over asyncpg, which is natively non-blocking.

Services see the same ``AsyncConnection`` shape either way (``await conn.execute(...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

log = logging.getLogger("consult.storage")

T = TypeVar("T")
Unit = Callable[[AsyncConnection], Awaitable[T]]

MAX_BATCH = 512
BUSY_TIMEOUT_MS = 10_000
READ_CONNECTIONS = 8
RETRIES = 5
_LOST_RACE = frozenset({"40P01", "40001"})  # deadlock victim, serialisation failure


@dataclass
class _Pending:
    unit: Unit[Any]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    retries: int = 0


def _lost_race(exc: BaseException) -> bool:
    """The database aborted the statement to let another writer through: nothing of the unit
    stays, and running it again can succeed."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _LOST_RACE


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL (None for another backend or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def ensure_sqlite_file(url: str) -> None:
    """Create a new SQLite database file owner-only (0600); SQLite gives its -wal and -shm the same mode.

    An existing file is never opened here. Closing any descriptor of a file drops every POSIX lock
    the process holds on it, SQLite's included (fcntl(2)): a process serving from the file would
    lose the shared lock that keeps other processes from deleting its WAL under it. A file this
    call creates (``O_EXCL``) is one no connection of this process can have open yet.
    """
    path = sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _sqlite_pragmas(engine: Engine, *, writer: bool) -> None:
    """WAL, full fsync, foreign keys; explicit BEGIN so savepoints work (SQLAlchemy's pysqlite recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: the others may wait for a lock
        # WAL persists in the file; switching needs an exclusive lock, so only when not yet WAL.
        cur.execute("PRAGMA journal_mode")
        if str(cur.fetchone()[0]).lower() != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten content (a destroyed data key) is zeroed, not left in free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not writer:
            # A deferred BEGIN takes no lock and cannot wait: straight to the driver, without the
            # statement machinery (every read begins one).
            conn.connection.driver_connection.execute("BEGIN")
            return
        if conn.info.pop(_BEGUN, False):  # the writer took the lock itself (see _begin_now)
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_BEGUN = "konsulta_begun"


def _begin_now(writer: Connection) -> Any:
    """The write transaction, begun on the calling thread if the write lock is free at once;
    None if another process holds it (the caller then waits for it off the loop). A thread hop
    costs more CPU than the whole of BEGIN on a free lock, which is what the one writer of a
    process nearly always finds."""
    driver: Any = writer.connection.driver_connection
    driver.execute("PRAGMA busy_timeout=0")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return None
        raise
    finally:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    writer.info[_BEGUN] = True
    try:
        return writer.begin()
    except BaseException:
        writer.info.pop(_BEGUN, None)
        driver.execute("ROLLBACK")
        raise


# -- the SQLite backend: AsyncConnection-shaped wrappers over synchronous connections -------------


class _Stream:
    """``conn.stream(...)`` over a synchronous result: partitions, yielding to the loop between them."""

    def __init__(self, result: Any) -> None:
        self._result = result

    async def partitions(self, size: int | None = None) -> AsyncIterator[Any]:
        for part in self._result.partitions(size):
            yield part
            await asyncio.sleep(0)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for part in self.partitions():
            for row in part:
                yield row


class _Savepoint:
    """One unit's savepoint inside the batch transaction, issued straight to the driver: units
    never nest, and SQLAlchemy's own savepoint bookkeeping cost more than the unit's work."""

    NAME = "konsulta_unit"

    def __init__(self, driver: Any) -> None:
        self._driver = driver
        driver.execute(f"SAVEPOINT {self.NAME}")

    async def commit(self) -> None:
        self._driver.execute(f"RELEASE SAVEPOINT {self.NAME}")

    async def rollback(self) -> None:
        self._driver.execute(f"ROLLBACK TO SAVEPOINT {self.NAME}")
        self._driver.execute(f"RELEASE SAVEPOINT {self.NAME}")


async def asyncpg_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, in whatever transaction ``conn`` is in: the hot
    statements of the PostgreSQL path go to it straight, past SQLAlchemy's execution."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    return driver


class _DriverSavepoint:
    """`_Savepoint` on PostgreSQL, sent straight to asyncpg as a simple query: SQLAlchemy names each
    savepoint anew (``sa_savepoint_1``, ``_2``, ...), so asyncpg prepared every ``SAVEPOINT`` and
    ``RELEASE`` as a new statement, a round trip more for each and its statement cache churned."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    @classmethod
    async def begin(cls, conn: AsyncConnection) -> _DriverSavepoint:
        driver = await asyncpg_connection(conn)
        await driver.execute(f"SAVEPOINT {_Savepoint.NAME}")
        return cls(driver)

    async def commit(self) -> None:
        await self._driver.execute(f"RELEASE SAVEPOINT {_Savepoint.NAME}")

    async def rollback(self) -> None:
        await self._driver.execute(f"ROLLBACK TO SAVEPOINT {_Savepoint.NAME}; RELEASE SAVEPOINT {_Savepoint.NAME}")


class LoopConnection:
    """A synchronous SQLite connection used from the event loop with the AsyncConnection calls
    the storage modules make. Statements run inline; they touch only a local file."""

    def __init__(self, sync: Connection) -> None:
        self.sync = sync

    @property
    def dialect(self) -> Any:
        return self.sync.dialect

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync.execute(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self.sync.exec_driver_sql(statement, parameters)

    async def stream(self, statement: Any, parameters: Any = None) -> _Stream:
        return _Stream(self.sync.execute(statement, parameters))

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.scalar(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.sync, *args, **kwargs)

    async def begin_nested(self) -> _Savepoint:
        return _Savepoint(self.sync.connection.driver_connection)


class _SqliteBackend:
    def __init__(self, url: str) -> None:
        ensure_sqlite_file(url)
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        connect_args = {"check_same_thread": False}
        # The read connections stay checked out between reads (see ``read``); one more is for the checkpoint.
        self.read_engine = create_engine(sync_url, poolclass=QueuePool, pool_size=READ_CONNECTIONS + 1,
                                         max_overflow=0, connect_args=connect_args)
        self.write_engine = create_engine(sync_url, poolclass=QueuePool, pool_size=1, max_overflow=0,
                                          connect_args=connect_args)
        _sqlite_pragmas(self.read_engine, writer=False)
        _sqlite_pragmas(self.write_engine, writer=True)
        # Never more checkouts than the pool holds, so a checkout never blocks the loop.
        self._readers = asyncio.Semaphore(READ_CONNECTIONS)
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="consult-db-commit")
        self._writer: Connection | None = None
        self._idle: list[Connection] = []  # read connections between reads, at most READ_CONNECTIONS

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The first connection switches the file to WAL before any other opens.
        await loop.run_in_executor(self._disk, lambda: self.read_engine.connect().close())
        self._writer = await loop.run_in_executor(self._disk, self.write_engine.connect)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._disk.shutdown(wait=True)
        while self._idle:
            self._idle.pop().close()
        self.read_engine.dispose()
        self.write_engine.dispose()

    def _take(self) -> Connection:
        """A read connection: an idle one, or a new one while fewer than READ_CONNECTIONS exist."""
        return self._idle.pop() if self._idle else self.read_engine.connect()

    def _give_back(self, sync: Connection) -> None:
        """End the read transaction and keep the connection for the next read: building a
        SQLAlchemy connection for every read cost more than most of the reads."""
        try:
            sync.rollback()
        except Exception:
            sync.invalidate()
            sync.close()
            raise
        if sync.invalidated or sync.closed:
            sync.close()
        else:
            self._idle.append(sync)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        async with self._readers:
            sync = self._take()
            try:
                yield LoopConnection(sync)
            finally:
                self._give_back(sync)

    async def scan(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """``fn`` on a pooled read connection, in a worker thread with an event loop of its own."""
        def run(sync: Connection) -> T:
            try:
                return asyncio.run(fn(LoopConnection(sync)))
            finally:
                self._give_back(sync)  # by the thread: a cancelled caller does not end its use

        async with self._readers:
            return await asyncio.to_thread(run, self._take())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[Any, Callable[[], Awaitable[None]]]]:
        """The writer connection in a write transaction; the caller commits through ``commit``."""
        assert self._writer is not None
        writer = self._writer
        loop = asyncio.get_running_loop()
        trans = _begin_now(writer)
        if trans is None:  # another process writes: wait for its lock off the loop
            trans = await loop.run_in_executor(self._disk, writer.begin)
        committed = False

        async def commit() -> None:
            nonlocal committed
            await loop.run_in_executor(self._disk, trans.commit)  # the fsync happens here
            committed = True

        try:
            yield LoopConnection(writer), commit
        finally:
            if not committed and trans.is_active:
                trans.rollback()

    async def checkpoint(self) -> bool:
        def run() -> bool:
            with self.read_engine.connect() as conn:
                auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                busy, _log, _done = auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            return int(busy) == 0

        return await asyncio.get_running_loop().run_in_executor(self._disk, run)


# -- the PostgreSQL backend ---------------------------------------------------------------------


#: Every write transaction on PostgreSQL takes this row lock first (see ``_AsyncBackend.transaction``).
_WRITE_ORDER_LOCK = text("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
#: Set in a connection's ``info`` while its transaction holds ``_WRITE_ORDER_LOCK``: a statement
#: that needs the lock (consult/storage/events.py) need not take it again.
HOLDS_WRITE_ORDER = "konsulta_holds_write_order"
#: Set in the writer connection's ``info`` to the `Deferred` appends of its transaction.
DEFERRED = "konsulta_deferred"

Flush = Callable[[Any, list[Any]], Awaitable[Any]]


class Deferred:
    """Rows a PostgreSQL write transaction appends once, just before its ``COMMIT``: the audit
    records (consult/audit/records.py) and the live events (consult/storage/events.py) of every
    unit of a group commit, in one statement each, instead of a round trip per unit and kind.
    Both are append-only and read by nothing in the transaction that adds them. A unit rolled
    back to its savepoint takes its rows out again (`mark`, `undo`); a transaction that does not
    commit appends nothing."""

    def __init__(self) -> None:
        self._kinds: dict[str, tuple[Flush, list[Any]]] = {}

    def add(self, kind: str, flush: Flush, items: list[Any]) -> None:
        """Append ``items`` at the end; ``flush(conn, items)`` writes all of one ``kind`` at once."""
        entry = self._kinds.setdefault(kind, (flush, []))
        entry[1].extend(items)

    def mark(self) -> dict[str, int]:
        return {kind: len(items) for kind, (_flush, items) in self._kinds.items()}

    def undo(self, mark: dict[str, int]) -> None:
        """Forget what was added since ``mark``."""
        for kind, (_flush, items) in self._kinds.items():
            del items[mark.get(kind, 0):]

    async def flush(self, conn: Any) -> None:
        kinds, self._kinds = self._kinds, {}
        for flush, items in kinds.values():  # in the order each kind was first added
            if items:
                await flush(conn, items)


def deferred(conn: Any) -> Deferred | None:
    """The appends ``conn``'s write transaction defers to its end, if it defers them (the
    PostgreSQL writer); None where they are written at once (SQLite, a connection of its own)."""
    info = conn.info if isinstance(conn, AsyncConnection) else None
    found = None if info is None else info.get(DEFERRED)
    return found if isinstance(found, Deferred) else None


class _AsyncBackend:
    def __init__(self, url: str) -> None:
        self.read_engine: AsyncEngine = create_async_engine(url, pool_size=20, max_overflow=0)
        self.write_engine: AsyncEngine = create_async_engine(url, pool_size=1, max_overflow=0)
        self._writer: AsyncConnection | None = None

    async def start(self) -> None:
        self._writer = await self.write_engine.connect()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.write_engine.dispose()
        await self.read_engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def scan(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        async with self.read_engine.connect() as conn:  # asyncpg never holds the loop
            return await fn(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[Any, Callable[[], Awaitable[None]]]]:
        """The writer connection in a write transaction that holds the audit log's head row lock
        from its start. Nearly every write takes that lock (audit records, live events), and a
        group commit runs several units in one transaction: taking it after a unit had locked some
        other row (a consultation being claimed, a user's directory row) deadlocked against another
        instance whose transaction held the head and then wanted that row. One lock first, always,
        orders the write transactions of every instance."""
        assert self._writer is not None
        writer = self._writer
        trans = await writer.begin()
        if writer.dialect.name == "postgresql":
            await writer.execute(_WRITE_ORDER_LOCK)
            writer.info[HOLDS_WRITE_ORDER] = True
        appends = writer.info[DEFERRED] = Deferred()
        committed = False

        async def commit() -> None:
            nonlocal committed
            await appends.flush(writer)
            await trans.commit()
            committed = True

        try:
            yield writer, commit
        finally:
            writer.info.pop(HOLDS_WRITE_ORDER, None)
            writer.info.pop(DEFERRED, None)
            if not committed and trans.is_active:
                await trans.rollback()

    async def checkpoint(self) -> bool:
        return True


# -- the database ---------------------------------------------------------------------------------


class Database:
    """Reads through a pool; writes through one group-committing writer task."""

    def __init__(self, url: str) -> None:
        self.url = url
        sqlite = make_url(url).get_backend_name() == "sqlite"
        self._backend: _SqliteBackend | _AsyncBackend = _SqliteBackend(url) if sqlite else _AsyncBackend(url)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.units = 0

    @property
    def is_sqlite(self) -> bool:
        """The embedded backend: one process writes, so what it commits it can hand on itself."""
        return isinstance(self._backend, _SqliteBackend)

    def observe(self, on_statement: Callable[[float], None]) -> None:
        """Report the time of every statement, in seconds, to ``on_statement`` (for metrics)."""
        engines = [self._backend.read_engine, self._backend.write_engine]
        for engine in engines:
            sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

            def before(conn: Any, *_args: Any) -> None:
                conn.info.setdefault("consult_started", []).append(time.perf_counter())

            def after(conn: Any, *_args: Any) -> None:
                started = conn.info.get("consult_started")
                if started:
                    on_statement(time.perf_counter() - started.pop())

            event.listen(sync, "before_cursor_execute", before)
            event.listen(sync, "after_cursor_execute", after)

    async def start(self) -> None:
        await self._backend.start()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._writer(), name="consult-db-writer")

    async def close(self) -> None:
        if self._task is not None and self._queue is not None:
            # Let queued writes finish before stopping: a graceful shutdown loses nothing.
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._backend.close()

    def read(self) -> Any:
        """``async with db.read() as conn``: a connection for reading, in its own transaction."""
        return self._backend.read()

    async def scan(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """``await fn(conn)`` on one of this database's own read connections, for a read too long to
        run between requests (the whole audit log). SQLite runs it in a worker thread with an event
        loop of its own, since its statements run synchronously; nothing opens the file again."""
        return await self._backend.scan(fn)

    async def checkpoint(self) -> bool:
        """SQLite: copy the WAL into the database file and truncate it, so that overwritten bytes
        (a destroyed data key) leave the WAL too. Best effort: False if readers kept it busy."""
        return await self._backend.checkpoint()

    async def write(self, unit: Unit[T]) -> T:
        """Run ``unit`` in the next group commit and return its result once committed."""
        if self._task is None or self._queue is None:
            raise RuntimeError("Database.start() was not called")
        pending = _Pending(unit)
        await self._queue.put(pending)
        result: T = await pending.future
        return result

    async def _writer(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the connection failed; the batch's callers have their error
                log.exception("database writer failed a batch")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        results: list[tuple[_Pending, bool, Any]] = []
        again: list[_Pending] = []
        alone = len(batch) == 1  # a lone unit needs no savepoint: its failure rolls back only itself
        try:
            async with self._backend.transaction() as (conn, commit):
                appends = deferred(conn)
                for pending in batch:
                    if pending.future.cancelled():
                        continue
                    if alone:
                        try:
                            results.append((pending, True, await pending.unit(conn)))
                        except Exception as exc:  # handed to the caller, or run again
                            self._failed(pending, exc, results, again)
                        continue
                    mark = None if appends is None else appends.mark()
                    savepoint = (await _DriverSavepoint.begin(conn) if isinstance(conn, AsyncConnection)
                                 and conn.dialect.driver == "asyncpg" else await conn.begin_nested())
                    try:
                        value = await pending.unit(conn)
                    except Exception as exc:  # handed to the caller, or run again
                        await savepoint.rollback()
                        if appends is not None and mark is not None:
                            appends.undo(mark)
                        self._failed(pending, exc, results, again)
                    else:
                        await savepoint.commit()
                        results.append((pending, True, value))
                if any(ok for _, ok, _ in results):
                    await commit()
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
        assert self._queue is not None
        for pending in again:  # after the commit: the locks this batch held are released
            self._queue.put_nowait(pending)

    @staticmethod
    def _failed(pending: _Pending, exc: Exception, results: list[tuple[_Pending, bool, Any]],
                again: list[_Pending]) -> None:
        if _lost_race(exc) and pending.retries < RETRIES:
            pending.retries += 1
            log.info("a unit lost a lock race to another writer; it runs again (retry %d)", pending.retries)
            again.append(pending)
        else:
            results.append((pending, False, exc))


__all__ = ["Database", "Deferred", "LoopConnection", "asyncpg_connection", "deferred", "ensure_sqlite_file",
           "sqlite_path"]


