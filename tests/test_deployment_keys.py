"""Keys belong to their database: start-up compares the key files with the fingerprints the
database recorded and stops, naming the setting, the file and the fingerprint expected, instead
of ever generating a key for a database that holds data."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from consult.config import Settings
from consult.crypto import FileKeyring, signing
from consult.errors import ConfigError
from consult.http.app import create_app
from consult.storage import deployment as deployment_store
from consult.storage.db import Database
from tests.conftest import Api
from tests.synthetic import hetu


async def _serve_once(aiohttp_client, settings: Settings) -> None:
    """Start the real app, write client data (a data key, audit records), and stop it."""
    api = Api(await aiohttp_client(create_app(settings)))
    await api.register(hetu(11))
    await api.open_consultation(question="Is the rent attachment enough?")
    await api.client.close()  # shutdown also signs and stores a final checkpoint


async def _sql(settings: Settings, statement: str) -> list:
    db = Database(settings.database_url)
    await db.start()
    try:
        if statement.lstrip().upper().startswith("SELECT"):
            async with db.read() as conn:
                return list((await conn.execute(text(statement))).all())

        async def unit(conn):
            await conn.execute(text(statement))

        await db.write(unit)
        return []
    finally:
        await db.close()


async def _recorded(settings: Settings):
    db = Database(settings.database_url)
    await db.start()
    try:
        async with db.read() as conn:
            return await deployment_store.recorded(conn)
    finally:
        await db.close()


def _foreign_key_file(tmp_path: Path) -> Path:
    other = tmp_path / "elsewhere" / "keys.json"
    other.parent.mkdir()
    FileKeyring.open(other, create=True)
    return other


async def test_first_start_of_an_empty_database_records_its_keys(aiohttp_client, settings):
    """Property: the fingerprints recorded are those of the key files in use, and reveal no key."""
    await _serve_once(aiohttp_client, settings)
    recorded = await _recorded(settings)
    keyring = FileKeyring.open(settings.key_file)
    seed = signing.load_signing_key(settings.effective_audit_key_file)
    assert recorded.origin == "konsulta.local/audit" and recorded.bound == "created"
    assert {k.version: k.fingerprint for k in recorded.keks} == keyring.fingerprints()
    assert recorded.blind_index_fingerprint == keyring.blind_index_fingerprint()
    assert recorded.audit_key_fingerprint == signing.signing_key_fingerprint(seed)
    raw = settings.key_file.read_text()
    assert all(k.fingerprint not in raw for k in recorded.keks)


async def test_missing_key_file_stops_start_up(aiohttp_client, settings):
    """Property: a database with data never gets a fresh key-encryption key silently."""
    await _serve_once(aiohttp_client, settings)
    expected = FileKeyring.open(settings.key_file).fingerprints()[1]
    settings.key_file.unlink()
    with pytest.raises(ConfigError) as caught:
        await aiohttp_client(create_app(settings))
    message = str(caught.value)
    assert message.startswith("CONSULT_KEY_FILE") and str(settings.key_file) in message and expected in message
    assert "\n" not in message
    assert not settings.key_file.exists()


async def test_different_key_file_stops_start_up(aiohttp_client, settings, tmp_path):
    """Property: another deployment's key file is refused, naming the fingerprint expected."""
    await _serve_once(aiohttp_client, settings)
    expected = FileKeyring.open(settings.key_file).fingerprints()[1]
    shutil.copy2(_foreign_key_file(tmp_path), settings.key_file)
    with pytest.raises(ConfigError, match=f"CONSULT_KEY_FILE: {settings.key_file} is not this database's key file"
                       f".*expects {expected}"):
        await aiohttp_client(create_app(settings))


async def test_key_file_with_an_unknown_extra_version_stops_start_up(aiohttp_client, settings):
    """Property: a key version the database never recorded is refused (content would be written
    under a key no other instance of this deployment has)."""
    await _serve_once(aiohttp_client, settings)
    FileKeyring.open(settings.key_file).add_version()
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE: .* holds key version 2 .* does not know"):
        await aiohttp_client(create_app(settings))


async def test_missing_audit_key_stops_start_up(aiohttp_client, settings):
    """Property: the audit signing key is never regenerated for a database with a log."""
    await _serve_once(aiohttp_client, settings)
    path = settings.effective_audit_key_file
    expected = signing.signing_key_fingerprint(signing.load_signing_key(path))
    path.unlink()
    with pytest.raises(ConfigError) as caught:
        await aiohttp_client(create_app(settings))
    message = str(caught.value)
    assert message.startswith("CONSULT_AUDIT_KEY_FILE") and str(path) in message and expected in message
    assert not path.exists()


async def test_different_audit_key_stops_start_up(aiohttp_client, settings):
    """Property: a different audit signing key (which would orphan every earlier checkpoint) is refused."""
    await _serve_once(aiohttp_client, settings)
    path = settings.effective_audit_key_file
    expected = signing.signing_key_fingerprint(signing.load_signing_key(path))
    signing.save_signing_key(path, signing.generate_signing_key(), overwrite=True)
    with pytest.raises(ConfigError, match=f"CONSULT_AUDIT_KEY_FILE: .* expects {expected}"):
        await aiohttp_client(create_app(settings))


async def test_other_deployment_name_is_a_configuration_error(aiohttp_client, settings):
    """Property: a changed CONSULT_DEPLOYMENT (e.g. after a restore) stops start-up as configuration."""
    await _serve_once(aiohttp_client, settings)
    with pytest.raises(ConfigError, match="CONSULT_DEPLOYMENT: this database belongs to deployment 'local'"):
        await aiohttp_client(create_app(replace(settings, deployment="other")))


async def test_second_host_with_its_own_fresh_keys_is_refused(aiohttp_client, settings, tmp_path):
    """Property: a second host on the same database can neither create its own keys nor use
    keys made for another database."""
    await _serve_once(aiohttp_client, settings)
    host_b = tmp_path / "host-b"
    host_b.mkdir()
    second = replace(settings, key_file=host_b / "keys.json", data_dir=host_b)
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE: .*host-b/keys.json.*does not exist"):
        await aiohttp_client(create_app(second))
    assert not (host_b / "keys.json").exists() and not (host_b / "audit-signing.key").exists()
    # The same host with keys it made for an empty database of its own.
    own = replace(second, database_url=f"sqlite+aiosqlite:///{host_b / 'own.db'}")
    await (await aiohttp_client(create_app(own))).close()
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE: .*host-b/keys.json is not this database's key file"):
        await aiohttp_client(create_app(second))


async def test_database_written_before_fingerprints_adopts_the_keys_that_prove_themselves(
        aiohttp_client, settings, caplog):
    """Property: keys are adopted for older data only when a data key unwraps and the newest
    checkpoint verifies with them; the adoption is logged and recorded."""
    await _serve_once(aiohttp_client, settings)
    await _sql(settings, "DELETE FROM deployment_keks")
    await _sql(settings, "DELETE FROM deployment")
    assert await _sql(settings, "SELECT count(*) FROM audit_checkpoints") != [(0,)]
    with caplog.at_level(logging.WARNING, logger="consult.deployment"):
        api = Api(await aiohttp_client(create_app(settings)))
    assert "adopted the key files" in caplog.text
    await api.register(hetu(12))
    await api.client.close()
    recorded = await _recorded(settings)
    assert recorded.bound == "adopted"
    assert {k.version: k.fingerprint for k in recorded.keks} == FileKeyring.open(settings.key_file).fingerprints()


async def test_older_database_refuses_a_key_file_its_data_keys_do_not_unwrap_with(aiohttp_client, settings, tmp_path):
    """Property: adoption never takes a key file the stored data keys do not unwrap with."""
    await _serve_once(aiohttp_client, settings)
    await _sql(settings, "DELETE FROM deployment_keks")
    await _sql(settings, "DELETE FROM deployment")
    shutil.copy2(_foreign_key_file(tmp_path), settings.key_file)
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE: .* does not unwrap this database's data keys"):
        await aiohttp_client(create_app(settings))
    assert await _recorded(settings) is None


async def test_older_database_refuses_an_audit_key_that_did_not_sign_its_checkpoint(aiohttp_client, settings):
    """Property: adoption never takes an audit key the newest stored checkpoint does not verify with."""
    await _serve_once(aiohttp_client, settings)
    await _sql(settings, "DELETE FROM deployment_keks")
    await _sql(settings, "DELETE FROM deployment")
    signing.save_signing_key(settings.effective_audit_key_file, signing.generate_signing_key(), overwrite=True)
    with pytest.raises(ConfigError, match="CONSULT_AUDIT_KEY_FILE: .* did not sign this database's newest"):
        await aiohttp_client(create_app(settings))
    assert await _recorded(settings) is None


async def test_older_database_without_key_files_gets_none_generated(aiohttp_client, settings):
    """Property: adoption requires the key files to exist; nothing is generated for older data."""
    await _serve_once(aiohttp_client, settings)
    await _sql(settings, "DELETE FROM deployment_keks")
    await _sql(settings, "DELETE FROM deployment")
    settings.key_file.unlink()
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE: .*no new key is generated"):
        await aiohttp_client(create_app(settings))
    assert not settings.key_file.exists()


async def test_interrupted_rotation_is_accounted_for_at_the_next_start(aiohttp_client, settings):
    """Property: a version recorded as pending that never reached the key file does not stop
    start-up and is forgotten; one that reached it becomes active."""
    await _serve_once(aiohttp_client, settings)
    keyring = FileKeyring.open(settings.key_file)
    prepared = keyring.prepare_version()
    await _sql(settings, "INSERT INTO deployment_keks (version, fingerprint, status, recorded_at) "
                         f"VALUES (2, '{prepared.fingerprint}', 'pending', '2026-01-01 00:00:00')")
    await (await aiohttp_client(create_app(settings))).close()
    assert [(k.version, k.status) for k in (await _recorded(settings)).keks] == [(1, "active")]
    await _sql(settings, "INSERT INTO deployment_keks (version, fingerprint, status, recorded_at) "
                         f"VALUES (2, '{prepared.fingerprint}', 'pending', '2026-01-01 00:00:00')")
    keyring.add_prepared(prepared)
    await (await aiohttp_client(create_app(settings))).close()
    assert [(k.version, k.status) for k in (await _recorded(settings)).keks] == [(1, "active"), (2, "active")]


async def test_concurrent_first_starts_agree_on_one_set_of_keys(settings):
    """Property: two processes starting on the same empty database end with the same recorded keys."""
    from consult.model import SystemClock
    from consult.services.deployment import KeyFiles, bind_keys, check_schema
    from consult.storage import migrate

    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    dbs = [Database(settings.database_url) for _ in range(2)]
    for db in dbs:
        await db.start()
    try:
        await check_schema(dbs[0])
        bound = await asyncio.gather(*(bind_keys(db, KeyFiles.of(settings), SystemClock(), create=True)
                                       for db in dbs))
        assert bound[0].keyring.fingerprints() == bound[1].keyring.fingerprints()
    finally:
        for db in dbs:
            await db.close()
