"""A restore that rolls the log back is a distinct, explained state: verify reports "restored to
size N; checkpoint M > N was signed later" (and fails) until an operator accepts it with
`consult audit acknowledge-restore`, recorded in the log and the checkpoint file; after that the
log verifies again. Anything else stays tampering; another deployment stays configuration."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from consult.http.app import create_app
from tests.audit_log.test_audit_log_tamper import _rehash
from tests.conftest import ROOT, Api
from tests.synthetic import hetu

PO = "kela.tuula"
REASON = "Disk failure 2026-03; restored the nightly backup of 02:00 (ticket OPS-1234)."


def _cli(work: Path, db: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_DATA_DIR": str(work),
                "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "CONSULT_POLICY_DIR": str(ROOT / "policies"),
                **env_extra})
    return subprocess.run([sys.executable, "-m", "consult", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _lines(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "audit-checkpoints.jsonl").read_text().splitlines()]


async def _serve(aiohttp_client, settings) -> Api:
    return Api(await aiohttp_client(create_app(settings)))


async def _activity(api: Api, n: int) -> None:
    ref = await api.register(hetu(n))
    await api.open_consultation(client_ref=ref)


def _copy(src: Path, dst: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copy(src, dst)


@pytest.fixture
async def restored(aiohttp_client, settings, tmp_path: Path) -> dict:
    """A log served, backed up (service stopped), served on, then the backup put back."""
    db = Path(settings.database_url.split("///", 1)[1])
    api = await _serve(aiohttp_client, settings)
    await _activity(api, 30)
    await api.client.close()
    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)
    backed_up = _lines(tmp_path)[-1]["size"]
    api = await _serve(aiohttp_client, settings)
    await _activity(api, 31)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await api.client.close()
    later = _lines(tmp_path)[-1]["size"]
    assert later > backed_up
    _copy(backup, db)
    return {"db": db, "work": tmp_path, "n": backed_up, "m": later, "settings": settings}


def test_a_restored_backup_is_reported_as_restored_not_tampered(restored):
    result = _cli(restored["work"], restored["db"], "audit", "verify")
    n, m = restored["n"], restored["m"]
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"restored to size {n}; checkpoint {m} > {n} was signed later" in result.stdout
    assert "TAMPERED" not in result.stdout and "acknowledge-restore" in result.stdout
    report = json.loads(_cli(restored["work"], restored["db"], "audit", "verify", "--json").stdout)
    assert report["state"] == "restored" and report["restored"] == {"size": n, "checkpoint": m}
    assert report["first_bad_index"] == n and not report["ok"]


async def test_serving_a_restored_log_keeps_it_restored_until_acknowledged(restored, aiohttp_client):
    """The service starts on the restored database, marks the restore in the checkpoint file and
    serves on; verify says restored (not tampered) until the operator acknowledges it."""
    n, m = restored["n"], restored["m"]
    api = await _serve(aiohttp_client, restored["settings"])
    marker = _lines(restored["work"])[-1]
    assert (marker["kind"], marker["size"]) == ("restored", n)
    await _activity(api, 32)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    report = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert report["state"] == "restored" and report["restored"] == {"size": n, "checkpoint": m}, report
    assert report["size"] > n and report["summary"] == f"restored to size {n}; checkpoint {m} > {n} was signed later"
    await api.client.close()

    result = _cli(restored["work"], restored["db"], "audit", "acknowledge-restore", "--reason", REASON)
    assert result.returncode == 0, result.stdout + result.stderr
    done = json.loads(result.stdout)
    assert done["acknowledged"] == "restore" and (done["restored_to"], done["abandoned_checkpoint"]) == (n, m)
    last = _lines(restored["work"])[-1]
    assert last["kind"] == "acknowledged" and f"konsulta-restore-acknowledged {done['leaf_index']} {m} " in last["note"]
    verified = _cli(restored["work"], restored["db"], "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with sqlite3.connect(restored["db"]) as con:
        action, reason_id = con.execute("SELECT action, reason_id FROM audit_events WHERE leaf_index = ?",
                                        (done["leaf_index"],)).fetchone()
        (text,) = con.execute("SELECT text FROM audit_reasons WHERE id = ?", (reason_id,)).fetchone()
    assert action == "audit.restore_acknowledged" and text == REASON

    api = await _serve(aiohttp_client, restored["settings"])  # and it serves on, intact
    await _activity(api, 33)
    report = await api.call("GET", "/api/v1/audit/verify", PO, expect=200)
    assert report["ok"] and report["restore_acknowledged"], report


def test_acknowledging_right_after_the_restore_makes_the_log_verify(restored):
    result = _cli(restored["work"], restored["db"], "audit", "acknowledge-restore", "--reason", REASON)
    assert result.returncode == 0, result.stderr
    assert _cli(restored["work"], restored["db"], "audit", "verify").returncode == 0


def test_a_cut_back_after_the_acknowledgement_is_reported_again(restored):
    assert _cli(restored["work"], restored["db"], "audit", "acknowledge-restore", "--reason", REASON).returncode == 0
    with sqlite3.connect(restored["db"]) as con:
        con.execute("DELETE FROM audit_events WHERE leaf_index >= ?", (restored["n"],))
        con.execute("DELETE FROM audit_reasons")
        con.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (restored["n"],))
        con.execute("UPDATE audit_head SET size = ?", (restored["n"],))
    result = _cli(restored["work"], restored["db"], "audit", "verify")
    assert result.returncode == 1 and "restored to size" in result.stdout


def test_acknowledge_restore_refuses_an_intact_or_tampered_log(restored):
    work, db = restored["work"], restored["db"]
    tampered = work / "tampered.db"
    shutil.copy(db, tampered)
    with sqlite3.connect(tampered) as con:  # a rewrite inside what the earlier checkpoints cover
        con.execute("UPDATE audit_events SET outcome = 'deny' WHERE leaf_index = 1")
        _rehash(con, 1)
    result = _cli(work, tampered, "audit", "acknowledge-restore", "--reason", REASON)
    assert result.returncode == 1 and "not restored" in result.stderr and "nothing changed" in result.stderr
    assert _cli(work, db, "audit", "acknowledge-restore", "--reason", REASON).returncode == 0
    again = _cli(work, db, "audit", "acknowledge-restore", "--reason", REASON)
    assert again.returncode == 1 and "nothing to acknowledge" in again.stderr
    assert _cli(work, db, "audit", "acknowledge-restore", "--reason", "short").returncode == 2


def test_another_deployment_name_stays_a_configuration_error(restored):
    """A restore onto a host configured with another CONSULT_DEPLOYMENT is neither restored nor
    tampered: configuration, exit 2, for verify and for the acknowledgement."""
    work, db = restored["work"], restored["db"]
    for args in (("audit", "verify"), ("audit", "acknowledge-restore", "--reason", REASON)):
        result = _cli(work, db, *args, CONSULT_DEPLOYMENT="elsewhere")
        assert result.returncode == 2 and "CONSULT_DEPLOYMENT" in result.stderr, result.stderr
        assert "restored" not in result.stdout and "TAMPERED" not in result.stdout


async def test_a_lost_checkpoint_file_is_acknowledged_and_begun_anew(restored, aiohttp_client):
    """The file is gone for good: start-up refuses until the operator acknowledges, which starts a
    new file with the acknowledgement."""
    work, db = restored["work"], restored["db"]
    (work / "audit-checkpoints.jsonl").unlink()
    assert _cli(work, db, "audit", "verify").returncode == 1
    result = _cli(work, db, "audit", "acknowledge-restore", "--reason", REASON)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["acknowledged"] == "checkpoint file lost"
    assert [line["kind"] for line in _lines(work)] == ["acknowledged"]
    assert _cli(work, db, "audit", "verify").returncode == 0
    api = await _serve(aiohttp_client, restored["settings"])
    assert (await api.call("GET", "/api/v1/audit/verify", PO, expect=200))["ok"]


def test_a_command_that_writes_to_the_log_signs_before_it_exits(restored):
    """With no service running, what `consult audit export` logged is covered by a checkpoint in
    the file when the command returns."""
    work, db = restored["work"], restored["db"]
    assert _cli(work, db, "audit", "acknowledge-restore", "--reason", REASON).returncode == 0
    before = _lines(work)[-1]["size"]
    result = _cli(work, db, "audit", "export", "--format", "jsonl", "-o", str(work / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as con:
        (size,) = con.execute("SELECT count(*) FROM audit_events").fetchone()
    assert size == before + 1 and _lines(work)[-1]["size"] == size
