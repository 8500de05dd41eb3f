"""The command line and the deployment's keys: `consult init` creates keys for an empty database
only, other commands never create them, `keys rotate` checks before it changes anything, and
start-up problems are one line with exit status 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest

from consult.crypto import signing
from consult.storage import migrate
from tests.conftest import ROOT
from tests.test_cli import _run
from tests.test_deployment_keys import _recorded, _serve_once

# What the commands do to a new or older database is the subject: no copy of the migrated template.
pytestmark = pytest.mark.new_database


def _env(settings, **extra: str) -> dict[str, str]:
    return {"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(settings.data_dir),
            "CONSULT_KEY_FILE": str(settings.key_file), "CONSULT_DATABASE_URL": settings.database_url,
            "CONSULT_POLICY_DIR": str(ROOT / "policies"), **extra}


def _db_path(settings) -> str:
    return settings.database_url.split("///", 1)[1]


def _one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_init_creates_keys_for_an_empty_database_and_refuses_one_with_data(settings):
    """Property: `consult init` makes keys only for an empty database and records their fingerprints."""
    env = _env(settings)
    created = _run(["init"], env, settings.data_dir)
    assert created.returncode == 0, created.stderr
    report = json.loads(created.stdout)
    assert report["key_file"]["created"] and report["audit_key_file"]["created"]
    assert settings.key_file.exists() and settings.effective_audit_key_file.exists()
    recorded = asyncio.run(_recorded(settings))
    assert report["key_file"]["fingerprints"] == {str(k.version): k.fingerprint for k in recorded.keks}
    assert report["audit_key_file"]["fingerprint"] == recorded.audit_key_fingerprint
    again = _run(["init"], env, settings.data_dir)
    assert again.returncode == 1 and "already has its keys" in again.stderr
    # Data arrives (an export is itself logged); without a record, init still refuses to make keys.
    assert _run(["audit", "export", "--format", "jsonl"], env, settings.data_dir).returncode == 0
    with sqlite3.connect(_db_path(settings)) as conn:
        conn.execute("DELETE FROM deployment_keks")
        conn.execute("DELETE FROM deployment")
    key_bytes = settings.key_file.read_bytes()
    settings.key_file.unlink()
    refused = _run(["init"], env, settings.data_dir)
    assert refused.returncode == 1 and "holds data" in refused.stderr
    assert not settings.key_file.exists()
    settings.key_file.write_bytes(key_bytes)
    os.chmod(settings.key_file, 0o600)


def test_key_commands_never_create_keys(settings):
    """Property: `keys` and `retention` commands open the recorded keys or stop; they never make new ones."""
    env = _env(settings)
    for command in (["keys", "status"], ["keys", "rotate"], ["retention", "run"]):
        result = _run(command, env, settings.data_dir)
        _one_line_error(result, "CONSULT_KEY_FILE", "consult init")
    assert not settings.key_file.exists() and not settings.effective_audit_key_file.exists()


async def test_key_commands_refuse_a_missing_key_file(aiohttp_client, settings):
    await _serve_once(aiohttp_client, settings)
    expected = (await _recorded(settings)).keks[0].fingerprint
    settings.key_file.rename(settings.key_file.with_suffix(".moved"))
    result = await asyncio.to_thread(_run, ["keys", "status"], _env(settings), settings.data_dir)
    _one_line_error(result, f"CONSULT_KEY_FILE: key file {settings.key_file}", expected)
    assert not settings.key_file.exists()


async def test_rotate_precondition_failure_leaves_everything_unchanged(aiohttp_client, settings):
    """Property: rotation checks every wrapped data key first; when one does not unwrap it changes
    nothing — not the key file, not the recorded fingerprints, not a single data key."""
    await _serve_once(aiohttp_client, settings)
    path = _db_path(settings)
    with sqlite3.connect(path) as conn:
        owner, wrapped = conn.execute("SELECT owner, wrapped FROM data_keys ORDER BY owner LIMIT 1").fetchone()
        conn.execute("UPDATE data_keys SET wrapped = ? WHERE owner = ?", (bytes(wrapped[:-1]) + b"\0", owner))

    def snapshot() -> tuple:
        with sqlite3.connect(path) as conn:
            return (settings.key_file.read_bytes(),
                    conn.execute("SELECT * FROM deployment_keks ORDER BY version").fetchall(),
                    conn.execute("SELECT * FROM data_keys ORDER BY owner").fetchall())

    before = snapshot()
    result = await asyncio.to_thread(_run, ["keys", "rotate"], _env(settings), settings.data_dir)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "refused: 1 data keys do not unwrap" in result.stderr and "Traceback" not in result.stderr
    assert snapshot() == before


async def test_rotate_records_the_new_version_and_retire_remove_keep_the_record(aiohttp_client, settings):
    """Property: after rotate, retire and remove, the record and the key file agree, and the service starts."""
    await _serve_once(aiohttp_client, settings)
    env = _env(settings)
    for command in (["keys", "rotate"], ["keys", "retire", "1"], ["keys", "remove", "1"]):
        result = await asyncio.to_thread(_run, command, env, settings.data_dir)
        assert result.returncode == 0, result.stderr
    recorded = await _recorded(settings)
    assert [(k.version, k.status) for k in recorded.keks] == [(1, "removed"), (2, "active")]
    from consult.crypto import FileKeyring

    assert FileKeyring.open(settings.key_file).fingerprints() == {2: recorded.keks[1].fingerprint}
    await _serve_once(aiohttp_client, settings)


async def test_audit_verify_calls_another_deployment_name_a_configuration_error(aiohttp_client, settings):
    """Property: a CONSULT_DEPLOYMENT that differs from the database's is exit 2 with one line, not TAMPERED."""
    await _serve_once(aiohttp_client, settings)
    ok = await asyncio.to_thread(_run, ["audit", "verify"], _env(settings), settings.data_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    other = await asyncio.to_thread(_run, ["audit", "verify"], _env(settings, CONSULT_DEPLOYMENT="other"),
                                    settings.data_dir)
    _one_line_error(other, "CONSULT_DEPLOYMENT", "'local'")
    assert "TAMPERED" not in other.stdout


async def test_audit_verify_calls_another_audit_key_a_configuration_error(aiohttp_client, settings):
    """Property: verifying with a log key this database never used is a configuration error naming the
    fingerprint expected, not a verdict of tampering."""
    await _serve_once(aiohttp_client, settings)
    expected = (await _recorded(settings)).audit_key_fingerprint
    signing.save_signing_key(settings.effective_audit_key_file, signing.generate_signing_key(), overwrite=True)
    result = await asyncio.to_thread(_run, ["audit", "verify"], _env(settings), settings.data_dir)
    _one_line_error(result, "CONSULT_AUDIT_KEY_FILE", expected)
    assert "TAMPERED" not in result.stdout


def test_db_upgrade_needs_only_the_database_url(tmp_path):
    """Property: migrating asks for no identity-provider settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env["CONSULT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'up.db'}"
    result = subprocess.run([sys.executable, "-m", "consult", "db", "upgrade"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database at revision {migrate.head()}"


def test_db_upgrade_of_an_unreachable_database_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(["db", "upgrade"], {"CONSULT_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none"},
                  tmp_path)
    _one_line_error(result, "CONSULT_DATABASE_URL", "the upgrade failed")


def _serve(settings, timeout: float = 60) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update(_env(settings))
    env.pop("CONSULT_DEV")
    proc = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--demo", "--port", str(port)],
                            cwd=settings.data_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        pytest.fail(f"the server started instead of refusing: {err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_serve_refuses_a_database_behind_head_in_one_line(settings):
    """Property: `consult serve` on a database one migration behind exits 2 telling to run `db upgrade`."""
    migrate.upgrade(settings.database_url, "0005")
    result = _serve(settings, timeout=30)
    _one_line_error(result, "run `consult db upgrade`")
    assert migrate.current(settings.database_url) == "0005"


async def test_serve_refuses_a_missing_key_file_in_one_line(aiohttp_client, settings):
    await _serve_once(aiohttp_client, settings)
    expected = (await _recorded(settings)).keks[0].fingerprint
    settings.key_file.unlink()
    result = await asyncio.to_thread(_serve, settings, 30)
    _one_line_error(result, "CONSULT_KEY_FILE", str(settings.key_file), expected)
