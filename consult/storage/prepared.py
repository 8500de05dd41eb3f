"""Built-once SELECTs of the message path, run straight on the driver's connection.

SQLAlchemy's statement execution (cache lookup, parameter construction, the result machinery)
cost several times the SQLite work of a one-row read by primary key, and the message path
reads the consultation and its participants for every message. A `Prepared` statement is the
same Core ``select``, compiled once for SQLite and once for PostgreSQL's asyncpg; its rows are
converted by the column types' own result processors, so a row reads exactly as through
``conn.execute`` and `as_dict` (naive timestamps made UTC).

On SQLite the read runs inside the connection's transaction, begun as SQLAlchemy would begin it.
On PostgreSQL it goes to the asyncpg connection (with the type codecs SQLAlchemy set on it), in
the connection's transaction if one was begun, and otherwise alone: at PostgreSQL's READ
COMMITTED level every statement reads its own snapshot either way, so beginning a transaction
for a read would only add the ``BEGIN`` and ``ROLLBACK`` round trips. Other drivers run the Core
statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.db import asyncpg_connection
from consult.storage.rows import as_dict, as_utc

_DIALECT = sqlite.dialect()  # pysqlite: qmark parameters
_PG_DIALECT = asyncpg.dialect()  # type: ignore[no-untyped-call]  # $1, $2, ...


class _Compiled:
    """``statement`` compiled once for one dialect: its SQL, its parameters in the driver's order
    with the values the statement carries itself (SQLite's ``OFFSET 0`` beside a ``LIMIT``), and
    each selected column's result processor."""

    def __init__(self, statement: Select[Any], dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ())
        self.fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        for name in self.order:
            bind = compiled.binds[name]
            if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"parameter {name!r}: only plain values, passed to the driver as they are")
        processors: list[Callable[[Any], Any] | None] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.selected_columns]
        self.processors = tuple(processors)

    def parameters(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        fixed = self.fixed
        return tuple(params[n] if n in params else fixed[n] for n in self.order)


class Prepared:
    """``statement`` (a SELECT with named ``bindparam``s, no expanding ones) for repeated reads."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._names = tuple(str(c.key) for c in statement.selected_columns)
        self._sqlite = _Compiled(statement, _DIALECT)
        self._pg = _Compiled(statement, _PG_DIALECT)
        self._pg_plain = all(p is None for p in self._pg.processors)

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows as `as_dict` gives them."""
        if conn.dialect.name == "sqlite":
            return await conn.run_sync(self._sqlite_rows, params)
        if conn.dialect.driver == "asyncpg" and self._pg_plain:
            return await self._asyncpg_rows(conn, params)
        return [as_dict(r) for r in (await conn.execute(self.statement, dict(params))).all()]

    async def first(self, conn: AsyncConnection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self.all(conn, params)
        return rows[0] if rows else None

    async def _asyncpg_rows(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        driver = await asyncpg_connection(conn)
        records = await driver.fetch(self._pg.sql, *self._pg.parameters(params))
        names = self._names
        return [{name: as_utc(value) if isinstance(value, datetime) else value
                 for name, value in zip(names, record, strict=True)} for record in records]

    def _sqlite_rows(self, sync: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not sync.in_transaction():
            sync.begin()  # as the first execute would: every read of a unit sees one snapshot
        cursor = sync.connection.driver_connection.execute(self._sqlite.sql, self._sqlite.parameters(params))
        names, processors = self._names, self._sqlite.processors
        rows = []
        for raw in cursor.fetchall():
            row = {}
            for name, process, value in zip(names, processors, raw, strict=True):
                if process is not None and value is not None:
                    value = process(value)
                    if isinstance(value, datetime):
                        value = as_utc(value)
                row[name] = value
            rows.append(row)
        return rows
