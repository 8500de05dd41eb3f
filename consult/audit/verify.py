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
  its row no longer matches its signed text;
- a rewrite by someone who also deleted the stored checkpoints, or cut the log back together with
  them: the newest checkpoint of the checkpoint file outside the database (consult/audit/anchor.py)
  no longer matches — the log holds fewer records than it signed, or another tree at its size;
- a record written or backdated after the fact: it is older than the checkpoint interval allows
  and no signed checkpoint covers it (*unanchored*);
- a deleted or changed written reason: the entry that cites it holds its SHA-256.

A log that holds fewer records than a checkpoint signed later, but is otherwise intact and matches
the checkpoints before, is reported as *restored* (a backup put back, or a cut-back that looks
like one): a failure with its own explanation, until an operator acknowledges the restore.

What none of this catches, and who can do what, is in SECURITY.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import checkpoint as notes
from consult.audit import subjects
from consult.audit.anchor import FileHead, read_head
from consult.audit.entry import FIELDS_V1, VERSIONS, encode_values
from consult.audit.merkle import MerkleTree
from consult.model.audit_fields import ProblemKind
from consult.storage import audit_log
from consult.storage.checkpoint_file import CheckpointFile, CheckpointFileError, FileLine

__all__ = ["Problem", "VerifyReport", "unanchored_cutoff", "verify_log"]

MAX_PROBLEMS = 50
RESTORE_ACKNOWLEDGED = "audit.restore_acknowledged"
"""The action of the record an operator's ``consult audit acknowledge-restore`` appends."""

UNANCHORED_SLACK = timedelta(seconds=60)
MARKER = b"konsulta-restore"  # begins both marker extension lines (consult/audit/anchor.py)


def unanchored_cutoff(now: datetime, interval: timedelta) -> datetime:
    """Records before this instant must be covered by a signed checkpoint: a checkpoint is made
    every ``interval``; two intervals and a minute leave room for a slow tick and clock skew."""
    return now - 2 * interval - UNANCHORED_SLACK


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
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
    anchored: int = 0  # records 0..anchored-1 are covered by a signed checkpoint that matches
    checkpoint_file: str = "absent"  # absent | read | unreadable
    file_newest: int | None = None  # the size of the file's newest signed checkpoint
    restored: tuple[int, int] | None = None  # (N, M): restored to size N below checkpoint M
    restore_acknowledged: bool = False  # the current history began with an acknowledged restore
    abandoned: tuple[int, bytes] | None = None  # restored: the later checkpoint (size, root) left behind

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def state(self) -> str:
        """``intact``; ``restored`` when a restore below a later checkpoint is all that is wrong;
        else ``tampered``."""
        if self.ok:
            return "intact"
        if self.restored is not None and all(p.kind == "restored" for p in self.problems):
            return "restored"
        return "tampered"

    @property
    def summary(self) -> str:
        if self.state == "restored" and self.restored is not None:
            n, m = self.restored
            return f"restored to size {n}; checkpoint {m} > {n} was signed later"
        if self.ok:
            return f"intact: {self.size} records"
        if self.first_bad_index is not None:
            return f"tampered: first bad entry is leaf {self.first_bad_index}"
        if self.first_bad_range is not None:
            first, end = self.first_bad_range
            return f"tampered: the first bad entry is among leaves {first}..{end - 1}"
        return "tampered"

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        if problem.leaf_index is not None and (self.first_bad_index is None
                                               or problem.leaf_index < self.first_bad_index):
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
            "state": self.state,
            "summary": self.summary,
            "anchored_size": self.anchored,
            "checkpoint_file": {"status": self.checkpoint_file, "newest_size": self.file_newest},
            "restored": {"size": self.restored[0], "checkpoint": self.restored[1]} if self.restored else None,
            "restore_acknowledged": self.restore_acknowledged,
        }


async def verify_log(
    conn: AsyncConnection,
    verifier_keys: Sequence[str],
    *,
    origin: str | None = None,
    external: Sequence[str] = (),
    checkpoint_file: CheckpointFile | None = None,
    unanchored_before: datetime | None = None,
) -> VerifyReport:
    """Verify the whole log readable through ``conn``.

    ``verifier_keys`` are the trusted note verifier keys (never taken from the database);
    ``external`` are signed checkpoints kept elsewhere (by a witness or an auditor), which the
    log must still contain; ``checkpoint_file`` is the file the service appends its checkpoints
    to, whose newest one the log must match. With ``unanchored_before`` (see `unanchored_cutoff`),
    a record older than that which no matching signed checkpoint covers is reported.
    """
    report = VerifyReport()
    tree = MerkleTree(await _recompute_leaves(conn, report))
    report.size = tree.size
    report.root = tree.root()
    await _check_head(conn, report)
    await _check_checkpoints(conn, tree, verifier_keys, origin, external, report)
    if checkpoint_file is not None:
        verdict = await asyncio.to_thread(_check_file, tree, checkpoint_file, verifier_keys, origin)
        if verdict.status == "absent" and (kept := await audit_log.newest_kept_in_file(conn)) is not None:
            verdict.problems.append(Problem("anchor", f"the checkpoint file is missing, but the checkpoints up to "
                                            f"size {kept['tree_size']} were kept in one"))
        await _apply_file_verdict(conn, verdict, report)
    await _check_reasons(conn, report)
    for detail, index in await subjects.check(conn):
        report.add(Problem("subject", detail, index))
    if unanchored_before is not None and report.restored is None:
        await _check_anchored(conn, report, unanchored_before)
    return report


async def _recompute_leaves(conn: AsyncConnection, report: VerifyReport) -> list[bytes]:
    sha256, compare, loads = hashlib.sha256, hmac.compare_digest, json.loads
    at_i, cat_i, flag_i = audit_log.ENTRY_AT, audit_log.ENTRY_CATEGORIES, audit_log.ENTRY_FLAGS
    width, v1_width = audit_log.ENTRY_WIDTH, len(FIELDS_V1)
    lists: dict[str | None, list[str]] = {None: [], "null": []}
    leaves: list[bytes] = []
    expected, last_seq = 0, -1
    async for part in audit_log.iter_entry_rows(conn):
        for row in part:
            values = list(row[:width])
            index, (stored, seq, version) = values[0], row[width:width + 3]
            if index != expected:
                if index < expected:
                    report.add(Problem("duplicate", f"leaf index {index} appears more than once", index))
                else:
                    report.add(Problem("missing", f"records {expected}..{index - 1} are missing", expected))
                expected = index
            if seq < last_seq:
                report.add(Problem("order", f"record {index} is out of insertion order", index))
            last_seq, expected = seq, expected + 1
            if version not in VERSIONS:
                report.add(Problem("version", f"record {index} has unknown entry version {version}", index))
            elif version == 1:
                del values[v1_width:]  # version 1 has only its own fields
            at = values[at_i]
            values[at_i] = f"{at[:10]}T{at[11:]}Z"
            raw = values[cat_i]
            values[cat_i] = lists[raw] if raw in lists else lists.setdefault(raw, loads(raw) or [])
            raw = values[flag_i]
            values[flag_i] = lists[raw] if raw in lists else lists.setdefault(raw, loads(raw) or [])
            leaf = sha256(b"\x00" + encode_values(values, version)).digest()
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
    report.anchored = max(report.anchored, matched)


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
    """Each written reason matches the SHA-256 its entry holds; every entry's reason is there."""
    cited = await audit_log.reason_refs(conn)
    committed = {reason_id: digest for _, reason_id, digest in cited}
    stored = set()
    for reason in await audit_log.reasons(conn):
        stored.add(reason["id"])
        digest = hashlib.sha256(reason["text"].encode("utf-8")).hexdigest()
        if digest != reason["digest"] or committed.get(reason["id"]) != digest:
            report.add(Problem("reason", f"written reason {reason['id']} was changed or has no record"))
    for index, reason_id, _ in cited:
        if reason_id not in stored:
            report.add(Problem("reason", f"the written reason record {index} cites ({reason_id}) is missing", index))


# -- the checkpoint file outside the database ------------------------------------------------------


@dataclass
class _FileVerdict:
    status: str = "absent"
    problems: list[Problem] = field(default_factory=list)
    newest: FileHead | None = None
    anchored: int = 0
    restored: tuple[int, int] | None = None
    abandoned: tuple[int, bytes] | None = None
    acknowledgement: FileHead | None = None
    first_bad_range: tuple[int, int] | None = None


def _check_file(tree: MerkleTree, file: CheckpointFile, keys: Sequence[str], origin: str | None) -> _FileVerdict:
    """Judge the log against the file's newest signed checkpoint, reading back from the end only
    as far as needed. (Blocking file reads: run it in a thread. ``tree`` is this verifier's own.)

    Within one history the file only grows by checkpoints that extend the one before, so the
    newest checkpoint matching the log implies every earlier one of that history does.
    """
    verdict = _FileVerdict()
    try:
        lines = file.backwards()
        newest = None
        for line in lines:
            verdict.status = "read"
            newest = read_head(line, keys, origin)
            if newest is not None:
                break
            if not verdict.problems:
                verdict.problems.append(Problem(
                    "anchor", "the newest line of the checkpoint file is not a checkpoint signed by a trusted log key"))
        if newest is None:
            return verdict
        verdict.newest = newest
        if newest.matches(tree):
            _current_history(tree, newest, file, keys, origin, verdict)
        else:
            _diverged(tree, newest, lines, keys, origin, verdict)
    except CheckpointFileError as exc:
        verdict.status = "unreadable"
        verdict.problems.append(Problem("anchor", f"the checkpoint file cannot be read ({exc})"))
    return verdict


def _current_history(tree: MerkleTree, newest: FileHead, file: CheckpointFile, keys: Sequence[str],
                     origin: str | None, verdict: _FileVerdict) -> None:
    """The log matches the newest checkpoint: find the marker that began this history, if any."""
    verdict.anchored = newest.size
    marker = newest if newest.kind != "checkpoint" else None
    before = newest.line.start
    while marker is None:  # the newest signed marker line before it, found by a byte search
        line = file.last_containing(MARKER, before)
        if line is None:
            return
        before = line.start
        head = read_head(line, keys, origin)
        if head is not None and head.kind != "checkpoint":
            marker = head
    lines = file.backwards(before=marker.line.start)
    if not marker.matches(tree):
        verdict.problems.append(Problem("anchor", f"the log no longer matches the restore marker at size "
                                        f"{marker.size} in the checkpoint file"))
        verdict.first_bad_range = (0, marker.size)
        return
    if marker.kind == "acknowledged":
        verdict.acknowledgement = marker
        return
    # An unacknowledged restore: the log must match what the file signed before it, up to N.
    earlier = _newest_at_most(lines, marker.size, keys, origin)
    if earlier is not None and not earlier.matches(tree):
        verdict.problems.append(Problem("anchor", f"the log restored at size {marker.size} does not match "
                                        f"checkpoint {earlier.size} signed before the restore"))
        verdict.first_bad_range = (0, earlier.size)
        return
    verdict.restored = (marker.size, marker.abandoned_size or 0)
    if marker.abandoned_size is not None and marker.abandoned_root is not None:
        verdict.abandoned = (marker.abandoned_size, marker.abandoned_root)
    verdict.problems.append(Problem("restored", f"restored to size {marker.size}; checkpoint "
                                    f"{marker.abandoned_size} > {marker.size} was signed later", marker.size))


def _diverged(tree: MerkleTree, newest: FileHead, lines: Iterator[FileLine], keys: Sequence[str],
              origin: str | None, verdict: _FileVerdict) -> None:
    """The log does not match the newest checkpoint: a restore (the log is an earlier state of
    the file's history) or tampering (anything else)."""
    smallest_later = newest.size
    matched: FileHead | None = None
    for line in lines:
        head = read_head(line, keys, origin)
        if head is None:
            continue
        if head.matches(tree):
            matched = head
            break
        smallest_later = min(smallest_later, head.size)
    verdict.anchored = matched.size if matched is not None else 0
    if smallest_later > tree.size:
        # Fewer records than every checkpoint after the last one it matches: an earlier state.
        verdict.restored = (tree.size, newest.size)
        verdict.abandoned = (newest.size, newest.root)
        verdict.anchored = tree.size  # signed later, as part of a longer log
        verdict.problems.append(Problem("restored", f"restored to size {tree.size}; checkpoint {newest.size} > "
                                        f"{tree.size} was signed later", tree.size))
        return
    if newest.size > tree.size:
        detail = (f"the checkpoint file's newest checkpoint signed {newest.size} records but the log holds "
                  f"{tree.size}, and not as an earlier state of it: records were deleted or changed")
    else:
        detail = f"the log no longer matches the checkpoint file's newest checkpoint (size {newest.size})"
    verdict.problems.append(Problem("anchor", detail))
    verdict.first_bad_range = (verdict.anchored, min(smallest_later, tree.size))


def _newest_at_most(lines: Iterator[FileLine], size: int, keys: Sequence[str], origin: str | None
                    ) -> FileHead | None:
    for line in lines:
        head = read_head(line, keys, origin)
        if head is not None and head.size <= size:
            return head
    return None


async def _apply_file_verdict(conn: AsyncConnection, verdict: _FileVerdict, report: VerifyReport) -> None:
    report.checkpoint_file = verdict.status
    report.file_newest = verdict.newest.size if verdict.newest else None
    report.anchored = max(report.anchored, verdict.anchored)
    for problem in verdict.problems:
        report.add(problem)
    if verdict.first_bad_range is not None and report.first_bad_index is None:
        report.first_bad_range = report.first_bad_range or verdict.first_bad_range
    report.restored = verdict.restored
    report.abandoned = verdict.abandoned
    ack = verdict.acknowledgement
    if ack is not None:
        row = await audit_log.leaf_row(conn, ack.leaf) if ack.leaf is not None and ack.leaf < ack.size else None
        if row is None or row["action"] != RESTORE_ACKNOWLEDGED:
            report.add(Problem("anchor", f"the restore acknowledgement in the checkpoint file cites record "
                               f"{ack.leaf}, which is not an acknowledgement", ack.leaf))
        else:
            report.restore_acknowledged = True


async def _check_anchored(conn: AsyncConnection, report: VerifyReport, before: datetime) -> None:
    """Records older than the checkpoint interval allows must be covered by a signed checkpoint."""
    if report.anchored >= report.size:
        return
    first = await audit_log.first_older_than(conn, report.anchored, before.astimezone(UTC))
    if first is not None:
        report.add(Problem("unanchored", f"records from {first} on are older than the checkpoint interval "
                           "allows and no signed checkpoint covers them", first))
