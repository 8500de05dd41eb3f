"""Clients registered before the canonical identity-code form (docs/capabilities.md C3): the database is seeded
the way the old registry wrote it (the code indexed as typed, en dash kept), then
`consult clients merge-duplicates` re-indexes every client and merges the duplicates — their
consultations, consents, prohibitions and client links follow the survivor, every merge is in
the audit log, and no identity code is in the log, the output or the service's warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select

from consult.http import keys
from consult.http.app import create_app
from consult.services.vault import REGISTRY, Vault
from consult.storage import audit_log
from consult.storage.tables import client_merges, clients
from tests.synthetic import hetu

SOON = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()

ROOT = Path(__file__).resolve().parents[2]
CODE = "131052-308T"
EN_DASH, MINUS = "131052\u2013308T", "131052\u2212308T"
KELA_PO = "kela.tuula"


async def legacy_register(api, typed: str, n: int) -> str:
    """A client as the registry before 0008_hetu stored it: the code stripped and upper-cased
    but otherwise as typed, its blind index over that, form 1."""
    app = api.client.app
    bound = app[keys.BOUND_KEYS]
    vault = Vault(bound.keyring, bound.keyring)
    ref = "cl_" + uuid.uuid4().hex[:20]
    old_form = typed.strip().upper()
    at = app[keys.CLOCK].now()

    async def unit(conn):
        key = await vault.key(conn, REGISTRY, create_at=at)
        await conn.execute(insert(clients).values(
            client_ref=ref, hetu_index=vault.blind_index(old_form, domain="client.hetu"),
            hetu_sealed=vault.seal(key, "clients", ref, "hetu", old_form),
            created_at=at.replace(microsecond=n), created_by="kela.aino", created_org="kela", hetu_form=1))

    await app[keys.DB].write(unit)
    return ref


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_DEV": "1", "CONSULT_DATABASE_URL": settings.database_url,
                "CONSULT_KEY_FILE": str(settings.key_file), "CONSULT_DATA_DIR": str(settings.data_dir),
                "CONSULT_POLICY_DIR": str(settings.policy_dir), "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "consult", "clients", "merge-duplicates", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


async def _startup_log(aiohttp_client, settings, caplog) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="consult"):
        client: TestClient = await aiohttp_client(create_app(settings))
        await client.close()
    return caplog.text


async def _rows(api) -> list[dict]:
    async with api.client.app[keys.DB].read() as conn:
        rows = []
        async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
            rows += part
        return rows


async def test_merge_duplicates_repoints_everything_and_is_audited(api, settings, aiohttp_client, caplog):
    """Property: after the merge one person is one client — a prohibition recorded under any
    variant protects items sent under every other, and the access report shows it all."""
    survivor = await legacy_register(api, CODE, 1)
    dup_en = await legacy_register(api, EN_DASH, 2)
    dup_minus = await legacy_register(api, MINUS, 3)
    alone = await legacy_register(api, "150385\u2013226A", 4)  # one client, only re-indexed
    later_code = hetu(40)
    legacy_later = await legacy_register(api, later_code.replace("-", "\u2011"), 5)
    registered_after_upgrade = await api.register(later_code)  # canonical index: a new client
    assert registered_after_upgrade != legacy_later

    # The duplicate carries the consultation and its consent; the prohibition is on another one.
    created = await api.open_consultation(purpose="sh.multidisciplinary", client_ref=dup_en,
                                          question=f"Koskee myös [client:{dup_minus}] ja [client:{alone}]")
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    consent = await api.call("POST", f"/api/v1/clients/{dup_en}/consents", "kela.aino", expect=201, json={
        "categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
        "method": "oral", "valid_until": SOON,
           "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä"})
    await api.call("POST", f"/api/v1/clients/{dup_minus}/prohibitions", "kela.aino",
                   json={"category": "health", "org": "vantaa"}, expect=201)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": f"Puoliso [client:{dup_minus}]", "data": [
            {"category": "health", "value": "HEALTH-VALUE", "consent_id": consent["id"]}]})
    before = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    assert before["items"][0]["data"][0]["value"] == "HEALTH-VALUE"  # the seen leak, before the merge

    dry = run_cli(settings, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {"legacy": 5, "duplicates": 3, "unreadable": 0, "links_pending": 0}

    result = await asyncio.to_thread(run_cli, settings)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"reindexed": 1, "merged": 3, "unreadable": 0,
                                         "consultations_rewritten": 1}
    assert "131052" not in result.stdout + result.stderr and "150385" not in result.stdout + result.stderr

    # One client per person; the merged refs are gone and recorded as merged.
    async with api.client.app[keys.DB].read() as conn:
        refs = set((await conn.execute(select(clients.c.client_ref))).scalars())
        merges = {r.merged_ref: r.into_ref for r in (await conn.execute(select(client_merges))).all()}
        forms = set((await conn.execute(select(clients.c.hetu_form))).scalars())
    assert refs == {survivor, alone, registered_after_upgrade}
    assert merges == {dup_en: survivor, dup_minus: survivor, legacy_later: registered_after_upgrade}
    assert forms == {2}

    # Every variant now finds the same client, old and new alike.
    for variant in (CODE, EN_DASH, MINUS):
        again = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": variant}, expect=200)
        assert again["client_ref"] == survivor
    again = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": "150385-226A"}, expect=200)
    assert again["client_ref"] == alone

    # The prohibition recorded under one duplicate now stops the item sent under the other.
    after = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    assert after["items"][0]["data"][0]["withheld"] is True and "HEALTH-VALUE" not in json.dumps(after)
    consents = await api.call("GET", f"/api/v1/clients/{survivor}/consents", "kela.aino", expect=200)
    assert consent["id"] in json.dumps(consents)

    # Links in sealed texts point to the survivor.
    seen = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert seen["items"][0]["text"] == f"Puoliso [client:{survivor}]"
    detail = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert detail["question"] == f"Koskee myös [client:{survivor}] ja [client:{alone}]"
    assert detail["client_ref"] == survivor

    # A merged reference no longer exists for the API.
    await api.call("GET", f"/api/v1/clients/{dup_en}/consents", "kela.aino", expect=404)
    await api.call("POST", f"/api/v1/clients/{dup_minus}/prohibitions", "kela.aino",
                   json={"category": "health", "org": "vantaa"}, expect=404)
    err = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
        "topic": "other", "urgency": "normal", "question": "q", "purpose": "sh.multidisciplinary",
        "target_org": "vantaa", "client_ref": dup_en})
    assert err["error"]["code"] == "unknown_client"

    # Each merge is audited under both references; the survivor's report reads them all.
    rows = await _rows(api)
    merge_rows = [(r["client_ref"], r["basis"]) for r in rows if r["action"] == "client.merge"]
    assert (dup_en, f"merged_into:{survivor}") in merge_rows and (survivor, f"merged_from:{dup_en}") in merge_rows
    assert len(merge_rows) == 6
    assert {r["client_ref"] for r in rows if r["action"] == "client.reindex"} == {alone}
    assert [r["consultation_id"] for r in rows if r["action"] == "client.merge_links"] == [cid]
    assert all(r["actor_id"].startswith("system:cli:") for r in rows if r["action"].startswith("client.merge"))
    dump = json.dumps(rows, default=str)
    assert "131052" not in dump and "150385" not in dump and later_code[:6] not in dump
    report = await api.call("GET", f"/api/v1/clients/{survivor}/access-report", KELA_PO, expect=200)
    assert sorted(report["merged_refs"]) == sorted([dup_en, dup_minus])
    assert cid in {p["consultation_id"] for p in report["processing"]}
    assert ("kela.aino", "consultation.create") in {(p["who"]["id"], p["action"]) for p in report["processing"]}

    # The log verifies: consents and prohibitions were vouched for under the merged references.
    verified = await api.call("GET", "/api/v1/audit/verify", KELA_PO, expect=200)
    assert verified["ok"], verified["problems"]

    # Nothing left to do: a second run changes nothing.
    second = await asyncio.to_thread(run_cli, settings)
    assert json.loads(second.stdout) == {"reindexed": 0, "merged": 0, "unreadable": 0,
                                         "consultations_rewritten": 0}


async def test_startup_warns_of_unmerged_duplicates_without_personal_data(api, settings, aiohttp_client, caplog):
    """The service starts, and says (counts only) that duplicates wait for merge-duplicates."""
    await legacy_register(api, CODE, 1)
    await legacy_register(api, EN_DASH, 2)
    await legacy_register(api, "150385\u2013226A", 3)
    await api.client.close()  # one service per database file at a time in this process
    text = await _startup_log(aiohttp_client, settings, caplog)
    assert "1 client(s) duplicate another" in text and "merge-duplicates" in text
    assert "131052" not in text and "150385" not in text and "cl_" not in text
    result = await asyncio.to_thread(run_cli, settings)
    assert result.returncode == 0, result.stderr
    text = await _startup_log(aiohttp_client, settings, caplog)
    assert "client registry" not in text


async def test_startup_says_when_clients_wait_for_reindexing_only(api, settings, aiohttp_client, caplog):
    await legacy_register(api, "150385\u2013226A", 1)
    await api.client.close()
    text = await _startup_log(aiohttp_client, settings, caplog)
    assert "1 client(s) indexed under the old identity-code form" in text and "duplicate another" not in text
    assert "150385" not in text and "cl_" not in text


async def test_a_canonical_registry_starts_without_warning(api, settings, aiohttp_client, caplog):
    await api.register(CODE)
    await api.register(EN_DASH)
    await api.client.close()
    text = await _startup_log(aiohttp_client, settings, caplog)
    assert "client registry" not in text and "development token issuer" in text


def test_migration_marks_existing_clients_as_indexed_under_the_old_form(tmp_path):
    """A database upgraded from 0006 keeps its clients, each marked form 1 (to be re-indexed)."""
    import sqlite3

    from consult.storage import migrate

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url, "0006")
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO clients (client_ref, hetu_index, hetu_sealed, created_at, created_by, created_org)"
                    " VALUES ('cl_00000000000000000001', 'i1', x'00', '2024-01-01 00:00:00', 'u', 'kela')")
    migrate.upgrade(url)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT client_ref, hetu_form FROM clients").fetchall() == [
            ("cl_00000000000000000001", 1)]
        assert con.execute("SELECT count(*) FROM client_merges").fetchone() == (0,)
