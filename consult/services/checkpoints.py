"""Signing and keeping the audit log's checkpoints in one process — the service on its timer,
a command before it exits — and the operator's acknowledgement of a restore.

Several instances share the database and the checkpoint file; the timer's checkpoint runs on one
of them at a time (a job lease), and a head another instance already signed is taken as it is,
not signed again: whoever appends a head to the file first stores it.

A checkpoint is kept first in the checkpoint file outside the database (fsync'd) and offered to
the witness (consult/audit/anchor.py), then stored in the database. A process that starts on a
log with records no checkpoint covers (a crash) signs them at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.anchor import CHECKPOINT_FILE, Anchor
from consult.audit.log import AuditLog, SignedCheckpoint
from consult.audit.records import AuditRecord, record
from consult.audit.verify import RESTORE_ACKNOWLEDGED, verify_log
from consult.errors import ConfigError
from consult.model import Clock, Principal
from consult.model.context import RequestContext
from consult.storage import audit_log
from consult.storage.checkpoint_file import CheckpointFileError
from consult.storage.db import Database


class Checkpoints:
    def __init__(self, db: Database, log: AuditLog, clock: Clock, anchor: Anchor | None = None) -> None:
        self.db = db
        self.log = log
        self.clock = clock
        self.anchor = anchor
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Build the tree; with an anchor, check the checkpoint file and at once anchor a tail
        that a crash left without a checkpoint (or mark a restore)."""
        async with self.db.read() as conn:
            await self.log.load(conn)
            kept = await audit_log.newest_kept_in_file(conn)
        if self.anchor is None:
            return
        await self.anchor.load(kept["tree_size"] if kept else None)
        try:
            await self.now()
        except CheckpointFileError as exc:
            raise ConfigError(f"{CHECKPOINT_FILE}: {exc}") from None

    async def sync(self) -> int:
        async with self.db.read() as conn:
            return await self.log.sync(conn)

    async def now(self) -> SignedCheckpoint | None:
        """Sign and keep a checkpoint if the tree grew since the last one (timer, demand, shutdown):
        first in the checkpoint file (fsync'd), then in the database; then offer it to the witness."""
        async with self._lock:
            async with self.db.read() as conn:
                await self.log.sync(conn)
                adopted = await self.log.adopt_stored(conn)
            anchor = self.anchor
            if adopted and anchor is not None:
                await anchor.catch_up()
            if not self.log.needs_checkpoint() and (anchor is None or not anchor.needs()):
                if anchor is not None and anchor.witness is not None:
                    anchor.witness.retry()
                return self.log.last_signed
            cp = self.log.sign_current(self.clock.now())
            if anchor is not None:
                cp, appended = await anchor.keep(cp, self.sync, self.clock.now)
                if not appended:
                    # Another instance sharing the file kept this head first and stores it itself.
                    self.log.stored(cp)
                    return cp
            await self._store(cp)
            return cp

    async def _store(self, cp: SignedCheckpoint) -> None:
        row = {**self.log.checkpoint_row(cp), "kept_in_file": self.anchor is not None}
        await self.db.write(lambda conn: audit_log.insert_checkpoint(conn, row))
        self.log.stored(cp)

    async def close(self) -> None:
        if self.anchor is not None and self.anchor.witness is not None:
            await self.anchor.witness.close()

    # -- a restore, accepted ---------------------------------------------------------------------

    async def acknowledge_restore(self, operator: Principal, reason: str, ctx: RequestContext) -> dict[str, Any]:
        """Record that an operator accepts the log as restored (or its checkpoint file as lost):
        a record with the written reason, then a checkpoint over it marked as the acknowledgement,
        appended to the checkpoint file, which begins the log's history anew from there.

        Refused (`RestoreRefused`, nothing changed) unless verification finds exactly that state.
        """
        anchor = self.anchor
        if anchor is None:
            raise RestoreRefused("no checkpoint file is configured")
        async with self.db.read() as conn:
            await self.log.load(conn)
            report = await verify_log(conn, (self.log.signer.verifier_key,), origin=self.log.signer.origin,
                                      checkpoint_file=anchor.file)
            kept = await audit_log.newest_kept_in_file(conn)
        lost = report.checkpoint_file == "absent" and kept is not None
        if lost and all(p.kind == "anchor" for p in report.problems):
            assert kept is not None
            restored, abandoned = report.size, (int(kept["tree_size"]), bytes(kept["root_hash"]))
            what = "checkpoint file lost"
        elif report.state == "restored" and report.restored is not None and report.abandoned is not None:
            restored, abandoned = report.restored[0], report.abandoned
            what = "restore"
        elif report.ok:
            raise RestoreRefused("nothing to acknowledge: the audit log verifies")
        else:
            raise RestoreRefused(f"the audit log is not restored but {report.summary}")
        text_digest = hashlib.sha256(reason.encode("utf-8")).hexdigest()
        reason_id, at = str(uuid.uuid4()), self.clock.now()
        entry = AuditRecord(action=RESTORE_ACKNOWLEDGED, purpose="audit_maintenance", flags=("restore_acknowledged",),
                            basis=f"{what}: restored to {restored}, checkpoint {abandoned[0]} abandoned",
                            reason_id=reason_id, reason_digest=text_digest)

        async def unit(conn: AsyncConnection) -> int:
            await audit_log.insert_reason(conn, {"id": reason_id, "kind": "restore_acknowledged", "text": reason,
                                                 "digest": text_digest, "at": at, "actor_id": operator.user_id,
                                                 "actor_org": operator.org})
            return await record(conn, operator, ctx, at, [entry], now=True)

        async with self._lock:
            leaf = await self.db.write(unit)
            await self.sync()
            cp = await anchor.acknowledge(leaf, abandoned[0], abandoned[1], self.clock.now())
            await self._store(cp)
        return {"acknowledged": what, "restored_to": restored, "abandoned_checkpoint": abandoned[0],
                "leaf_index": leaf, "checkpoint": {"tree_size": cp.size, "root_hash": cp.root.hex()}}


class RestoreRefused(Exception):
    """Nothing was acknowledged; the message says why."""

