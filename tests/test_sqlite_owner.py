"""One owner of the SQLite file per process: nothing in the server opens the database file a second
time, so the shared lock that keeps other processes from deleting its WAL is never dropped.

POSIX record locks belong to the process, and closing *any* descriptor of a file drops all of
them (fcntl(2)). A server that lost its lock on the database file looks closed to every other
process: the next one to close its own connection checkpoints, deletes the WAL and -shm, and the
server goes on committing into an unlinked WAL — acknowledged writes nobody else sees and a
SIGKILL loses.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from consult.storage.db import ensure_sqlite_file
from tests.conftest import Api

# How the service creates and holds a new file is the subject: no copy of the migrated template.
pytestmark = pytest.mark.new_database

_EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
try:
    conn.execute("BEGIN EXCLUSIVE")
except sqlite3.OperationalError:
    print("refused")
else:
    conn.execute("ROLLBACK")
    print("exclusive")
"""

_OPEN_READ_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=10)
print(conn.execute("SELECT count(*) FROM consultations").fetchone()[0])
conn.close()
"""


def _other_process(code: str, path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _db_path(settings) -> Path:  # type: ignore[no-untyped-def]
    return Path(settings.database_url.split("///", 1)[1])


def test_ensure_sqlite_file_leaves_an_open_database_alone(tmp_path):
    """Property: creating-if-missing never opens an existing file, so this process keeps its locks."""
    path = tmp_path / "held.db"
    held = sqlite3.connect(path, isolation_level=None)
    held.execute("PRAGMA journal_mode=WAL")
    held.execute("CREATE TABLE t (x)")
    held.execute("INSERT INTO t VALUES (1)")
    assert _other_process(_EXCLUSIVE, path) == "refused"  # our shared lock keeps others out
    ensure_sqlite_file(f"sqlite+aiosqlite:///{path}")
    assert _other_process(_EXCLUSIVE, path) == "refused"  # ... and still does
    held.close()
    assert _other_process(_EXCLUSIVE, path) == "exclusive"


def test_ensure_sqlite_file_creates_owner_only(tmp_path):
    path = tmp_path / "sub" / "new.db"
    ensure_sqlite_file(f"sqlite+aiosqlite:///{path}")
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600


async def test_verify_through_the_api_keeps_the_servers_wal(api: Api, settings):
    """Property: after `GET /audit/verify`, another process opening and closing the database (the
    `sqlite3` shell, any CLI command) cannot take the server's WAL away; later acknowledged writes
    are visible to other processes."""
    path = _db_path(settings)
    await api.open_consultation()
    verified = await api.call("GET", "/api/v1/audit/verify", "kela.tuula", expect=200)
    assert verified["ok"] is True
    assert _other_process(_EXCLUSIVE, path) == "refused"  # the server still holds its lock
    assert _other_process(_OPEN_READ_CLOSE, path) == "1"
    assert Path(f"{path}-wal").exists()
    await api.open_consultation()
    assert _other_process(_OPEN_READ_CLOSE, path) == "2"


async def test_verify_through_the_api_on_postgresql(aiohttp_client, settings, pg_migrated):
    """`GET /audit/verify` runs on the server's own pool on PostgreSQL too (skipped, saying so, if absent)."""
    from dataclasses import replace

    from consult.http.app import create_app

    api = Api(await aiohttp_client(create_app(replace(settings, database_url=pg_migrated))))
    await api.open_consultation()
    verified = await api.call("GET", "/api/v1/audit/verify", "kela.tuula", expect=200)
    assert verified["ok"] is True and verified["size"] >= 1
    await api.client.close()
