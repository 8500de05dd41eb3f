"""A consistent online copy of the embedded database through SQLite's backup API, and what the copy
holds (schema revision, recorded keys, audit log size, newest checkpoint), read in the same
snapshot as the pages copied."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from consult.storage import audit_log, migrate
from consult.storage import deployment as deployment_store
from consult.storage.db import Database, LoopConnection
from consult.storage.deployment import RecordedDeployment
from consult.storage.tables import audit_checkpoints, audit_events, deployment


class BackupFailed(Exception):
    """The copy did not pass SQLite's own check; it must not be kept."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the copied database holds."""

    revision: str | None
    deployment: RecordedDeployment | None
    audit_size: int
    checkpoint: dict[str, Any] | None


async def copy_sqlite(db: Database, target: Path) -> Snapshot:
    """Copy the whole database into the new file ``target`` while others keep writing.

    One read transaction covers the facts and the page copy: in WAL mode it sees one committed
    state and writers never wait for it; done in a single backup step, the copy never restarts
    when a write lands meanwhile (sqlite3_backup_step). Copying the main file alone would miss
    every transaction still in the WAL.
    """

    async def run(conn: Any) -> Snapshot:
        if not isinstance(conn, LoopConnection):
            raise ValueError("copy_sqlite needs an SQLite database")
        return await _copy(conn, conn.sync)

    async def _copy(conn: Any, sync: Any) -> Snapshot:
        revision = await migrate.revision(conn)  # the first statement opens the read transaction
        tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        has_log = {audit_events.name, audit_checkpoints.name} <= tables
        snapshot = Snapshot(
            revision=revision,
            deployment=await deployment_store.recorded(conn) if deployment.name in tables else None,
            audit_size=await audit_log.count(conn) if has_log else 0,
            checkpoint=await audit_log.latest_checkpoint(conn) if has_log else None,
        )
        copy = sqlite3.connect(target)
        try:
            driver: sqlite3.Connection = sync.connection.driver_connection
            driver.backup(copy)  # same transaction: same snapshot
            verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
        if verdict != "ok":
            raise BackupFailed(f"the copy failed SQLite's quick_check: {verdict}")
        return snapshot

    return await db.scan(run)
