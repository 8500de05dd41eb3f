"""Key management (SPEC C4): status, rotation of the key-encryption key without downtime, and
retiring and removing old versions once nothing uses them.

Rotation adds a new KEK version (new data keys are wrapped under it at once, because the running
service re-reads the key file when it changes), then rewraps every existing data key in batches.
Data keys themselves do not change, so no content is re-encrypted and no reader is disturbed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.crypto import Envelope, FileKeyring, WrappedKey
from consult.model import Clock, Principal
from consult.model.context import SYSTEM_CONTEXT
from consult.storage import keys as key_store
from consult.storage import retention as retention_store
from consult.storage.db import Database

OPERATOR = Principal(user_id="system:keys", org="system", roles=frozenset(), name="Key management")
BATCH = 500
SETTLE_SECONDS = 0.5


class KeyInUse(Exception):
    """A key version still wraps data keys."""


class KeyManagement:
    def __init__(self, db: Database, keyring: FileKeyring, clock: Clock) -> None:
        self.db = db
        self.keyring = keyring
        self.envelope = Envelope(keyring)
        self.clock = clock

    async def status(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            counts = await retention_store.key_versions(conn)
        versions = self.keyring.versions()
        return {
            "current": self.keyring.current_version(),
            "versions": [
                {"version": v, "status": status, "data_keys": counts.get(v, 0)} for v, status in sorted(versions.items())
            ],
            "destroyed_data_keys": counts.get(None, 0),
        }

    async def rotate(self) -> dict[str, Any]:
        started = time.perf_counter()
        new = self.keyring.add_version()
        rewrapped = 0
        confirmed = False
        while True:
            async with self.db.read() as conn:
                rows = await retention_store.keys_not_at(conn, new, BATCH)
            if not rows:
                if confirmed:
                    break
                # A running service may have wrapped a key under the old version just before it
                # saw the new one; look once more after its in-flight writes have committed.
                confirmed = True
                await asyncio.sleep(SETTLE_SECONDS)
                continue
            confirmed = False
            updates = [
                (r["owner"], r["kek_version"],
                 self.envelope.rewrap(r["owner"], WrappedKey(r["kek_version"], bytes(r["wrapped"]))))
                for r in rows
            ]

            async def unit(conn: AsyncConnection, updates: list[tuple[str, int, WrappedKey]] = updates) -> int:
                done = 0
                for owner, old, wrapped in updates:
                    done += await key_store.compare_and_rewrap(conn, owner, old, wrapped.version, wrapped.blob)
                return done

            rewrapped += await self.db.write(unit)
        await self._audit("keys.rotate", f"kek:v{new}")
        return {"new_version": new, "rewrapped": rewrapped, "seconds": round(time.perf_counter() - started, 3)}

    async def retire(self, version: int) -> None:
        await self._unused(version)
        self.keyring.retire(version)
        await self._audit("keys.retire", f"kek:v{version}")

    async def remove(self, version: int) -> None:
        await self._unused(version)
        self.keyring.remove(version)
        await self._audit("keys.remove", f"kek:v{version}")

    async def _unused(self, version: int) -> None:
        async with self.db.read() as conn:
            users = (await retention_store.key_versions(conn)).get(version, 0)
        if users:
            raise KeyInUse(f"key version {version} still wraps {users} data keys; run `consult keys rotate` first")

    async def _audit(self, action: str, basis: str) -> None:
        now = self.clock.now()
        await self.db.write(lambda conn: record(conn, OPERATOR, SYSTEM_CONTEXT, now,
                                                [AuditRecord(action=action, basis=basis)]))
