"""``consult backup PATH``: a consistent online copy of the embedded database, and beside it a
manifest of what a restore is checked against — the schema revision, the deployment, the
fingerprints of the keys the data was written with, the audit log's size and newest checkpoint.

The copy holds ciphertext, blind indexes and the audit log; it never holds key material. The key
files are backed up separately and are bound to the copy by the fingerprints in its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from consult.model import Clock
from consult.storage import backup as store
from consult.storage.db import Database
from consult.storage.rows import as_utc

FORMAT = "konsulta-backup/1"
_ORIGIN = re.compile(r"^konsulta\.(?P<name>[a-z0-9][a-z0-9.-]{0,62})/audit$")


class BackupRefused(Exception):
    """Nothing was written: the target is taken or its directory missing."""


def manifest_path(target: Path) -> Path:
    return target.with_name(target.name + ".manifest.json")


async def take_backup(db: Database, target: Path, clock: Clock) -> dict[str, Any]:
    """Copy the database to the new file ``target`` and write its manifest beside it; return the
    manifest. Never overwrites: a backup that exists stays what it was."""
    manifest_file = manifest_path(target)
    for path in (target, manifest_file):
        if path.exists():
            raise BackupRefused(f"{path} exists; give a new file name")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target.parent} is not a directory")
    partial = target.with_name(f".{target.name}.partial")
    _new_private_file(partial)
    taken_at = clock.now()
    try:
        snapshot = await store.copy_sqlite(db, partial)
        _fsync(partial)
        if target.exists():  # noqa: ASYNC240 -- one stat among the blocking copy, fsync and rename steps
            raise BackupRefused(f"{target} appeared while copying; give a new file name")
        os.rename(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    manifest = _manifest(snapshot, target, taken_at.isoformat())
    _write_new(manifest_file, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    _fsync(target.parent)
    return manifest


def _manifest(snapshot: store.Snapshot, target: Path, taken_at: str) -> dict[str, Any]:
    recorded = snapshot.deployment
    checkpoint = snapshot.checkpoint
    named = _ORIGIN.match(recorded.origin) if recorded else None
    return {
        "format": FORMAT,
        "taken_at": taken_at,
        "database": {"file": target.name, "bytes": target.stat().st_size, "sha256": _sha256(target),
                     "backend": "sqlite"},
        "schema_revision": snapshot.revision,
        "deployment": named["name"] if named else None,
        "audit_origin": recorded.origin if recorded else None,
        "keys": None if recorded is None else {
            "key_encryption_keys": [{"version": k.version, "fingerprint": k.fingerprint, "status": k.status}
                                    for k in recorded.keks],
            "blind_index_fingerprint": recorded.blind_index_fingerprint,
            "audit_signing_key_fingerprint": recorded.audit_key_fingerprint,
            "audit_verifier_key": recorded.audit_verifier_key,
        },
        "audit_log": {
            "size": snapshot.audit_size,
            "checkpoint": None if checkpoint is None else {
                "tree_size": int(checkpoint["tree_size"]),
                "root_hash": bytes(checkpoint["root_hash"]).hex(),
                "signed_at": as_utc(checkpoint["signed_at"]).isoformat(),  # type: ignore[union-attr]
                "note": checkpoint["note"],
            },
        },
    }


def _new_private_file(path: Path) -> None:
    """Create ``path`` owner-only before SQLite writes into it (its journal gets the same mode)."""
    path.unlink(missing_ok=True)  # our own leftover from an interrupted run
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    """A file's bytes, or a directory's entries, onto the disk (the copy is not in use by SQLite)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
