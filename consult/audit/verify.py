"""Full verification of the stored audit log: every entry recomputed from its row, the stored
leaf hashes, contiguity and order, the head row, every stored (and any externally kept) signed
checkpoint, and the written reasons beside the log.

What each check catches:

- a changed record: its recomputed leaf hash differs from the stored one (and, if the tamperer
  also rewrote the stored hash, the root differs from every later signed checkpoint);
- a deleted record: a gap in the leaf indices, a head larger than the log, or a signed
  checkpoint larger than the log;
- an inserted record: a repeated leaf index, a record out of insertion order, a head smaller than
  the log, or (if renumbered cleanly) a root that no longer matches a signed checkpoint;
- reordered records: the leaf index is inside each entry, so a moved record no longer matches
  its hash, and the roots change;
- a forged or altered checkpoint: its Ed25519 signature does not verify with a trusted key, or
  its row no longer matches its signed text.

Records after the newest signed checkpoint are protected only by their stored hashes until the
next checkpoint is signed; a tamperer who recomputes those hashes is caught by whoever holds a
later checkpoint (see SECURITY.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import checkpoint as notes
from consult.audit.entry import ENTRY_VERSION, encode_values
from consult.audit.merkle import MerkleTree
from consult.storage import audit_log

__all__ = ["Problem", "VerifyReport", "verify_log"]

MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # changed | missing | duplicate | order | head | checkpoint | reason | version
    detail: str
    leaf_index: int | None = None
    checkpoint: int | None = None  # the checkpoint row's seq

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "detail": self.detail, "leaf_index": self.leaf_index,
                "checkpoint": self.checkpoint}


@dataclass
class VerifyReport:
    size: int = 0
    root: bytes = b""
    records: int = 0
    checkpoints: int = 0
    checkpoints_verified: int = 0
    external_checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    first_bad_index: int | None = None
    first_bad_range: tuple[int, int] | None = None  # (after, up to) when only a root tells

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        if problem.leaf_index is not None and (self.first_bad_index is None or problem.leaf_index < self.first_bad_index):
            self.first_bad_index = problem.leaf_index

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "size": self.size,
            "root_hash": self.root.hex(),
            "records": self.records,
            "checkpoints": self.checkpoints,
            "checkpoints_verified": self.checkpoints_verified,
            "external_checkpoints": self.external_checkpoints,
            "first_bad_index": self.first_bad_index,
            "first_bad_range": list(self.first_bad_range) if self.first_bad_range else None,
            "problems": [p.as_json() for p in self.problems],
        }


async def verify_log(
    conn: AsyncConnection,
    verifier_keys: Sequence[str],
    *,
    origin: str | None = None,
    external: Sequence[str] = (),
) -> VerifyReport:
    """Verify the whole log readable through ``conn``.

    ``verifier_keys`` are the trusted note verifier keys (never taken from the database);
    ``external`` are signed checkpoints kept elsewhere (by a witness or an auditor), which the
    log must still contain.
    """
    report = VerifyReport()
    tree = MerkleTree(await _recompute_leaves(conn, report))
    report.size = tree.size
    report.root = tree.root()
    await _check_head(conn, report)
    await _check_checkpoints(conn, tree, verifier_keys, origin, external, report)
    await _check_reasons(conn, report)
    return report


async def _recompute_leaves(conn: AsyncConnection, report: VerifyReport) -> list[bytes]:
    sha256, compare, loads = hashlib.sha256, hmac.compare_digest, json.loads
    at_i, cat_i, flag_i = audit_log.ENTRY_AT, audit_log.ENTRY_CATEGORIES, audit_log.ENTRY_FLAGS
    lists: dict[str | None, list[str]] = {None: [], "null": []}
    leaves: list[bytes] = []
    expected, last_seq = 0, -1
    async for part in audit_log.iter_entry_rows(conn):
        for row in part:
            values = list(row[:26])
            index, stored, seq, version = values[0], row[26], row[27], row[28]
            if index != expected:
                if index < expected:
                    report.add(Problem("duplicate", f"leaf index {index} appears more than once", index))
                else:
                    report.add(Problem("missing", f"records {expected}..{index - 1} are missing", expected))
                expected = index
            if seq < last_seq:
                report.add(Problem("order", f"record {index} is out of insertion order", index))
            last_seq, expected = seq, expected + 1
            if version != ENTRY_VERSION:
                report.add(Problem("version", f"record {index} has unknown entry version {version}", index))
            at = values[at_i]
            values[at_i] = f"{at[:10]}T{at[11:]}Z"
            raw = values[cat_i]
            values[cat_i] = lists[raw] if raw in lists else lists.setdefault(raw, loads(raw) or [])
            raw = values[flag_i]
            values[flag_i] = lists[raw] if raw in lists else lists.setdefault(raw, loads(raw) or [])
            leaf = sha256(b"\x00" + encode_values(values)).digest()
            if stored is None or not compare(leaf, bytes(stored)):
                report.add(Problem("changed", f"record {index} does not match its leaf hash", index))
            leaves.append(leaf)
    report.records = len(leaves)
    return leaves


async def _check_head(conn: AsyncConnection, report: VerifyReport) -> None:
    head = await audit_log.head_size(conn)
    if head is not None and head != report.records:
        if head > report.records:
            report.add(Problem("head", f"the log head counts {head} records but {report.records} are stored",
                               report.records))
        else:
            report.add(Problem("head", f"{report.records} records are stored but the head counts {head}", head))


async def _check_checkpoints(
    conn: AsyncConnection,
    tree: MerkleTree,
    verifier_keys: Sequence[str],
    origin: str | None,
    external: Sequence[str],
    report: VerifyReport,
) -> None:
    stored = await audit_log.checkpoints(conn)
    report.checkpoints = len(stored)
    heads: list[tuple[int, bytes, int | None]] = []  # (size, root, checkpoint seq or None)
    for row in stored:
        head = _open(row["note"], verifier_keys, origin)
        if head is None:
            report.add(Problem("checkpoint", f"checkpoint {row['seq']} is not signed by a trusted log key",
                               checkpoint=row["seq"]))
            continue
        report.checkpoints_verified += 1
        if head.size != row["tree_size"] or bytes(row["root_hash"]) != head.root:
            report.add(Problem("checkpoint", f"checkpoint {row['seq']} row differs from its signed text",
                               checkpoint=row["seq"]))
        heads.append((head.size, head.root, row["seq"]))
    for text in external:
        report.external_checkpoints += 1
        head = _open(text, verifier_keys, origin)
        if head is None:
            report.add(Problem("checkpoint", "an external checkpoint is not signed by a trusted log key"))
            continue
        heads.append((head.size, head.root, None))

    matched = 0  # the largest size whose signed root the log still reproduces
    for size, root, seq in sorted(heads, key=lambda h: h[0]):
        where = f"checkpoint {seq}" if seq is not None else "an external checkpoint"
        if size > tree.size:
            report.add(Problem("checkpoint", f"{where} signed {size} records but the log holds {tree.size}: "
                               "records were deleted", max(tree.size, 0), seq))
            _narrow(report, matched, tree.size)
        elif not hmac.compare_digest(tree.root_at(size), root):
            report.add(Problem("checkpoint", f"the log no longer matches {where} (size {size})", checkpoint=seq))
            _narrow(report, matched, size)
        else:
            matched = max(matched, size)


def _narrow(report: VerifyReport, after: int, upto: int) -> None:
    """Without a bad leaf hash, a root mismatch places the first bad entry in (after, upto]."""
    if report.first_bad_range is None and report.first_bad_index is None:
        report.first_bad_range = (after, upto)


def _open(note: str, verifier_keys: Sequence[str], origin: str | None) -> notes.Checkpoint | None:
    for vkey in verifier_keys:
        try:
            return notes.open_checkpoint(note, vkey, origin=origin)
        except notes.CheckpointError:
            continue
    return None


async def _check_reasons(conn: AsyncConnection, report: VerifyReport) -> None:
    committed = await audit_log.reason_digests(conn)
    for reason in await audit_log.reasons(conn):
        digest = hashlib.sha256(reason["text"].encode("utf-8")).hexdigest()
        if digest != reason["digest"] or committed.get(reason["id"]) != digest:
            report.add(Problem("reason", f"written reason {reason['id']} was changed or has no record"))
