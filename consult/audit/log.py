"""The live Merkle log: the in-memory RFC 9162 tree over committed audit records, its tree
heads and proofs, and the Ed25519-signed checkpoints kept in the database.

The tree follows the database, never the writer: `AuditLog.sync` reads the leaf hashes of
records committed since the last sync. A unit rolled back in a batch never reached a commit, so
it never reaches the tree either; nothing here has to be undone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import checkpoint as notes
from consult.audit.merkle import MerkleTree
from consult.crypto import signing
from consult.storage import audit_log

log = logging.getLogger("consult.audit")

_SYNC_BATCH = 100_000


class LogInconsistent(Exception):
    """The stored log is not a contiguous prefix, or its hashes disagree with a signed head."""


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root: bytes
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: datetime
    kind: str = "checkpoint"  # or a restore marker (consult/audit/anchor.py)


class CheckpointSigner:
    """The log's Ed25519 key and origin line (which doubles as the note key name)."""

    def __init__(self, origin: str, seed: bytes) -> None:
        notes.checkpoint_body(origin, 0, bytes(32))  # validates the origin as a key name
        self.origin = origin
        self._seed = seed
        self.public_key = signing.public_key(seed)
        self.verifier_key = notes.verifier_key(origin, self.public_key)

    def __repr__(self) -> str:
        return f"CheckpointSigner(origin={self.origin!r})"

    def sign(self, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
        body = notes.checkpoint_body(self.origin, size, root, extensions)
        return notes.sign_checkpoint(self.origin, self._seed, body)


class AuditLog:
    """One process's view of the log. Use one per database; `sync` before answering."""

    def __init__(self, signer: CheckpointSigner) -> None:
        self.signer = signer
        self.tree = MerkleTree()
        self._lock = asyncio.Lock()
        self.last_signed: SignedCheckpoint | None = None

    async def sync(self, conn: AsyncConnection) -> int:
        """Extend the tree with records committed since the last call; return the size."""
        async with self._lock:
            while True:
                start = self.tree.size
                rows = await audit_log.leaf_hashes(conn, start, _SYNC_BATCH)
                if not rows:
                    return start
                if rows[0][0] != start or rows[-1][0] != start + len(rows) - 1:
                    raise LogInconsistent(f"audit log is not contiguous after leaf {start - 1}")
                self.tree.extend(h for _, h in rows)
                if len(rows) < _SYNC_BATCH:
                    return self.tree.size

    async def load(self, conn: AsyncConnection) -> None:
        """Build the tree and check it against the newest stored checkpoint (start-up)."""
        await self.sync(conn)
        latest = await audit_log.latest_checkpoint(conn)
        if latest is None:
            return
        if not self._adopt(latest):
            # Serve on: the privacy officer's verify reports it, and new heads stay honest.
            log.error("audit log does not match its newest signed checkpoint (size %d)", latest["tree_size"])

    async def adopt_stored(self, conn: AsyncConnection) -> bool:
        """Take the newest stored checkpoint as this process's last one when it is newer and this
        tree matches it: another instance on the database signed it, and signing the same head
        again would only duplicate it. Returns whether one was taken."""
        latest = await audit_log.latest_checkpoint(conn)
        if latest is None or (self.last_signed is not None and int(latest["tree_size"]) <= self.last_signed.size):
            return False
        return self._adopt(latest)

    def _adopt(self, row: dict[str, Any]) -> bool:
        size, root = int(row["tree_size"]), bytes(row["root_hash"])
        if size > self.tree.size or self.tree.root_at(size) != root:
            return False
        self.last_signed = SignedCheckpoint(size, root, row["note"], row["signed_at"])
        return True

    def head(self, now: datetime) -> TreeHead:
        return TreeHead(self.tree.size, self.tree.root(), now)

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
        """``(leaf_hash, path, root)`` for leaf ``index`` in the tree of ``size``; ValueError if out of range."""
        path = self.tree.inclusion_proof(index, size)
        return self.tree.leaf(index), path, self.tree.root_at(size)

    def consistency(self, first: int, second: int) -> tuple[bytes, bytes, list[bytes]]:
        """``(first_root, second_root, path)``; ValueError if out of range."""
        path = self.tree.consistency_proof(first, second)
        return self.tree.root_at(first), self.tree.root_at(second), path

    def needs_checkpoint(self) -> bool:
        return self.tree.size > 0 and (self.last_signed is None or self.last_signed.size < self.tree.size)

    def sign_current(self, now: datetime) -> SignedCheckpoint:
        size = self.tree.size
        root = self.tree.root_at(size)
        return SignedCheckpoint(size, root, self.signer.sign(size, root), now)

    def sign_marked(self, now: datetime, kind: str, extension: str) -> SignedCheckpoint:
        """The current head signed with one extension line that says what else it records."""
        size = self.tree.size
        root = self.tree.root_at(size)
        return SignedCheckpoint(size, root, self.signer.sign(size, root, (extension,)), now, kind)

    def stored(self, cp: SignedCheckpoint) -> None:
        """Remember a checkpoint once its row is committed."""
        if self.last_signed is None or cp.size >= self.last_signed.size:
            self.last_signed = cp

    def checkpoint_row(self, cp: SignedCheckpoint) -> dict[str, object]:
        return {
            "tree_size": cp.size,
            "root_hash": cp.root,
            "origin": self.signer.origin,
            "verifier_key": self.signer.verifier_key,
            "note": cp.note,
            "signed_at": cp.signed_at,
        }
