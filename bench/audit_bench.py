"""Benchmark of the tamper-evident audit log (docs/capabilities.md, Figures): append rate through the group-committing
writer, full verification of 1,000,000 records, and the client access report over 1,000,000
records — each next to a reference measured in the same run:

- append: bare sqlite3 inserting the same rows, the same number per commit (WAL, synchronous=FULL);
- verify: a bare hashlib loop hashing the same canonical entries (no database, no checks);
- access report: a bare sqlite3 SELECT of the same client's rows through the same index.

Run: python bench/audit_bench.py [--records 1000000] [--append 20000] [--reports 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.audit.checkpoint import verifier_key  # noqa: E402
from consult.audit.entry import encode  # noqa: E402
from consult.audit.log import AuditLog, CheckpointSigner  # noqa: E402
from consult.audit.records import AuditRecord, record  # noqa: E402
from consult.audit.verify import verify_log  # noqa: E402
from consult.crypto import signing  # noqa: E402
from consult.model import FixedClock, Principal  # noqa: E402
from consult.model.audit_fields import FIELDS, LIST_FIELDS, ROW_FIELDS  # noqa: E402
from consult.model.context import RequestContext  # noqa: E402
from consult.services.anomalies import AnomalyRules  # noqa: E402
from consult.services.audit import AuditTrail  # noqa: E402
from consult.storage import migrate  # noqa: E402
from consult.storage.db import Database  # noqa: E402

ORIGIN = "konsulta.bench/audit"
COLUMNS = (*FIELDS, *ROW_FIELDS)  # the one field list (consult/model/audit_fields.py)
ACTOR = Principal("kela.bench", "kela", frozenset({"advisor"}), "Bench Advisor")
CTX = RequestContext(request_id="bench-request-0001", source="10.0.0.1")


def _disclosure(i: int) -> AuditRecord:
    return AuditRecord(
        action="disclose", consultation_id=str(uuid.UUID(int=i // 4)), message_id=str(uuid.UUID(int=i)),
        client_ref=f"c-{i % 50_000:08d}", categories=("income.kela_benefit",), purpose="tt.income_calculation",
        basis="statute:kela-income-for-social-assistance", rule_id="kela-income-for-social-assistance",
        policy_version="3f1c8a2e9b", subject_user="vantaa.sanna", recipient_org="vantaa", recipient_role="expert",
    )


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# -- append -----------------------------------------------------------------------------------------


async def bench_append(path: Path, total: int, per_unit: int, writers: int) -> float:
    """Records/s through Database.write units, each recording ``per_unit`` records."""
    await asyncio.to_thread(migrate.upgrade, _sqlite_url(path))
    db = Database(_sqlite_url(path))
    await db.start()
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    units = total // per_unit
    records = [_disclosure(i) for i in range(per_unit)]

    async def writer(k: int) -> None:
        for _ in range(k, units, writers):
            await db.write(lambda conn: record(conn, ACTOR, CTX, at, records))

    start = time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(writers)))
    elapsed = time.perf_counter() - start
    commits = db.commits
    await db.close()
    print(f"    ({commits} commits, {units / commits:.0f} units per commit)")
    return units * per_unit / elapsed


async def bench_append_alone(path: Path, total: int, calls_per_commit: int) -> float:
    """Records/s of the log's own append (``record`` with one record per call), many calls per
    transaction: the cost the audit log adds to each write, without the writer's per-unit work."""
    await asyncio.to_thread(migrate.upgrade, _sqlite_url(path))
    db = Database(_sqlite_url(path))
    await db.start()
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    records = [_disclosure(0)]

    async def unit(conn) -> None:  # type: ignore[no-untyped-def]
        for _ in range(calls_per_commit):
            await record(conn, ACTOR, CTX, at, records)

    start = time.perf_counter()
    for _ in range(total // calls_per_commit):
        await db.write(unit)
    elapsed = time.perf_counter() - start
    await db.close()
    return total / elapsed


def reference_append(path: Path, total: int, per_commit: int) -> float:
    """Bare sqlite3: the same rows, ``per_commit`` per transaction, WAL and synchronous=FULL."""
    migrate.upgrade(_sqlite_url(path))
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    rows = list(_rows(total, start=datetime(2026, 1, 5, tzinfo=UTC)))
    sql = f"INSERT INTO audit_events ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
    start = time.perf_counter()
    for i in range(0, total, per_commit):
        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql, rows[i:i + per_commit])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return total / elapsed


# -- a million records ------------------------------------------------------------------------------


def _rows(n: int, *, start: datetime):
    """Synthetic records as stored rows, with their real leaf hashes (entries kept for the reference)."""
    rnd = random.Random(7)
    actions = ("disclose", "messages.read", "consultation.read", "message.create")
    for i in range(n):
        at = start + timedelta(seconds=30 * i)
        action = actions[i % 4]
        row = {
            "id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)), "at": at,
            "actor_id": f"kela.user{i % 2000}", "actor_org": "kela", "actor_role": "advisor", "action": action,
            "outcome": "permit", "consultation_id": str(uuid.UUID(int=i // 8)), "message_id": None,
            "client_ref": f"c-{i % 50_000:08d}", "categories": ["income.kela_benefit"],
            "purpose": "tt.income_calculation", "basis": "statute:kela-income-for-social-assistance",
            "rule_id": "kela-income-for-social-assistance", "policy_version": "3f1c8a2e9b",
            "consent_id": None, "consent_version": None,
            "subject_user": "vantaa.sanna" if action == "disclose" else None,
            "recipient_org": "vantaa" if action == "disclose" else None,
            "recipient_role": "expert" if action == "disclose" else None,
            "flags": [], "reason_id": None, "reason_digest": None, "request_id": f"req-{i:09d}",
            "source": "10.0.0.1", "subject_digest": None, "leaf_index": i, "entry_version": 2,
        }
        row["leaf_hash"] = hashlib.sha256(b"\x00" + encode(row)).digest()
        yield tuple(
            at.strftime("%Y-%m-%d %H:%M:%S.%f") if c == "at"
            else json.dumps(row[c]) if c in LIST_FIELDS else row[c]
            for c in COLUMNS
        )


def build_million(path: Path, n: int, seed: bytes) -> None:
    migrate.upgrade(_sqlite_url(path))
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    sql = f"INSERT INTO audit_events ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
    con.execute("BEGIN")
    batch: list[tuple] = []
    leaves = []
    for row in _rows(n, start=datetime(2024, 6, 1, tzinfo=UTC)):
        batch.append(row)
        leaves.append(row[COLUMNS.index("leaf_hash")])
        if len(batch) == 50_000:
            con.executemany(sql, batch)
            batch.clear()
    con.executemany(sql, batch)
    con.execute("UPDATE audit_head SET size = ?", (n,))
    # Two signed checkpoints, as the service keeps them.
    from consult.audit.merkle import MerkleTree

    tree = MerkleTree(leaves)
    signer = CheckpointSigner(ORIGIN, seed)
    for size in (n // 2, n):
        root = tree.root_at(size)
        con.execute(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, origin, verifier_key, note, signed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (size, root, ORIGIN, signer.verifier_key, signer.sign(size, root), "2026-01-01 00:00:00.000000"),
        )
    con.execute("COMMIT")
    con.close()


async def bench_verify(path: Path, vkey: str) -> tuple[float, float]:
    db = Database(_sqlite_url(path))
    try:
        async with db.read() as conn:
            start, cpu = time.perf_counter(), time.process_time()
            report = await verify_log(conn, [vkey], origin=ORIGIN)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await db.close()
    assert report.ok, report.as_json()
    return elapsed, cpu


def reference_verify(n: int) -> float:
    """A bare hashlib loop: SHA-256(0x00 ‖ entry) over n entries as long as the real ones."""
    sample = _sample_entry()
    blobs = [bytes(random.getrandbits(8) for _ in range(len(sample))) for _ in range(1000)]
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for i in range(n):
        sha256(b"\x00" + blobs[i % 1000]).digest()
    return time.perf_counter() - start


def _sample_entry() -> bytes:
    row = dict(zip(COLUMNS, next(_rows(1, start=datetime(2024, 6, 1, tzinfo=UTC)))))
    row.update(categories=["income.kela_benefit"], flags=[], at="2024-06-01T00:00:00.000000Z")
    return encode(row)


async def bench_report(path: Path, seed: bytes, runs: int) -> tuple[list[float], int, float]:
    db = Database(_sqlite_url(path))
    await db.start()
    try:
        log = AuditLog(CheckpointSigner(ORIGIN, seed))
        clock = FixedClock(datetime(2026, 4, 1, tzinfo=UTC))
        trail = AuditTrail(db, log, None, clock, AnomalyRules())  # type: ignore[arg-type]
        start = time.perf_counter()
        await trail.load()
        load_time = time.perf_counter() - start
        officer = Principal("kela.po", "kela", frozenset({"privacy_officer"}), "Bench Officer")
        times, count = [], 0
        for i in range(runs):
            ref = f"c-{(i * 7919) % 50_000:08d}"
            start = time.perf_counter()
            report = await trail.access_report(officer, ref, since=None, until=None, reason=None, ctx=CTX)
            times.append(time.perf_counter() - start)
            count = len(report["processing"]) + len(report["disclosures"])
        return times, count, load_time
    finally:
        await db.close()


def reference_report(path: Path, runs: int) -> list[float]:
    con = sqlite3.connect(path)
    times = []
    for i in range(runs):
        ref = f"c-{(i * 7919) % 50_000:08d}"
        start = time.perf_counter()
        con.execute("SELECT * FROM audit_events WHERE client_ref = ? AND at >= ? ORDER BY at",
                    (ref, "2024-03-31 00:00:00.000000")).fetchall()
        times.append(time.perf_counter() - start)
    con.close()
    return times


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"p50 {statistics.median(ordered) * 1000:.2f} ms, "
            f"p90 {ordered[int(len(ordered) * 0.9) - 1] * 1000:.2f} ms")


def main() -> None:
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2-core machine)")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--append", type=int, default=20_000)
    parser.add_argument("--reports", type=int, default=50)
    args = parser.parse_args()
    seed = signing.generate_signing_key()
    vkey = verifier_key(ORIGIN, signing.public_key(seed))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"append, {args.append} records (target >= 10,000 records/s)")
        for per_unit, writers in ((1, 64), (8, 32)):
            rate = asyncio.run(bench_append(work / f"append-{per_unit}.db", args.append, per_unit, writers))
            ref = reference_append(work / f"ref-{per_unit}.db", args.append, per_unit * writers)
            print(f"  service, {per_unit} record(s) per unit, {writers} writers: {rate:,.0f} records/s; "
                  f"bare sqlite3, {per_unit * writers} rows per commit: {ref:,.0f} rows/s "
                  f"(service at {rate / ref:.0%} of the reference)")

        rate = asyncio.run(bench_append_alone(work / "alone.db", args.append, 512))
        ref = reference_append(work / "ref-alone.db", args.append, 512)
        print(f"  the log's own append (one record per call, 512 calls per commit): {rate:,.0f} records/s; "
              f"bare sqlite3, 512 rows per commit: {ref:,.0f} rows/s (at {rate / ref:.0%} of the reference)")

        n = args.records
        million = work / "million.db"
        start = time.perf_counter()
        build_million(million, n, seed)
        print(f"built {n:,} records with two signed checkpoints in {time.perf_counter() - start:.1f} s")

        elapsed, cpu = asyncio.run(bench_verify(million, vkey))
        ref = reference_verify(n)
        print(f"verify {n:,} records (target <= 15 s): {elapsed:.2f} s wall, {cpu:.2f} s CPU "
              f"({n / elapsed:,.0f} records/s); bare hashlib loop over same-size entries: {ref:.2f} s "
              f"(verify = {elapsed / ref:.1f}x the bare hashing)")

        times, count, load_time = asyncio.run(bench_report(million, seed, args.reports))
        ref_times = reference_report(million, args.reports)
        print(f"tree load at start-up over {n:,} records: {load_time:.2f} s")
        print(f"client access report over {n:,} records (target <= 100 ms), {count} records per client, "
              f"logged and committed: {_ms(times)}; bare sqlite3 SELECT of the same rows: {_ms(ref_times)}")


if __name__ == "__main__":
    main()
