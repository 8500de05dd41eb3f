"""`consult audit verify` on a real SQLite file written by the running service: intact → 0; each
kind of tampering (changed, deleted, inserted, reordered records; a forged or edited checkpoint;
a changed written reason) → 1 naming the first bad entry; usage errors → 2."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from consult.audit.checkpoint import checkpoint_body, sign_note, verifier_key
from consult.audit.entry import encode
from consult.crypto import signing
from consult.http import keys
from tests.conftest import ROOT, Api
from tests.synthetic import hetu

PO = "kela.tuula"


def _verify(db: Path, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_DATA_DIR": str(work),
                "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "CONSULT_POLICY_DIR": str(ROOT / "policies")})
    return subprocess.run([sys.executable, "-m", "consult", "audit", "verify", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
async def written(api: Api, settings, tmp_path: Path) -> dict:
    """A log written through the API, with a signed checkpoint, a later unsigned tail and a reason."""
    ref = await api.register(hetu(3))
    created = await api.open_consultation(purpose="tt.income_calculation", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    for i in range(3):
        await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
            "text": f"benefits {i}", "data": [{"category": "income.kela_benefit", "value": f"AMOUNT-{i}"}]})
    note = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", PO, expect=200,
                   json={"justification": "Complaint 2026-9 about this exchange needs review."})
    await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    signed = int(note.split("\n")[1])
    async with api.client.app[keys.DB].read() as conn:
        from consult.storage import audit_log
        size = await audit_log.count(conn)
    await api.client.close()  # shutdown signs a last checkpoint over everything
    db = Path(settings.database_url.split("///", 1)[1])
    return {"db": db, "work": tmp_path, "note": note, "signed": signed, "size": size}


def _tampered(written: dict, name: str, change: Callable[[sqlite3.Connection], None]) -> Path:
    copy = written["work"] / f"{name}.db"
    src = sqlite3.connect(written["db"])
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.isolation_level = None
    change(dst)
    dst.close()
    return copy


def _row(con: sqlite3.Connection, index: int) -> dict:
    con.row_factory = sqlite3.Row
    row = dict(con.execute("SELECT * FROM audit_events WHERE leaf_index = ?", (index,)).fetchone())
    con.row_factory = None
    return row


def _rehash(con: sqlite3.Connection, index: int) -> None:
    """What a careful tamperer does: recompute the stored leaf hash of an edited row."""
    row = _row(con, index)
    at = row["at"]
    row.update(at=f"{at[:10]}T{at[11:]}Z", categories=json.loads(row["categories"]),
               flags=json.loads(row["flags"]) if row["flags"] else [])
    leaf = hashlib.sha256(b"\x00" + encode(row)).digest()
    con.execute("UPDATE audit_events SET leaf_hash = ? WHERE leaf_index = ?", (leaf, index))


def test_intact_log_verifies(written):
    result = _verify(written["db"], written["work"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout and "2 signed checkpoints" in result.stdout
    report = json.loads(_verify(written["db"], written["work"], "--json").stdout)
    assert report["ok"] and report["checkpoints_verified"] == 2 and report["size"] == written["size"]


def test_changed_record_is_named(written):
    db = _tampered(written, "changed", lambda c: c.execute(
        "UPDATE audit_events SET actor_id = 'someone.else' WHERE leaf_index = 3"))
    result = _verify(db, written["work"])
    assert result.returncode == 1 and "first bad entry is leaf 3" in result.stdout, result.stdout


def test_changed_record_with_recomputed_hash_is_caught_by_the_signed_checkpoint(written):
    def change(c: sqlite3.Connection) -> None:
        c.execute("UPDATE audit_events SET outcome = 'deny' WHERE leaf_index = 2")
        _rehash(c, 2)

    result = _verify(_tampered(written, "rehashed", change), written["work"])
    assert result.returncode == 1, result.stdout
    assert f"among leaves 0..{written['signed'] - 1}" in result.stdout


def test_deleted_record_is_named(written):
    db = _tampered(written, "deleted", lambda c: c.execute("DELETE FROM audit_events WHERE leaf_index = 4"))
    result = _verify(db, written["work"])
    assert result.returncode == 1 and "first bad entry is leaf 4" in result.stdout
    assert "missing" in result.stdout


def test_deleted_tail_is_caught_even_with_the_head_adjusted(written):
    def change(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM audit_events WHERE leaf_index >= ?", (written["size"] - 2,))
        c.execute("UPDATE audit_head SET size = size - 2")

    result = _verify(_tampered(written, "tail", change), written["work"])
    assert result.returncode == 1 and "records were deleted" in result.stdout


def test_inserted_record_is_named(written):
    def change(c: sqlite3.Connection) -> None:
        c.execute("DROP INDEX ix_audit_leaf_index")
        row = _row(c, 2)
        row.update(id="00000000-0000-4000-8000-000000000000", seq=None, actor_id="forger")
        names = [k for k in row if k != "seq"]
        c.execute(f"INSERT INTO audit_events ({','.join(names)}) VALUES ({','.join('?' * len(names))})",
                  [row[k] for k in names])
        _rehash(c, 2)  # a consistent-looking forged row: its own hash is right

    result = _verify(_tampered(written, "inserted", change), written["work"])
    assert result.returncode == 1 and "first bad entry is leaf 2" in result.stdout, result.stdout
    assert "duplicate" in result.stdout


def test_reordered_records_are_named(written):
    def change(c: sqlite3.Connection) -> None:
        c.execute("DROP INDEX ix_audit_leaf_index")
        c.execute("UPDATE audit_events SET leaf_index = CASE leaf_index WHEN 5 THEN 6 ELSE 5 END "
                  "WHERE leaf_index IN (5, 6)")

    result = _verify(_tampered(written, "reordered", change), written["work"])
    assert result.returncode == 1 and "first bad entry is leaf 5" in result.stdout, result.stdout


def test_forged_checkpoint_is_rejected(written):
    """A checkpoint signed by any other key, over a rewritten root, does not pass for the log's."""
    def change(c: sqlite3.Connection) -> None:
        seq, size, origin = c.execute("SELECT seq, tree_size, origin FROM audit_checkpoints ORDER BY seq").fetchone()
        root = hashlib.sha256(b"rewritten history").digest()
        forged = sign_note(checkpoint_body(origin, size, root), origin, signing.generate_signing_key())
        c.execute("UPDATE audit_checkpoints SET note = ?, root_hash = ? WHERE seq = ?", (forged, root, seq))

    result = _verify(_tampered(written, "forged", change), written["work"])
    assert result.returncode == 1 and "not signed by a trusted log key" in result.stdout


def test_edited_checkpoint_row_is_rejected(written):
    db = _tampered(written, "cprow", lambda c: c.execute(
        "UPDATE audit_checkpoints SET tree_size = tree_size - 1 WHERE seq = 1"))
    result = _verify(db, written["work"])
    assert result.returncode == 1 and "differs from its signed text" in result.stdout


def test_changed_written_reason_is_detected(written):
    db = _tampered(written, "reason", lambda c: c.execute("UPDATE audit_reasons SET text = 'nothing to see'"))
    result = _verify(db, written["work"])
    assert result.returncode == 1 and "written reason" in result.stdout


def test_a_checkpoint_kept_elsewhere_catches_a_rewrite_of_the_stored_ones(written):
    """A witness's copy: someone with the database and the file system deletes every stored
    checkpoint, rewrites a record consistently and removes the checkpoint file too, but the
    checkpoint the privacy officer saved still pins the old root."""
    saved = written["work"] / "saved-checkpoint.txt"
    saved.write_text(written["note"], encoding="utf-8")

    def change(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM audit_checkpoints")
        c.execute("UPDATE audit_events SET client_ref = 'c-other' WHERE leaf_index = 1")
        _rehash(c, 1)

    db = _tampered(written, "witness", change)
    assert _verify(db, written["work"]).returncode == 1  # the checkpoint file tells
    (written["work"] / "audit-checkpoints.jsonl").unlink()
    assert _verify(db, written["work"]).returncode == 0  # without it, nothing local does
    result = _verify(db, written["work"], "--checkpoint", str(saved))
    assert result.returncode == 1 and "external checkpoint" in result.stdout


def test_third_party_verifies_with_the_public_key_only(written, tmp_path):
    seed = signing.load_signing_key(written["work"] / "audit-signing.key")
    vkey = verifier_key("konsulta.local/audit", signing.public_key(seed))
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    copy = elsewhere / "copy.db"
    shutil.copy(written["db"], copy)
    result = _verify(copy, elsewhere, "--verifier-key", vkey)
    assert result.returncode == 0, result.stdout + result.stderr
    other = verifier_key("konsulta.local/audit", signing.public_key(signing.generate_signing_key()))
    assert _verify(copy, elsewhere, "--verifier-key", other).returncode == 1


def test_usage_errors_exit_2(written, tmp_path):
    assert _verify(tmp_path / "nothing.db", written["work"]).returncode == 2
    assert _verify(written["db"], written["work"], "--verifier-key", "garbage").returncode == 2
    assert _verify(written["db"], tmp_path / "no-key-here").returncode == 2
    assert _verify(written["db"], written["work"], "--checkpoint", str(tmp_path / "missing.txt")).returncode == 2
