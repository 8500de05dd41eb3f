"""The log's anchor outside the database: each signed checkpoint is appended to the checkpoint
file (consult/storage/checkpoint_file.py) and offered to a witness, so that rewriting the
database alone no longer rewrites the history a verifier checks against.

A checkpoint is appended only when the log still extends the file's newest one; the file is
then one growing history. When the database no longer extends it — a backup was restored, or
someone cut the log back — the next head is appended as a *restore marker*: a checkpoint with
the extension line ``konsulta-restored <M> <base64 root M>`` naming the newer checkpoint the
database has fallen behind. `consult audit verify` reports that state until an operator accepts
it with ``consult audit acknowledge-restore``, which records it in the log and appends a head
with the extension line ``konsulta-restore-acknowledged <leaf> <M> <base64 root M>`` (``leaf`` is
the index of the acknowledgement's record). Extension lines are part of the signed text, so
only the holder of the log's signing key writes either marker.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from consult.audit import checkpoint as notes
from consult.audit.log import AuditLog, SignedCheckpoint
from consult.audit.merkle import MerkleTree
from consult.audit.witness import Witness
from consult.errors import ConfigError
from consult.model.clock import iso
from consult.storage.checkpoint_file import CheckpointFile, CheckpointFileError, FileLine

log = logging.getLogger("consult.audit")

__all__ = [
    "ACKNOWLEDGED",
    "RESTORED",
    "Anchor",
    "FileHead",
    "checkpoint_file_mismatch",
    "line_record",
    "marker",
    "read_head",
]

RESTORED = "konsulta-restored"
ACKNOWLEDGED = "konsulta-restore-acknowledged"
CHECKPOINT_FILE = "CONSULT_CHECKPOINT_FILE"
_APPEND_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class FileHead:
    """A line of the checkpoint file whose signature verified."""

    line: FileLine
    checkpoint: notes.Checkpoint
    kind: str  # checkpoint | restored | acknowledged
    leaf: int | None = None  # acknowledged: the index of the acknowledgement's record
    abandoned_size: int | None = None  # restored, acknowledged: the newer head left behind
    abandoned_root: bytes | None = None

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    def matches(self, tree: MerkleTree) -> bool:
        """The tree has this head's size and, at that size, its root."""
        return self.size <= tree.size and hmac.compare_digest(tree.root_at(self.size), self.root)


def marker(checkpoint: notes.Checkpoint) -> tuple[str, int | None, int | None, bytes | None] | None:
    """``(kind, leaf, abandoned size, abandoned root)`` from the extension lines, or None when a
    marker line is malformed (a signed but unreadable marker is not trusted either way)."""
    for ext in checkpoint.extensions:
        word, _, rest = ext.partition(" ")
        if word not in (RESTORED, ACKNOWLEDGED):
            continue
        parts = rest.split(" ")
        try:
            if word == RESTORED and len(parts) == 2:
                return "restored", None, _count(parts[0]), _root(parts[1])
            if word == ACKNOWLEDGED and len(parts) == 3:
                return "acknowledged", _count(parts[0]), _count(parts[1]), _root(parts[2])
        except ValueError:
            return None
        return None
    return "checkpoint", None, None, None


def read_head(line: FileLine, verifier_keys: Sequence[str], origin: str | None) -> FileHead | None:
    """The line's checkpoint once its signature verifies with one of ``verifier_keys``."""
    note = line.note
    if note is None:
        return None
    for vkey in verifier_keys:
        try:
            checkpoint = notes.open_checkpoint(note, vkey, origin=origin)
        except (notes.CheckpointError, ValueError):
            continue
        found = marker(checkpoint)
        if found is None:
            return None
        kind, leaf, size, root = found
        return FileHead(line, checkpoint, kind, leaf, size, root)
    return None


def line_origin(line: FileLine) -> str | None:
    """The origin a line claims, read without checking its signature (to tell a file of another
    deployment, a configuration error, from a forged line)."""
    note = line.note
    if note is None:
        return None
    first = note.split("\n", 1)[0]
    return first or None


def checkpoint_file_mismatch(path: Path, origin: str) -> str | None:
    """One line when the file at ``path`` holds another deployment's checkpoints (a configuration
    error, not tampering); None otherwise, also when it cannot be read (verify says so)."""
    try:
        last = CheckpointFile(path).last()
    except CheckpointFileError:
        return None
    return _origin_mismatch(path, last, origin) if last is not None else None


def missing_file(path: Path, kept: int) -> str:
    return (f"{CHECKPOINT_FILE}: {path} is missing or empty, but this database's checkpoints up to size {kept} "
            "were kept in a checkpoint file; restore that file (or point CONSULT_CHECKPOINT_FILE at it). If it "
            "is lost for good, `consult audit acknowledge-restore --reason TEXT` starts a new one")


def _origin_mismatch(path: Path, last: FileLine, origin: str) -> str | None:
    found = line_origin(last)
    if found is not None and found != origin and found.startswith("konsulta."):
        return (f"{CHECKPOINT_FILE}: {path} holds the checkpoints of {found}, not of this deployment ({origin}); "
                "point CONSULT_CHECKPOINT_FILE at this deployment's file")
    return None


def line_record(cp: SignedCheckpoint) -> dict[str, object]:
    """The JSON object of one line: the signed note, and its head spelled out for people."""
    return {"kind": cp.kind, "size": cp.size, "root": cp.root.hex(), "signed_at": iso(cp.signed_at),
            "note": cp.note}


def restored_extension(size: int, root: bytes) -> str:
    return f"{RESTORED} {size} {_b64(root)}"


def acknowledged_extension(leaf: int, size: int, root: bytes) -> str:
    return f"{ACKNOWLEDGED} {leaf} {size} {_b64(root)}"


class Anchor:
    """Keeps one process's checkpoints in the checkpoint file and offers them to the witness."""

    def __init__(self, file: CheckpointFile, log_: AuditLog, *, witness: Witness | None = None) -> None:
        self.file = file
        self.log = log_
        self.witness = witness
        self.anchored = 0  # the largest size the file holds a checkpoint for that this tree matches
        self._warned: str | None = None

    @property
    def _keys(self) -> tuple[str, ...]:
        return (self.log.signer.verifier_key,)

    async def load(self, kept: int | None = None) -> None:
        """Read the file's newest checkpoint at start-up. A file of another deployment stops
        start-up (configuration, not tampering), and so does one that cannot be read — or a
        missing one when the database says its checkpoints up to ``kept`` were kept in it: a new
        file would silently drop the history the old one pinned."""
        try:
            last = await asyncio.to_thread(self.file.last)
        except CheckpointFileError as exc:
            raise ConfigError(f"{CHECKPOINT_FILE}: {exc}") from None
        if last is None:
            if kept is not None:
                raise ConfigError(missing_file(self.file.path, kept))
            return
        problem = _origin_mismatch(self.file.path, last, self.log.signer.origin)
        if problem:
            raise ConfigError(problem)
        head = read_head(last, self._keys, self.log.signer.origin)
        if head is not None and head.matches(self.log.tree):
            self.anchored = head.size

    async def catch_up(self) -> None:
        """Another process on the same file appended a newer checkpoint this tree matches: count
        it as anchored, so the same head is not signed and appended twice."""
        try:
            last = await asyncio.to_thread(self.file.last)
        except CheckpointFileError:
            return  # keep() says what is wrong with the file
        head = read_head(last, self._keys, self.log.signer.origin) if last is not None else None
        if head is not None and head.kind == "checkpoint" and head.matches(self.log.tree):
            self.anchored = max(self.anchored, head.size)

    def needs(self) -> bool:
        return self.anchored < self.log.tree.size

    async def keep(self, cp: SignedCheckpoint, resync: Callable[[], Awaitable[int]],
                   now: Callable[[], datetime]) -> tuple[SignedCheckpoint, bool]:
        """Append ``cp`` (or, when the log no longer extends the file, a restore marker over the
        same head) to the file; return what the file now holds for this head, and whether this
        call appended it (False: another process sharing the file already kept it)."""
        for _ in range(_APPEND_ATTEMPTS):
            last = await asyncio.to_thread(self.file.last)
            head = read_head(last, self._keys, self.log.signer.origin) if last is not None else None
            if head is not None and head.size > self.log.tree.size:
                # Another process may have committed and anchored more: look again before judging.
                await resync()
                if self.log.tree.size > cp.size:
                    cp = self.log.sign_current(now())
            line = self._line_after(last, head, cp, now)
            if line is None:  # the file already holds a head this tree matches, at least as large
                assert head is not None
                self.anchored = max(self.anchored, head.size)
                return cp, False
            if await asyncio.to_thread(self.file.append, line_record(line), expect_end=last.end if last else 0):
                self.anchored = line.size
                if self.witness is not None:
                    self.witness.submit(line.note, line.size)
                return line, True
        raise CheckpointFileError(f"{self.file.path}: kept changing while a checkpoint was appended")

    def _line_after(self, last: FileLine | None, head: FileHead | None, cp: SignedCheckpoint,
                    now: Callable[[], datetime]) -> SignedCheckpoint | None:
        if last is None:
            return cp
        if head is None:
            self._warn("unsigned", "the newest line of the checkpoint file is not a checkpoint signed by "
                       "this log's key; appending after it")
            return cp
        if head.matches(self.log.tree):
            return cp if cp.size > head.size else None
        self._warn(f"restored-{head.size}", "the audit log (size %d) no longer extends checkpoint %d of the "
                   "checkpoint file: restored from a backup, or altered; `consult audit verify` tells which",
                   cp.size, head.size)
        return self.log.sign_marked(now(), "restored", restored_extension(head.size, head.root))

    async def acknowledge(self, leaf: int, abandoned_size: int, abandoned_root: bytes,
                          now: datetime) -> SignedCheckpoint:
        """Append the operator's acknowledgement of a restore over the current head (which includes
        the acknowledgement's own record at ``leaf``); it names the checkpoint left behind."""
        cp = self.log.sign_marked(now, "acknowledged", acknowledged_extension(leaf, abandoned_size, abandoned_root))
        await asyncio.to_thread(self.file.append, line_record(cp))
        self.anchored = cp.size
        if self.witness is not None:
            self.witness.submit(cp.note, cp.size)
        return cp

    def _warn(self, key: str, message: str, *args: object) -> None:
        if self._warned != key:  # once per state, not on every tick
            log.error(message, *args)
            self._warned = key


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0") or len(text) > 20:
        raise ValueError("not a count")
    return int(text)


def _root(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32 or _b64(raw) != text:
        raise ValueError("not a root hash")
    return raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
