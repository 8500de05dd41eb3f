"""The log is anchored outside the database: what someone with database access alone does to the
log — delete the stored checkpoints and rewrite a record with its hash recomputed, delete the last
checkpoint and cut the log back, delete a written reason — is caught by `consult audit verify`
against the checkpoint file the service keeps beside the database."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime

from consult.audit.entry import encode
from consult.http import keys
from consult.http.app import create_app
from consult.model.clock import FixedClock
from consult.storage import audit_log
from tests.audit_log.test_audit_log_tamper import _rehash, _tampered, _verify, written  # noqa: F401
from tests.conftest import Api
from tests.synthetic import hetu

PO = "kela.tuula"


def test_rewrite_after_deleting_every_stored_checkpoint_is_caught(written):  # noqa: F811
    """Database access alone: every checkpoint row deleted and a record rewritten with its leaf hash
    recomputed. The stored rows are self-consistent; only the external checkpoint tells."""
    def change(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM audit_checkpoints")
        c.execute("UPDATE audit_events SET outcome = 'deny' WHERE leaf_index = 2")
        _rehash(c, 2)

    result = _verify(_tampered(written, "no-checkpoints", change), written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TAMPERED" in result.stdout and "first bad entry" in result.stdout, result.stdout


def test_deleting_the_last_checkpoint_and_cutting_the_log_back_is_caught(written):  # noqa: F811
    """Database access alone: the newest checkpoint row deleted and the log cut back to the size of
    the one before it, head adjusted. The database now agrees with itself."""
    signed = written["signed"]

    def change(c: sqlite3.Connection) -> None:
        (seq,) = c.execute("SELECT max(seq) FROM audit_checkpoints").fetchone()
        c.execute("DELETE FROM audit_checkpoints WHERE seq = ?", (seq,))
        c.execute("DELETE FROM audit_events WHERE leaf_index >= ?", (signed,))
        c.execute("UPDATE audit_head SET size = ?", (signed,))

    result = _verify(_tampered(written, "cut-back", change), written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"leaf {signed}" in result.stdout, result.stdout


def test_deleting_a_break_glass_reason_is_caught(written):  # noqa: F811
    """Database access alone: the written justification of a break-glass access deleted."""
    db = _tampered(written, "no-reason", lambda c: c.execute("DELETE FROM audit_reasons"))
    result = _verify(db, written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "written reason" in result.stdout, result.stdout


# -- verify against the checkpoint file: through the API and the command line -----------------------


async def _sql(api, *statements: tuple[str, tuple]) -> None:
    """What someone with database access alone does, through the service's own connection."""
    async def unit(conn) -> None:
        for sql, params in statements:
            await conn.exec_driver_sql(sql, params)

    await api.client.app[keys.DB].write(unit)


async def _leaf_hash_of(api, index: int) -> bytes:
    async with api.client.app[keys.DB].read() as conn:
        row = await audit_log.leaf_row(conn, index)
    return hashlib.sha256(b"\x00" + encode(row)).digest()


async def test_api_verify_checks_the_newest_checkpoint_of_the_file(api):
    """GET /audit/verify fails, keeping its fields, when database access alone rewrote a record
    consistently and deleted every stored checkpoint."""
    ref = await api.register(hetu(4))
    await api.open_consultation(client_ref=ref)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    ok = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert ok["ok"] and ok["state"] == "intact" and ok["checkpoint_file"]["status"] == "read"
    await _sql(api, ("DELETE FROM audit_checkpoints", ()),
               ("UPDATE audit_events SET outcome = 'deny' WHERE leaf_index = 1", ()))
    await _sql(api, ("UPDATE audit_events SET leaf_hash = ? WHERE leaf_index = 1", (await _leaf_hash_of(api, 1),)))
    report = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert not report["ok"] and report["state"] == "tampered"
    assert {"ok", "size", "root_hash", "first_bad_index", "first_bad_range", "problems"} <= set(report)
    assert report["first_bad_range"][0] == 0 and report["checkpoints_verified"] == 0
    assert [p["kind"] for p in report["problems"]] == ["anchor"]


async def test_records_no_checkpoint_covers_in_time_are_reported(aiohttp_client, settings):
    """A record older than the checkpoint interval allows, with no signed checkpoint covering it,
    is reported as unanchored (tampered) — until a checkpoint covers it."""
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    api = Api(await aiohttp_client(create_app(settings, clock=clock)))
    ref = await api.register(hetu(6))
    await api.open_consultation(client_ref=ref)
    fresh = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert fresh["ok"], fresh["problems"]  # younger than the interval: not yet due
    clock.advance(seconds=2 * settings.audit_checkpoint_seconds + 61)
    late = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert late["state"] == "tampered" and [p["kind"] for p in late["problems"]] == ["unanchored"]
    assert late["first_bad_index"] == 0
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)  # a checkpoint covers them now
    anchored = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert anchored["ok"], anchored["problems"]


def test_an_unsigned_line_appended_to_the_file_is_reported(written):  # noqa: F811
    """Someone who can write the checkpoint file but has no signing key cannot add a checkpoint."""
    path = written["work"] / "audit-checkpoints.jsonl"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": "checkpoint", "size": 1, "note": "konsulta.local/audit\n1\nAAAA\n"}) + "\n")
    result = _verify(written["db"], written["work"])
    assert result.returncode == 1 and "not a checkpoint signed by a trusted log key" in result.stdout


def test_a_checkpoint_file_of_another_deployment_is_a_configuration_error(written, tmp_path):  # noqa: F811
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"note": "konsulta.prod/audit\n3\nAAAA\n\n— x y\n"}) + "\n", encoding="utf-8")
    result = _verify(written["db"], written["work"], "--checkpoint-file", str(other))
    assert result.returncode == 2 and "CONSULT_CHECKPOINT_FILE" in result.stderr and "TAMPERED" not in result.stdout


def test_verify_takes_the_checkpoint_file_as_an_option(written, tmp_path):  # noqa: F811
    """An auditor's copy of the file, elsewhere, pins the log just the same."""
    copy = tmp_path / "auditor-copy.jsonl"
    shutil.copy(written["work"] / "audit-checkpoints.jsonl", copy)
    db = _tampered(written, "cut", lambda c: (c.execute("DELETE FROM audit_checkpoints"),
                                              c.execute("DELETE FROM audit_events WHERE leaf_index >= 3"),
                                              c.execute("DELETE FROM audit_reasons"),
                                              c.execute("UPDATE audit_head SET size = 3")))
    (written["work"] / "audit-checkpoints.jsonl").unlink()
    assert _verify(db, written["work"]).returncode == 0  # nothing local tells any more
    result = _verify(db, written["work"], "--checkpoint-file", str(copy))
    assert result.returncode == 1 and "leaf 3" in result.stdout, result.stdout
    assert _verify(db, written["work"], "--checkpoint-file", str(tmp_path / "none.jsonl")).returncode == 2


def test_a_missing_checkpoint_file_is_reported(written):  # noqa: F811
    """The operator's own check expects the file the database says its checkpoints were kept in."""
    (written["work"] / "audit-checkpoints.jsonl").unlink()
    result = _verify(written["db"], written["work"])
    assert result.returncode == 1 and "checkpoint file is missing" in result.stdout, result.stdout


async def test_a_record_backdated_behind_the_log_is_unanchored(api):
    """Database access alone: a record appended after the newest checkpoint with a correct leaf
    hash and an old date. No signed checkpoint covers it and it is older than the interval allows."""
    ref = await api.register(hetu(7))
    await api.open_consultation(client_ref=ref)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    async with api.client.app[keys.DB].read() as conn:
        size = await audit_log.count(conn)
        row = await audit_log.leaf_row(conn, size - 1)
    forged = {**row, "id": "00000000-0000-4000-8000-00000000000f", "leaf_index": size, "actor_id": "kela.aino",
              "at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC)}
    forged["leaf_hash"] = hashlib.sha256(b"\x00" + encode(forged)).digest()
    columns = [c for c in forged if c != "seq"]

    async def unit(conn) -> None:
        await conn.exec_driver_sql("UPDATE audit_head SET size = size + 1", ())
        values = [json.dumps(forged[c]) if c in ("categories", "flags") else
                  forged[c].strftime("%Y-%m-%d %H:%M:%S.%f") if c == "at" else forged[c] for c in columns]
        await conn.exec_driver_sql(f"INSERT INTO audit_events ({', '.join(columns)}) "
                                   f"VALUES ({', '.join('?' * len(columns))})", tuple(values))

    await api.client.app[keys.DB].write(unit)
    report = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert report["state"] == "tampered" and report["first_bad_index"] == size, report
    assert [p["kind"] for p in report["problems"]] == ["unanchored"]
