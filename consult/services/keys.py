"""Key management (docs/capabilities.md C4): status, rotation of the key-encryption key without downtime, and
retiring and removing old versions once nothing uses them.

Rotation adds a new KEK version (new data keys are wrapped under it at once, because the running
service re-reads the key file when it changes), then rewraps every existing data key in batches.
Data keys themselves do not change, so no content is re-encrypted and no reader is disturbed.

Rotation checks before it changes anything — the key file is writable, its fingerprints are the
ones the database recorded, every live data key unwraps — and records the new version's
fingerprint as *pending* before the key file gets it, so an interrupted rotation leaves nothing
the next start cannot account for. Retire and remove update the record after the key file.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.crypto import CryptoError, Envelope, FileKeyring, KeyFileError, WrappedKey, owner_context
from consult.model import Clock, Principal
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.storage import deployment as deployment_store
from consult.storage import keys as key_store
from consult.storage import retention as retention_store
from consult.storage.db import Database

OPERATOR = Principal(user_id="system:keys", org="system", roles=frozenset(), name="Key management")
BATCH = 500
SETTLE_SECONDS = 0.5


class KeyInUse(Exception):
    """A key version still wraps data keys."""


class RotationRefused(Exception):
    """A precondition of rotation failed; nothing was changed."""


class KeyManagement:
    def __init__(self, db: Database, keyring: FileKeyring, clock: Clock, *, operator: Principal = OPERATOR,
                 ctx: RequestContext = SYSTEM_CONTEXT) -> None:
        self.operator = operator  # who the audit log names (the command line's operator)
        self.ctx = ctx
        self.db = db
        self.keyring = keyring
        # Rewrapping touches each data key once: nothing worth caching (the vault holds the cache).
        self.envelope = Envelope(keyring, cache_size=0)
        self.clock = clock

    async def status(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            counts = await retention_store.key_versions(conn)
        versions = self.keyring.versions()
        return {
            "current": self.keyring.current_version(),
            "versions": [
                {"version": v, "status": status, "data_keys": counts.get(v, 0)}
                for v, status in sorted(versions.items())
            ],
            "destroyed_data_keys": counts.get(None, 0),
        }

    async def rotate(self) -> dict[str, Any]:
        started = time.perf_counter()
        await self._check_before_rotation()
        prepared = self.keyring.prepare_version()
        new = prepared.version
        now = self.clock.now()
        await self.db.write(lambda conn: deployment_store.record_kek(conn, new, prepared.fingerprint, "pending", now))
        try:
            self.keyring.add_prepared(prepared)
        except KeyFileError as exc:
            await self.db.write(lambda conn: deployment_store.forget_pending(conn, new))
            raise RotationRefused(str(exc)) from None
        await self.db.write(lambda conn: deployment_store.set_kek_status(conn, new, "active", self.clock.now()))
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
        await self._set_status(version, "retired")
        await self._audit("keys.retire", f"kek:v{version}")

    async def remove(self, version: int) -> None:
        await self._unused(version)
        self.keyring.remove(version)
        await self._set_status(version, "removed")
        await self._audit("keys.remove", f"kek:v{version}")

    async def _check_before_rotation(self) -> None:
        """Refuse (`RotationRefused`) before changing anything if rotation could not complete."""
        try:
            self.keyring.check_writable()
        except KeyFileError as exc:
            raise RotationRefused(str(exc)) from None
        async with self.db.read() as conn:
            recorded = await deployment_store.recorded(conn)
            if recorded is None:
                raise RotationRefused("the database has no keys recorded; run `consult init` or start the service")
            known = {k.version: k.fingerprint for k in recorded.keks if k.status in ("active", "retired")}
            in_file = self.keyring.fingerprints()
            if in_file != known:
                raise RotationRefused(f"the key file {self.keyring.path} does not match the fingerprints this "
                                      "database recorded; start the service to see which key differs")
            failed = 0
            async for batch in deployment_store.live_wrapped_keys(conn):
                for stored in batch:
                    try:
                        self.keyring.unwrap(WrappedKey(stored.kek_version, stored.wrapped),
                                            owner_context(stored.owner))
                    except CryptoError:
                        failed += 1
        if failed:
            raise RotationRefused(f"{failed} data keys do not unwrap with the key file {self.keyring.path}; "
                                  "nothing was changed")

    async def _set_status(self, version: int, status: str) -> None:
        now = self.clock.now()
        await self.db.write(lambda conn: deployment_store.set_kek_status(conn, version, status, now))

    async def _unused(self, version: int) -> None:
        async with self.db.read() as conn:
            users = (await retention_store.key_versions(conn)).get(version, 0)
        if users:
            raise KeyInUse(f"key version {version} still wraps {users} data keys; run `consult keys rotate` first")

    async def _audit(self, action: str, basis: str) -> None:
        now = self.clock.now()
        await self.db.write(lambda conn: record(conn, self.operator, self.ctx, now,
                                                [AuditRecord(action=action, basis=basis)]))
