"""Appending to the Merkle log inside the act's own transaction: contiguous leaf indices from 0,
the RFC 9162 leaf hash of a canonical entry, and nothing left behind by a unit that fails after
writing its record — on SQLite and, when present, PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from sqlalchemy import text

from consult.audit.entry import encode
from consult.audit.log import AuditLog, CheckpointSigner
from consult.audit.records import AuditRecord, record
from consult.audit.verify import verify_log
from consult.crypto import signing
from consult.model import Principal
from consult.model.context import RequestContext
from consult.storage import audit_log, migrate
from consult.storage.db import Database
from tests.audit import rfc9162_reference as rfc

ACTOR = Principal("kela.aino", "kela", frozenset({"advisor"}), "Aino Neuvoja")
CTX = RequestContext("req-1", "192.0.2.1")
AT = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC)


def test_canonical_entry_known_answer():
    """The entry format is a contract with third-party verifiers: a fixed row, fixed bytes and hash."""
    row = {
        "leaf_index": 7, "id": "6f1d1f0e-9c1a-4c59-9d8e-0c6f1b1e2a3b", "at": AT, "actor_id": "kela.aino",
        "actor_org": "kela", "actor_role": "advisor", "action": "disclose", "outcome": "permit",
        "consultation_id": "c1", "message_id": "m1", "client_ref": "c-123", "categories": ["income.kela_benefit"],
        "purpose": "tt.income_calculation", "basis": "statute:r1", "rule_id": "r1", "policy_version": "v1",
        "consent_id": None, "consent_version": None, "subject_user": "vantaa.sanna", "recipient_org": "vantaa",
        "recipient_role": "expert", "flags": None, "reason_id": None, "reason_digest": None,
        "request_id": "req-1", "source": "192.0.2.1",
    }
    entry = encode(row)
    assert entry == (
        b'[1,7,"6f1d1f0e-9c1a-4c59-9d8e-0c6f1b1e2a3b","2026-03-02T08:30:15.123456Z","kela.aino","kela",'
        b'"advisor","disclose","permit","c1","m1","c-123",["income.kela_benefit"],"tt.income_calculation",'
        b'"statute:r1","r1","v1",null,null,"vantaa.sanna","vantaa","expert",[],null,null,"req-1","192.0.2.1"]'
    )
    assert hashlib.sha256(b"\x00" + entry).hexdigest() == rfc.HASH(b"\x00" + entry).hex()
    # A naive timestamp is UTC (SQLite returns them so): same bytes.
    assert encode({**row, "at": AT.replace(tzinfo=None)}) == entry


async def _exercise(url: str) -> None:
    db = Database(url)
    await db.start()
    seed = signing.generate_signing_key()
    signer = CheckpointSigner("konsulta.test/audit", seed)
    try:
        async def good(conn, i: int) -> int:
            await conn.execute(text("INSERT INTO directory_users VALUES (:u, 'kela', '[]', 'N', :t)"),
                               {"u": f"user{i}", "t": AT})
            # Every other unit asks for its leaf index (written at once); on PostgreSQL the others'
            # records are appended at the end of their group commit, after those written at once.
            return await record(conn, ACTOR, CTX, AT, [AuditRecord(action="test.act", subject_user=f"user{i}"),
                                                        AuditRecord(action="test.act2")], now=i % 2 == 0)

        async def crashes(conn) -> None:
            await conn.execute(text("INSERT INTO directory_users VALUES ('ghost', 'kela', '[]', 'N', :t)"),
                               {"t": AT})
            await record(conn, ACTOR, CTX, AT, [AuditRecord(action="test.ghost")] * 3)
            raise RuntimeError("crash after the audit insert")

        units = [db.write(lambda c, i=i: good(c, i)) for i in range(30)]
        units.insert(7, db.write(crashes))
        units.insert(19, db.write(crashes))
        results = await asyncio.gather(*units, return_exceptions=True)
        firsts = sorted(r for r in results if isinstance(r, int) and r >= 0)
        if db.is_sqlite:  # every record written at once
            assert firsts == list(range(0, 60, 2))  # contiguous, no gap where the crashes were
        else:  # those written at once: their own indices; the others' came with the commit
            assert len(firsts) == 15 and all(f % 2 == 0 for f in firsts) and len(set(firsts)) == 15
            assert sum(r == -1 for r in results) == 15
        assert sum(isinstance(r, RuntimeError) for r in results) == 2
        assert db.commits < 32  # they shared commits

        async with db.read() as conn:
            users = (await conn.execute(text("SELECT user_id FROM directory_users"))).scalars().all()
            assert "ghost" not in users and len(users) == 30  # no act without its record ...
            rows = []
            async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
                rows += part
            assert not [r for r in rows if r["action"] == "test.ghost"]  # ... no record without its act
            assert [r["leaf_index"] for r in rows] == list(range(60))
            assert await audit_log.head_size(conn) == 60
            for r in rows:
                assert bytes(r["leaf_hash"]) == hashlib.sha256(b"\x00" + encode(r)).digest()
            log = AuditLog(signer)
            assert await log.sync(conn) == 60
            assert log.tree.root() == rfc.MTH([encode(r) for r in rows])
            cp = log.sign_current(AT)
        await db.write(lambda conn: audit_log.insert_checkpoint(conn, log.checkpoint_row(cp)))
        async with db.read() as conn:
            report = await verify_log(conn, [signer.verifier_key], origin=signer.origin)
        assert report.ok and report.size == 60 and report.checkpoints_verified == 1, report.as_json()
    finally:
        await db.close()


async def test_failed_units_in_a_batch_leave_no_gap_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    await _exercise(url)


async def test_failed_units_in_a_batch_leave_no_gap_postgresql(pg_migrated):
    """The same on the scale-out store (its own append path and timestamp rendering)."""
    await _exercise(pg_migrated)


async def test_tree_follows_commits_only(tmp_path):
    """The in-memory tree reads committed records; an uncommitted unit is invisible to it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    try:
        log = AuditLog(CheckpointSigner("konsulta.test/audit", signing.generate_signing_key()))
        seen_inside: list[int] = []

        async def unit(conn) -> None:
            await record(conn, ACTOR, CTX, AT, [AuditRecord(action="test.act")])
            async with db.read() as reader:
                seen_inside.append(await log.sync(reader))

        await db.write(unit)
        assert seen_inside == [0]
        async with db.read() as conn:
            assert await log.sync(conn) == 1
    finally:
        await db.close()
