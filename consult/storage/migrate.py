"""Schema migrations with Alembic, run programmatically (``consult db upgrade``), and the check
that a database is at the code's head revision before anything serves from it."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


class DatabaseInUse(Exception):
    """Another process has the SQLite database open; its schema is not changed under it."""


SQLITE_IN_USE_WAIT_MS = 2000


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Blocking: call it off the event loop.

    SQLite is migrated holding the file's exclusive lock from the first statement to the last, so
    no other process reads a half-changed schema, and a server still running its old code is
    never left on a new schema: while another process has the file open (every connection in WAL
    mode holds a shared lock on it) this raises `DatabaseInUse` and changes nothing.
    """
    from consult.storage.db import ensure_sqlite_file, sqlite_path

    ensure_sqlite_file(url)
    cfg = alembic_config(url)
    path = sqlite_path(url)
    if path is None:
        command.upgrade(cfg, revision)
        return
    with _exclusive_sqlite(path) as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


@contextmanager
def _exclusive_sqlite(path: Path) -> Iterator[Any]:
    """A connection holding the database file's exclusive lock until it closes."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    engine = create_engine(f"sqlite+pysqlite:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _lock(dbapi_conn: Any, _record: Any) -> None:
        # Before the first read: an exclusive-mode connection never releases its locks and,
        # in WAL mode, keeps the WAL index in its own memory instead of the shared -shm.
        dbapi_conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_IN_USE_WAIT_MS}")
        dbapi_conn.execute("BEGIN EXCLUSIVE")
        dbapi_conn.execute("COMMIT")

    try:
        try:
            connection = engine.connect()
        except OperationalError as exc:
            if "locked" in str(exc.orig):
                raise DatabaseInUse(f"{path} is open in another process (a running `consult serve`?); "
                                    "stop it, then run `consult db upgrade` again") from None
            raise
        try:
            yield connection
        finally:
            connection.close()
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    import asyncio

    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    async def _read() -> str | None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        finally:
            await engine.dispose()

    return asyncio.run(_read())


@functools.cache
def head() -> str:
    """The revision this code's schema is at."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def _revision_and_tables(sync: Any) -> tuple[str | None, bool]:
    from sqlalchemy import inspect

    return MigrationContext.configure(sync).get_current_revision(), bool(inspect(sync).get_table_names())


async def revision(conn: Any) -> str | None:
    """The revision recorded in the database behind ``conn`` (None when it has no schema)."""
    current: str | None = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    return current


def state(url: str) -> tuple[str | None, bool]:
    """``(revision, has_tables)`` of the database at ``url``. Blocking: call it off the event loop."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def _read() -> tuple[str | None, bool]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_revision_and_tables)
        finally:
            await engine.dispose()

    return asyncio.run(_read())


def sqlite_is_new(url: str) -> bool:
    """Whether ``url`` names an SQLite database with no file yet or no tables at all."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).exists():
        return True
    revision_now, has_tables = state(url)
    return revision_now is None and not has_tables
