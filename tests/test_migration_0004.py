"""Migration 0004 seals what an earlier version stored in clear, with the envelope encryption frozen
with it (consult/migrations/frozen/envelope_0004.py): what it writes, today's service reads, and it
finds the key file where the service's settings find it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest

from consult.config import load_settings
from consult.crypto import Envelope, FileKeyring, WrappedKey, signing
from consult.http.app import create_app
from consult.migrations.frozen import envelope_0004
from consult.services.vault import Vault
from consult.storage import migrate
from tests.conftest import Api

QUESTION = "Legacy question in clear: does the rent attachment still count?"
NOTE = "Legacy outcome note in clear"
TEXT = "Legacy message text in clear"
VALUE = "2026-01-01 - 2026-06-30"
JUSTIFICATION = "Legacy referral justification in clear"
AT = "2026-01-05 08:00:00.000000"


def _legacy_rows(path: Path) -> tuple[str, str]:
    """A consultation with an outcome note, a message and a data item with a referral
    justification, all in clear, as a version at revision 0003 stored them."""
    cid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO consultations (id, topic, urgency, question, purpose, origin_org, created_by,"
                    " target_org, status, outcome_note, created_at, created_role)"
                    " VALUES (?, 'application_intake', 'today', ?, 'tt.application_intake', 'kela', 'kela.aino',"
                    " 'vantaa', 'open', ?, ?, 'advisor')", (cid, QUESTION, NOTE, AT))
        con.execute("INSERT INTO participants (consultation_id, user_id, org, role, added_by, added_at)"
                    " VALUES (?, 'kela.aino', 'kela', 'advisor', 'kela.aino', ?)", (cid, AT))
        con.execute("INSERT INTO messages (id, consultation_id, author_id, author_org, author_role, author_name,"
                    " text, created_at) VALUES (?, ?, 'kela.aino', 'kela', 'advisor', 'Aino Neuvoja', ?, ?)",
                    (mid, cid, TEXT, AT))
        con.execute("INSERT INTO message_items (message_id, idx, category, value, referral_condition,"
                    " referral_justification) VALUES (?, 0, 'decision.period', ?, 'unable_to_look_after_self', ?)",
                    (mid, VALUE, JUSTIFICATION))
    return cid, mid


@pytest.mark.new_database
@pytest.mark.parametrize("key_file", ["made by the migration", "rotated to version 2"])
async def test_rows_the_migration_seals_read_back_through_todays_service(
        key_file, settings, aiohttp_client, monkeypatch):
    for name in ("CONSULT_CONFIG", "CONSULT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSULT_KEY_FILE", str(settings.key_file))
    if key_file == "rotated to version 2":
        FileKeyring.open(settings.key_file, create=True).add_version()
    # The audit log's signing key of the earlier version (the service adopts it with the key file).
    signing.save_signing_key(settings.effective_audit_key_file, signing.generate_signing_key())
    path = Path(settings.database_url.split("///", 1)[1])
    await asyncio.to_thread(migrate.upgrade, settings.database_url, "0003")
    cid, mid = _legacy_rows(path)

    await asyncio.to_thread(migrate.upgrade, settings.database_url)

    assert stat.S_IMODE(os.stat(settings.key_file).st_mode) == 0o600
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT owner, kek_version FROM data_keys").fetchall() == [
            (f"consultation:{cid}", 2 if key_file == "rotated to version 2" else 1)]
        sealed = con.execute("SELECT question_sealed, outcome_note_sealed FROM consultations").fetchone()
    assert all(blob[0] == 0x01 and QUESTION.encode() not in blob for blob in sealed)

    api = Api(await aiohttp_client(create_app(settings)))
    consultation = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert consultation["question"] == QUESTION
    assert consultation["outcome_note"] == NOTE
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    [message] = page["items"]
    assert (message["id"], message["text"]) == (mid, TEXT)
    [item] = message["data"]
    assert (item["category"], item["value"]) == ("decision.period", VALUE)
    # The justification is not part of the reader's page: the service's vault opens it.
    with sqlite3.connect(path) as con:
        version, wrapped = con.execute("SELECT kek_version, wrapped FROM data_keys").fetchone()
        [justification] = con.execute("SELECT referral_justification_sealed FROM message_items").fetchone()
    key = Envelope(FileKeyring.open(settings.key_file)).sealing_key(f"consultation:{cid}", WrappedKey(version, wrapped))
    assert Vault.open(key, "message_items", f"{mid}/0", "referral_justification", justification) == JUSTIFICATION


@pytest.mark.new_database
async def test_a_new_database_is_migrated_without_a_key_file(settings, monkeypatch):
    """Nothing to seal: the migration neither needs nor makes a key file."""
    monkeypatch.setenv("CONSULT_KEY_FILE", str(settings.key_file))
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    assert not settings.key_file.exists()


@pytest.mark.new_database
async def test_a_key_file_open_to_others_stops_the_migration_changing_nothing(settings, monkeypatch):
    monkeypatch.setenv("CONSULT_KEY_FILE", str(settings.key_file))
    FileKeyring.open(settings.key_file, create=True)
    settings.key_file.chmod(0o644)
    path = Path(settings.database_url.split("///", 1)[1])
    await asyncio.to_thread(migrate.upgrade, settings.database_url, "0003")
    _legacy_rows(path)
    with pytest.raises(envelope_0004.KeyFileProblem, match="chmod 600"):
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    assert await asyncio.to_thread(migrate.current, settings.database_url) == "0003"
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT question FROM consultations").fetchone() == (QUESTION,)


CONFIGS = {
    "none": None,
    "key file": 'key_file = "conf/keys-from-config.json"\n',
    "data directory": 'data_dir = "conf-data"\n',
    "both": 'key_file = "/srv/k/keys.json"\ndata_dir = "/srv/d"\n',
    "empty key file": 'key_file = ""\ndata_dir = "conf-data"\n',
}
ENVS = {
    "none": {},
    "key file": {"CONSULT_KEY_FILE": "env/keys.json"},
    "data directory": {"CONSULT_DATA_DIR": "/var/lib/konsulta"},
    "both": {"CONSULT_KEY_FILE": "/etc/konsulta/keys.json", "CONSULT_DATA_DIR": "/var/lib/konsulta"},
    "empty key file": {"CONSULT_KEY_FILE": " ", "CONSULT_DATA_DIR": "rel-data"},
}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"config:{c}")
@pytest.mark.parametrize("environment", ENVS, ids=lambda e: f"env:{e}")
def test_the_frozen_copy_finds_the_key_file_the_settings_find(config, environment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = dict(ENVS[environment])
    if CONFIGS[config] is not None:
        (tmp_path / "konsulta.toml").write_text(CONFIGS[config], encoding="utf-8")
        env["CONSULT_CONFIG"] = str(tmp_path / "konsulta.toml")
    assert envelope_0004.key_file_path(env) == load_settings(env, check=False).key_file
