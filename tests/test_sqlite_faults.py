"""Fault injection on the embedded database: a real server process on a real SQLite file, the
verification endpoint, command-line processes beside it, and SIGKILL. Every write the server
acknowledged (201) survives, the file passes `PRAGMA integrity_check`, and the audit log verifies;
a key rotation and a retention run done from the command line while serving survive the kill too.

The sequence each test runs is the one that lost acknowledged writes when the server opened its
own database file a second time (see tests/test_sqlite_owner.py): after that, any other process
closing the database deleted the server's WAL under it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from tests.serverproc import BackgroundWriter, ServerProcess


def _verify_through_the_api(server: ServerProcess) -> None:
    status, report = server.call("GET", "/api/v1/audit/verify", "kela.tuula")
    assert status == 200 and report["ok"] is True, report


def _cli_ok(server: ServerProcess, *args: str) -> str:
    done = server.cli(*args)
    assert done.returncode == 0, f"consult {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _assert_intact(server: ServerProcess, acked: list[str]) -> None:
    """From other processes, with no server running: every acknowledged consultation is in the
    file, the file is sound, and the audit log verifies."""
    assert server.query("PRAGMA integrity_check") == [("ok",)]
    stored = {row[0] for row in server.query("SELECT id FROM consultations")}
    missing = [cid for cid in acked if cid not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost"
    assert "audit log intact" in _cli_ok(server, "audit", "verify")


def _read_back(server: ServerProcess, acked: list[str]) -> None:
    for cid in acked:
        status, body = server.call("GET", f"/api/v1/consultations/{cid}", "kela.aino")
        assert status == 200 and body["id"] == cid, (status, body)


def test_verify_and_cli_commands_beside_the_server_then_sigkill_lose_nothing(tmp_path: Path):
    """Property: after `GET /audit/verify` and command-line processes opening and closing the
    database, every write acknowledged before a SIGKILL is present after the restart."""
    server = ServerProcess(tmp_path).start()
    try:
        acked = [server.consultation(f"Before verification {n}") for n in range(3)]
        _verify_through_the_api(server)
        assert json.loads(_cli_ok(server, "keys", "status"))["current"] == 1
        assert "audit log intact" in _cli_ok(server, "audit", "verify")
        acked += [server.consultation(f"After the commands {n}") for n in range(3)]
        server.kill()
        _assert_intact(server, acked)
        server.start()
        _read_back(server, acked)
    finally:
        server.stop()
    _assert_intact(server, acked)


def test_key_rotation_beside_the_server_survives_sigkill(tmp_path: Path):
    """Property: a `consult keys rotate` run while the server writes is complete after a SIGKILL and
    restart: every data key is under the new version, its audit record is there, content opens."""
    server = ServerProcess(tmp_path).start()
    try:
        acked = [server.consultation(f"Before rotation {n}") for n in range(3)]
        _verify_through_the_api(server)
        with BackgroundWriter(server) as writer:
            rotated = json.loads(_cli_ok(server, "keys", "rotate"))
        assert rotated["new_version"] == 2 and rotated["rewrapped"] >= 3
        assert writer.failures == [] and writer.acked
        acked += writer.acked + [server.consultation(f"After rotation {n}") for n in range(3)]
        server.kill()
        _assert_intact(server, acked)
        status = json.loads(_cli_ok(server, "keys", "status"))
        assert status["current"] == 2
        assert {v["version"]: v["data_keys"] for v in status["versions"]}[1] == 0
        assert server.query("SELECT count(*) FROM audit_events WHERE action = 'keys.rotate'") == [(1,)]
        server.start()
        _read_back(server, acked)
        status_code, first = server.call("GET", f"/api/v1/consultations/{acked[0]}", "kela.aino")
        assert status_code == 200 and first["question"] == "Before rotation 0"
    finally:
        server.stop()
    _assert_intact(server, acked)


def _backdate_closing(server: ServerProcess, cid: str, days: int) -> None:
    """Move a closing into the past, as the passing of the retention period would."""
    [(closed_at,)] = server.query("SELECT closed_at FROM consultations WHERE id = ?", cid)
    earlier = datetime.fromisoformat(closed_at) - timedelta(days=days)
    conn = sqlite3.connect(server.db_path, timeout=10)
    try:
        with conn:
            conn.execute("UPDATE consultations SET closed_at = ? WHERE id = ?",
                         (earlier.strftime("%Y-%m-%d %H:%M:%S.%f"), cid))
    finally:
        conn.close()


def test_retention_run_beside_the_server_survives_sigkill(tmp_path: Path):
    """Property: a `consult retention run` while serving stays done after a SIGKILL and restart:
    the data key stays destroyed, the consultation reads as shredded (not a 500), and the
    `retention.shred` record stays in a log that verifies."""
    server = ServerProcess(tmp_path).start()
    try:
        due = server.consultation("Past its retention period")
        kept = server.consultation("Still open")
        status, _ = server.call("POST", f"/api/v1/consultations/{due}/close", "kela.aino",
                                {"outcome": "advice_given"})
        assert status == 200
        _backdate_closing(server, due, days=800)
        _verify_through_the_api(server)
        with BackgroundWriter(server) as writer:
            report = json.loads(_cli_ok(server, "retention", "run"))
        assert report["shredded"] == 1, report
        assert writer.failures == []
        acked = [due, kept, *writer.acked, *(server.consultation(f"After retention {n}") for n in range(3))]
        server.kill()
        _assert_intact(server, acked)
        assert server.query("SELECT wrapped IS NULL, destroyed_at IS NOT NULL FROM data_keys WHERE owner = ?",
                            f"consultation:{due}") == [(1, 1)]
        assert server.query("SELECT count(*) FROM audit_events WHERE action = 'retention.shred' "
                            "AND consultation_id = ?", due) == [(1,)]
        server.start()
        _read_back(server, acked)
        status, gone = server.call("GET", f"/api/v1/consultations/{due}", "kela.aino")
        assert status == 200 and gone["content_destroyed"] is True and gone["question"] == ""
        status, open_one = server.call("GET", f"/api/v1/consultations/{kept}", "kela.aino")
        assert status == 200 and open_one["question"] == "Still open"
    finally:
        server.stop()
    _assert_intact(server, acked)
