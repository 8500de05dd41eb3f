"""`consult backup PATH`: a consistent online copy of the embedded database taken while the server
writes, with a manifest beside it; restored by copying it into place, it verifies and serves."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import time
from pathlib import Path

from consult.storage import migrate
from tests.serverproc import BackgroundWriter, ServerProcess


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_backup_under_write_load_restores_verifies_and_serves(tmp_path: Path):
    """Property: every write acknowledged before `consult backup` started is in the copy, the copy is
    one consistent state (each consultation with its audit record, a contiguous log), and the
    copy, put in place of the database, verifies and serves the data back."""
    server = ServerProcess(tmp_path, CONSULT_AUDIT_CHECKPOINT_SECONDS="1").start()
    target = tmp_path / "backups" / "konsulta-backup.db"
    target.parent.mkdir()
    try:
        acked = [server.consultation(f"Before the backup {n}") for n in range(5)]
        deadline = time.monotonic() + 30
        while server.query("SELECT count(*) FROM audit_checkpoints") == [(0,)]:  # a signed checkpoint
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with BackgroundWriter(server) as writer:
            while len(writer.acked) < 20:
                server.consultation("Load")  # let the load get going
            before = list(writer.acked)  # acknowledged before the backup starts
            taken = server.cli("backup", str(target))
            during = writer.acked[len(before):]
        acked += before
        assert taken.returncode == 0, taken.stdout + taken.stderr
        assert writer.failures == [] and during, "no write was acknowledged while the backup ran"
        live_keks = server.query("SELECT version, fingerprint, status FROM deployment_keks ORDER BY version")
        # A write after the backup, and a checkpoint signed over it, before the crash: the restore
        # then rolls back records a checkpoint outside the database already vouched for.
        server.consultation("After the backup")
        backed_up = json.loads(taken.stdout)["audit_log"]["size"]
        deadline = time.monotonic() + 30
        while (server.query("SELECT max(tree_size) FROM audit_checkpoints")[0][0] or 0) <= backed_up:
            assert time.monotonic() < deadline, "no checkpoint was signed after the backup"
            time.sleep(0.2)
    finally:
        server.kill()

    digest = hashlib.sha256(target.read_bytes()).hexdigest()  # before anything opens the copy
    printed = json.loads(taken.stdout)
    manifest = json.loads((tmp_path / "backups" / "konsulta-backup.db.manifest.json").read_text())
    assert printed["backup"] == str(target) and {k: printed[k] for k in manifest} == manifest
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(printed["manifest"]).stat().st_mode) == 0o600
    assert not list(target.parent.glob(".*partial*"))

    # The copy is sound and one consistent state.
    assert _rows(target, "PRAGMA integrity_check") == [("ok",)]
    stored = {r[0] for r in _rows(target, "SELECT id FROM consultations")}
    recorded = {r[0] for r in _rows(target, "SELECT consultation_id FROM audit_events "
                                            "WHERE action = 'consultation.create'")}
    assert set(acked) <= stored and stored == recorded
    indices = [r[0] for r in _rows(target, "SELECT leaf_index FROM audit_events ORDER BY leaf_index")]
    assert indices == list(range(len(indices)))

    # The manifest describes the copy.
    assert manifest["schema_revision"] == migrate.head()
    assert manifest["deployment"] == "local" and manifest["audit_origin"] == "konsulta.local/audit"
    assert [(k["version"], k["fingerprint"], k["status"]) for k in manifest["keys"]["key_encryption_keys"]] \
        == live_keks
    [(signing_fp, blind_fp)] = _rows(target, "SELECT audit_key_fingerprint, blind_index_fingerprint FROM deployment")
    assert manifest["keys"]["audit_signing_key_fingerprint"] == signing_fp
    assert manifest["keys"]["blind_index_fingerprint"] == blind_fp
    assert manifest["audit_log"]["size"] == len(indices)
    [(size, root)] = _rows(target, "SELECT tree_size, root_hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
    checkpoint = manifest["audit_log"]["checkpoint"]
    assert (checkpoint["tree_size"], checkpoint["root_hash"]) == (size, bytes(root).hex())
    assert manifest["database"]["bytes"] == target.stat().st_size
    assert manifest["database"]["sha256"] == digest

    # Restore: the copy in place of the database (and of its WAL and shared memory).
    for suffix in ("", "-wal", "-shm"):
        Path(f"{server.db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(target, server.db_path)
    # The writes after the backup are gone, and the checkpoint file outside the database still
    # holds a checkpoint over them: verify says so, as a restore, until the operator accepts it.
    verified = server.cli("audit", "verify")
    assert verified.returncode == 1 and f"restored to size {len(indices)}; checkpoint " in verified.stdout, \
        verified.stdout + verified.stderr
    assert "TAMPERED" not in verified.stdout
    accepted = server.cli("audit", "acknowledge-restore", "--reason",
                          "Restore test: the backup taken under write load was put back.")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    verified = server.cli("audit", "verify")
    assert verified.returncode == 0 and "audit log intact" in verified.stdout, verified.stdout + verified.stderr
    server.start()
    try:
        for cid in acked:
            status, body = server.call("GET", f"/api/v1/consultations/{cid}", "kela.aino")
            assert status == 200, (status, body)
        status, first = server.call("GET", f"/api/v1/consultations/{acked[0]}", "kela.aino")
        assert first["question"] == "Before the backup 0"
        assert server.consultation("After the restore")
    finally:
        server.stop()


def test_backup_never_overwrites(tmp_path: Path):
    server = ServerProcess(tmp_path)
    first = server.cli("init")
    assert first.returncode == 0, first.stderr
    target = tmp_path / "b.db"
    assert server.cli("backup", str(target)).returncode == 0
    before = target.read_bytes()
    again = server.cli("backup", str(target))
    assert again.returncode == 1 and again.stderr.startswith("refused:") and "exists" in again.stderr
    assert target.read_bytes() == before
    missing_dir = server.cli("backup", str(tmp_path / "nowhere" / "b.db"))
    assert missing_dir.returncode == 1 and "not a directory" in missing_dir.stderr


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path):
    server = ServerProcess(tmp_path, CONSULT_DATABASE_URL="postgresql+asyncpg://konsulta@127.0.0.1:1/konsulta")
    result = server.cli("backup", str(tmp_path / "b.db"))
    assert result.returncode == 2
    assert "pg_dump" in result.stderr and "Backup and restore" in result.stderr
    assert not (tmp_path / "b.db").exists()
