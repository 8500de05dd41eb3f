"""A data key is created once per owner, and only a stored key is ever used: two instances that
create the client registry's key at the same moment end up with the one that was committed (the
second neither fails nor keeps its own), and a key whose transaction rolled back is not used
afterwards. The race runs on PostgreSQL (skipped, saying so, without a server); the rollback on
the SQLite test database."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.config import Settings
from consult.crypto import FileKeyring
from consult.services.vault import REGISTRY, Vault

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _vault(key_file: Path) -> Vault:
    keyring = FileKeyring.open(key_file, create=True)
    return Vault(keyring, keyring)


async def test_two_instances_creating_the_registry_key_at_once_both_use_the_committed_one(
        pg_migrated: str, tmp_path: Path) -> None:
    a, b = _vault(tmp_path / "keys.json"), _vault(tmp_path / "keys.json")  # two processes, one key file
    engine = create_async_engine(pg_migrated)
    try:
        async with engine.connect() as first, engine.connect() as second, engine.connect() as watcher:
            pid = (await second.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await second.commit()
            await first.begin()
            key_a = await a.key(first, REGISTRY, create_at=AT)  # stored, not yet committed
            sealed = a.seal(key_a, "clients", "cl_1", "hetu", "synthetic")

            async def create_on_b() -> bytes:
                async with second.begin():
                    key_b = await b.key(second, REGISTRY, create_at=AT)
                    return b.seal(key_b, "clients", "cl_2", "hetu", "synthetic")

            on_b = asyncio.create_task(create_on_b())
            # b's insert waits for a's transaction (a row lock): commit a once b is waiting on it.
            while not on_b.done():
                waiting = (await watcher.execute(text(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})).scalar_one()
                await watcher.rollback()
                if waiting == "Lock":
                    break
                await asyncio.sleep(0.05)  # polling the server's view of b, not a barrier
            await first.commit()
            sealed_b = await on_b
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM data_keys WHERE owner = :o"),
                                        {"o": REGISTRY})).scalar_one()
            fresh = _vault(tmp_path / "keys.json")
            stored = await fresh.key(conn, REGISTRY)
        assert count == 1
        # What either instance sealed opens with the one stored key, in a process that never cached it.
        assert fresh.open(stored, "clients", "cl_1", "hetu", sealed) == "synthetic"
        assert fresh.open(stored, "clients", "cl_2", "hetu", sealed_b) == "synthetic"
    finally:
        await engine.dispose()


async def test_a_registry_key_whose_transaction_rolled_back_is_not_used_again(settings: Settings) -> None:
    vault = _vault(settings.key_file)
    engine = create_async_engine(settings.database_url)
    try:
        with contextlib.suppress(RuntimeError):
            async with engine.begin() as conn:
                await vault.key(conn, REGISTRY, create_at=AT)
                await vault.key(conn, REGISTRY)  # a second registration in the same group commit
                raise RuntimeError("the group commit failed after the key was made")
        async with engine.begin() as conn:
            key = await vault.key(conn, REGISTRY, create_at=AT)
            sealed = vault.seal(key, "clients", "cl_1", "hetu", "synthetic")
        async with engine.connect() as conn:
            fresh = _vault(settings.key_file)
            stored = await fresh.key(conn, REGISTRY)
        assert fresh.open(stored, "clients", "cl_1", "hetu", sealed) == "synthetic"
    finally:
        await engine.dispose()

