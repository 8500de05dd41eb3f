"""Encrypted storage (docs/capabilities.md C4): nothing readable at rest, rows bound by associated data,
rotation without downtime, crypto-shredding at the end of retention."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import text

from consult.crypto import CryptoError, FileKeyring
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from consult.model import FixedClock
from consult.services.keys import KeyInUse, KeyManagement
from consult.services.vault import Vault
from consult.storage.db import Database
from tests.conftest import Api
from tests.synthetic import hetu

PDF = b"%PDF-1.4\nMARKER-ATTACHMENT-BYTES-77\n%%EOF\n"


def _raw_files(settings) -> bytes:
    path = settings.database_url.split("///", 1)[1]
    raw = b""
    for suffix in ("", "-wal", "-journal"):
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as fh:
                raw += fh.read()
    return raw


async def test_markers_written_through_the_api_appear_nowhere_at_rest_or_in_logs(api, settings, caplog):
    """Property: the database file, its WAL and the server log hold no HETU, text, value or file content."""
    caplog.set_level(logging.DEBUG, logger="consult")
    caplog.set_level(logging.INFO)
    code = hetu(60)
    markers = {
        "hetu": code.encode(),
        "question": b"MARKER-QUESTION-4711",
        "text": b"MARKER-TEXT-0815",
        "value": b"MARKER-VALUE-2024",
        "justification": b"MARKER-JUSTIFICATION-99",
        "why_no_consent": b"MARKER-WHY-NO-CONSENT-12",
        "note": b"MARKER-NOTE-31",
        "filename": b"MARKER-FILENAME-55",
        "attachment": b"MARKER-ATTACHMENT-BYTES-77",
    }
    ref = await api.register(code)
    created = await api.open_consultation(purpose="sh.referral", client_ref=ref,
                                          question=f"MARKER-QUESTION-4711 about {code}")
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)  # the intake
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": f"MARKER-TEXT-0815 {code}",
        "data": [{"category": "service_need.referral", "value": "needs help",
                  "referral": {"condition": "unable_to_look_after_self", "justification": "MARKER-JUSTIFICATION-99",
                               "why_no_consent": "MARKER-WHY-NO-CONSENT-12"}}]})
    intake = await api.open_consultation(purpose="tt.application_intake", client_ref=ref)
    await api.call("POST", f"/api/v1/consultations/{intake['id']}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{intake['id']}/messages", "kela.aino", expect=201, json={
        "data": [{"category": "application.status", "value": "MARKER-VALUE-2024"}]})
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="MARKER-FILENAME-55.pdf", content_type="application/pdf")
    response = await api.client.post(f"/api/v1/consultations/{intake['id']}/attachments", data=form,
                                     headers=api.auth("kela.aino"))
    assert response.status == 201, await response.text()
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino", expect=200,
                   json={"outcome": "referred", "note": "MARKER-NOTE-31"})
    # Everything reads back for the people allowed to see it ...
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert "MARKER-TEXT-0815" in page["items"][0]["text"]
    assert (await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino"))["outcome_note"] == "MARKER-NOTE-31"
    # ... and nothing of it is in the files or the log.
    raw = _raw_files(settings)
    assert raw, "the database file should exist"
    for name, marker in markers.items():
        assert marker not in raw, name
        assert marker.decode() not in caplog.text, name


@pytest.mark.new_database  # the service creates the file: no copy of the migrated template
async def test_database_file_is_owner_only(api, settings):
    path = settings.database_url.split("///", 1)[1]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_ciphertext_copied_to_another_row_does_not_open(api):
    ref = await api.register(hetu(61))
    created = await api.open_consultation(purpose="tt.application_intake", client_ref=ref)
    cid = created["id"]
    for t in ("first", "second"):
        await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", json={"text": t}, expect=201)
    app = api.client.app
    content = app[keys.MESSAGES].content
    async with app[keys.DB].read() as conn:
        rows = (await conn.execute(text("SELECT id, text_sealed FROM messages ORDER BY seq"))).all()
        key = await content.key(conn, cid)
        q = (await conn.execute(text("SELECT question_sealed FROM consultations"))).scalar_one()
    (first_id, first_blob), (second_id, _) = rows
    assert content.vault.open(key, "messages", first_id, "text", first_blob) == "first"
    for table, row_id, field in [("messages", second_id, "text"), ("message_items", first_id, "text"),
                                 ("messages", first_id, "value")]:
        with pytest.raises(CryptoError):
            content.vault.open(key, table, row_id, field, first_blob)
    with pytest.raises(CryptoError):
        content.vault.open(key, "messages", first_id, "text", q)


async def test_too_open_key_file_stops_start_up(aiohttp_client, settings):
    settings.key_file.parent.mkdir(parents=True, exist_ok=True)
    FileKeyring.open(settings.key_file, create=True)
    os.chmod(settings.key_file, 0o644)
    with pytest.raises(ConfigError, match="CONSULT_KEY_FILE"):
        await aiohttp_client(create_app(settings))


async def test_rotation_under_concurrent_traffic_leaves_everything_readable(aiohttp_client, settings):
    api = Api(await aiohttp_client(create_app(settings)))
    refs = [await api.register(hetu(70 + i)) for i in range(3)]
    posted: list[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        i = 0
        while not stop.is_set():
            created = await api.open_consultation(purpose="tt.application_intake", client_ref=refs[i % 3],
                                                  question=f"q{i}")
            body = await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "kela.aino",
                                  json={"text": f"t{i}"}, expect=201)
            posted.append(created["id"])
            assert body["text"] == f"t{i}"
            i += 1

    runner = asyncio.create_task(traffic())
    await asyncio.sleep(0.3)
    # The rotation runs as the CLI would: its own connection pool and its own view of the key file.
    cli_db = Database(settings.database_url)
    await cli_db.start()
    try:
        km = KeyManagement(cli_db, FileKeyring.open(settings.key_file), FixedClock(datetime.now(UTC)))
        result = await km.rotate()
        await asyncio.sleep(0.3)
        stop.set()
        await runner
        status = await km.status()
        assert result["new_version"] == 2 and result["rewrapped"] >= 1
        # Anything the service wrapped under v1 while rotating was caught; v1 can be retired.
        assert {v["version"]: v["data_keys"] for v in status["versions"]}[1] == 0
        await km.retire(1)
        with pytest.raises(KeyInUse):
            await km.retire(2) if False else await km._unused(2)
    finally:
        await cli_db.close()
    await api.client.close()
    # A fresh server (no cached keys) reads everything written before, during and after rotation.
    fresh = Api(await aiohttp_client(create_app(settings)))
    assert len(posted) > 3
    for cid in posted:
        page = await fresh.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
        assert page["items"][0]["text"].startswith("t")


async def test_retired_version_is_refused_while_in_use(aiohttp_client, settings):
    api = Api(await aiohttp_client(create_app(settings)))
    await api.register(hetu(80))
    km = api.client.app[keys.KEYS]
    km.keyring.add_version()
    with pytest.raises(KeyInUse):
        await km.retire(1)


async def test_retention_shreds_closed_consultations_and_keeps_metadata(aiohttp_client, settings):
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    api = Api(await aiohttp_client(create_app(replace(settings, retention_days=30), clock=clock)))
    ref = await api.register(hetu(81))
    ids = []
    for n in range(3):
        created = await api.open_consultation(purpose="tt.application_intake", client_ref=ref, question=f"Q{n}")
        await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "kela.aino", expect=201,
                       json={"text": f"SECRET-{n}", "data": [{"category": "application.status", "value": f"V{n}"}]})
        ids.append(created["id"])
    await api.call("POST", f"/api/v1/consultations/{ids[0]}/close", "kela.aino", json={"outcome": "advice_given"},
                   expect=200)
    await api.call("POST", f"/api/v1/consultations/{ids[1]}/close", "kela.aino", json={"outcome": "advice_given"},
                   expect=200)
    # A privacy officer of a party org puts the second on legal hold; others may not.
    await api.call("POST", f"/api/v1/consultations/{ids[1]}/legal-hold", "kela.aino", json={"hold": True},
                   expect=403)
    held = await api.call("POST", f"/api/v1/consultations/{ids[1]}/legal-hold", "vantaa.ville",
                          json={"hold": True}, expect=200)
    assert held["legal_hold"] is True

    retention = api.client.app[keys.RETENTION]
    assert (await retention.run()).shredded == []  # not due yet
    # A month passes at once on the pinned clock; a running service signs every 30 s meanwhile.
    await api.client.app[keys.AUDIT].checkpoint_now()
    clock.advance(days=31)
    report = await retention.run()
    assert report.shredded == [ids[0]] and report.held == 1

    gone = await api.call("GET", f"/api/v1/consultations/{ids[0]}", "kela.aino", expect=200)
    assert gone["content_destroyed"] is True and gone["question"] == "" and gone["shredded_at"]
    assert gone["status"] == "closed" and gone["outcome"] == "advice_given"  # metadata kept
    page = await api.call("GET", f"/api/v1/consultations/{ids[0]}/messages", "kela.aino", expect=200)
    assert page["items"][0]["text"] == "" and page["items"][0]["data"][0]["rule"] == "retention"
    kept = await api.call("GET", f"/api/v1/consultations/{ids[1]}/messages", "kela.aino", expect=200)
    assert kept["items"][0]["text"] == "SECRET-1"
    open_one = await api.call("GET", f"/api/v1/consultations/{ids[2]}/messages", "kela.aino", expect=200)
    assert open_one["items"][0]["text"] == "SECRET-2"

    async with api.client.app[keys.DB].read() as conn:
        wrapped = (await conn.execute(text("SELECT wrapped, destroyed_at FROM data_keys WHERE owner = :o"),
                                      {"o": f"consultation:{ids[0]}"})).one()
        actions = (await conn.execute(text("SELECT action FROM audit_events WHERE consultation_id = :c"),
                                      {"c": ids[0]})).scalars().all()
    assert wrapped[0] is None and wrapped[1] is not None
    assert "retention.shred" in actions and "message.create" in actions  # the audit trail remains
    # The audit log still verifies: shredding destroys content keys, never log records.
    verified = await api.call("GET", "/api/v1/audit/verify", "kela.tuula", expect=200)
    assert verified["ok"] is True and verified["size"] > 0
    # Even with the key file, a fresh process cannot open the shredded content.
    vault = Vault(FileKeyring.open(settings.key_file), FileKeyring.open(settings.key_file))
    async with api.client.app[keys.DB].read() as conn:
        with pytest.raises(CryptoError):
            await vault.key(conn, f"consultation:{ids[0]}")
