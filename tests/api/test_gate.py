"""The content gate (docs/capabilities.md C2, C3): every text a user writes passes it before it is stored or
logged. Identity codes become client links or are removed; reference fields that are shown or
logged as typed refuse identifiers; the other identifiers go by the policy per reader."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

import aiohttp
import pytest
from sqlalchemy import select

from consult.http.app import create_app

from consult.http import keys
from consult.storage import tables
from tests.api.gateutil import leaked, stored_texts
from tests.conftest import Api
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

KELA, VANTAA = "kela.aino", "vantaa.sanna"
KELA_PO, KELA_ADMIN = "kela.tuula", "kela.admin"
NOTE_CODE = "150385-226A"
NOTE = f"Päätöksen sisältö: perusosaa alennettu 40 %, asiakas {NOTE_CODE}, lastensuojelun asiakkuus"
PDF = b"%PDF-1.7\nGATE\n%%EOF\n"


async def _claimed(api, purpose: str = "tt.application_intake", n: int = 60) -> tuple[str, str | None]:
    ref = None if purpose == "general" else await api.register(hetu(n))
    fields = {"purpose": purpose} | ({"client_ref": ref} if ref else {})
    created = await api.open_consultation(**fields)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", VANTAA, expect=200)
    return created["id"], ref


async def _audit_texts(api) -> list[tuple[str, str]]:
    return [(where, text) for where, text in await stored_texts(api.client.app)
            if where.startswith("audit_")]


async def test_close_note_identity_code_never_reaches_the_other_organisation(api):
    """The close note is gated like a message: the identity code becomes the client link for the
    Kela advisor over REST and over the live event, and is not stored, not even sealed."""
    cid, _ref = await _claimed(api)
    ws = await connect(api, KELA)
    # The note also looks like decision content and child welfare: sent only on confirmation
    # (tests/api/test_sensitive_close.py).
    confirmation = {"reason": "Neuvoja tarvitsee tiedon asiakkaan ohjaamiseksi.",
                    "categories": ["child_welfare", "decision.content"]}
    closed = await api.call("POST", f"/api/v1/consultations/{cid}/close", VANTAA, expect=200,
                            json={"outcome": "advice_given", "note": NOTE, "sensitive_confirmation": confirmation})
    event = await next_event(ws, "consultation.closed")
    await ws.close()
    rest = await api.call("GET", f"/api/v1/consultations/{cid}", KELA, expect=200)
    for seen in (closed["outcome_note"], event["consultation"]["outcome_note"], rest["outcome_note"]):
        assert not leaked(NOTE_CODE, "hetu", [("note", seen)]), seen
        assert "[client:cl_" in seen
    assert [n["action"] for n in closed["identifiers"]] == ["replaced_by_client_link"]
    assert not leaked(NOTE_CODE, "hetu", await stored_texts(api.client.app))


async def test_close_note_identifiers_follow_the_policy_per_reader(api):
    """Other identifiers in a close note reach another organisation only where the policy lets
    that reader see them: in a general consultation, as a marker."""
    cid, _ = await _claimed(api, purpose="general")
    ws = await connect(api, KELA)
    note = f"Soita 040 1234567 tai kirjoita matti.meikalainen@example.fi; asiakas {NOTE_CODE}"
    closed = await api.call("POST", f"/api/v1/consultations/{cid}/close", VANTAA, expect=200,
                            json={"outcome": "advice_given", "note": note})
    assert "040 1234567" in closed["outcome_note"]  # the author sees what they wrote
    assert NOTE_CODE not in closed["outcome_note"] and "poistettu" in closed["outcome_note"]
    event = await next_event(ws, "consultation.closed")
    await ws.close()
    rest = await api.call("GET", f"/api/v1/consultations/{cid}", KELA, expect=200)
    listed = await api.call("GET", "/api/v1/consultations", KELA, expect=200)
    [row] = [c for c in listed["items"] if c["id"] == cid]
    for seen in (event["consultation"]["outcome_note"], rest["outcome_note"], row["outcome_note"]):
        assert "[phone withheld]" in seen and "[email withheld]" in seen, seen
        for ident, kind in (("040 1234567", "phone"), ("matti.meikalainen@example.fi", "email"),
                            (NOTE_CODE, "hetu")):
            assert not leaked(ident, kind, [("note", seen)]), (kind, seen)


async def test_item_values_are_gated_and_filtered_per_reader(api):
    """A structured item's value is enforced by the policy for its category, and the identifiers
    written inside it are gated like free text: the code becomes the client link, an IBAN the
    reader may not receive becomes a marker."""
    cid, _ = await _claimed(api, purpose="tt.service_guidance")
    code, iban = hetu(61), "FI21 1234 5600 0007 85"
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", VANTAA, expect=201, json={
        "text": "tila", "data": [{"category": "application.status", "value": f"Käsittelyssä, {code}, tili {iban}"}]})
    assert not leaked(code, "hetu", [("value", sent["data"][0]["value"])])
    assert iban in sent["data"][0]["value"]
    assert any(n["kind"] == "hetu" and n.get("field") == "data[0].value" for n in sent["identifiers"])
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", KELA, expect=200)
    value = page["items"][0]["data"][0]["value"]
    assert "[client:cl_" in value and "[iban withheld]" in value, value
    assert not leaked(code, "hetu", [("v", value)]) and not leaked(iban, "iban", [("v", value)])
    assert not leaked(code, "hetu", await stored_texts(api.client.app))


async def test_attachment_filename_is_gated_in_the_item_and_the_download(api):
    """A file named after the client's identity code is stored and served without it, and the
    Content-Disposition header does not echo it."""
    cid, _ = await _claimed(api, n=62)
    code = hetu(63)
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename=f"palkkalaskelma {code}.pdf", content_type="application/pdf")
    form.add_field("text", f"liite, asiakas {hetu(64)}")
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", data=form, headers=api.auth(KELA))
    body = await response.json()
    assert response.status == 201, body
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", VANTAA, expect=200)
    message = page["items"][0]
    assert not leaked(code, "hetu", [("value", message["data"][0]["value"])])
    assert message["data"][0]["value"].endswith(".pdf")
    assert not leaked(hetu(64), "hetu", [("caption", message["text"])])
    download = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth(VANTAA))
    assert download.status == 200
    assert not leaked(code, "hetu", [("header", download.headers["Content-Disposition"])])
    texts = await stored_texts(api.client.app)
    assert not leaked(code, "hetu", texts) and not leaked(hetu(64), "hetu", texts)


async def test_case_ref_with_an_identity_code_is_refused_and_nothing_is_stored(api):
    """case_ref is kept and shown as typed, so an identifier there is refused (422) before any write."""
    ref = await api.register(hetu(65))
    refused = await api.call("POST", "/api/v1/consultations", KELA, expect=422, json={
        "topic": "application_intake", "urgency": "today", "question": "Q?", "purpose": "tt.application_intake",
        "target_org": "vantaa", "client_ref": ref, "case_ref": f"TT-2026 {hetu(66)}"})
    assert refused["error"]["code"] == "identifier_in_text" and "case_ref" in refused["error"]["message"]
    assert hetu(66) not in refused["error"]["message"]
    async with api.client.app[keys.DB].read() as conn:
        assert (await conn.execute(select(tables.consultations))).first() is None
    assert not leaked(hetu(66), "hetu", await stored_texts(api.client.app))


async def test_consent_evidence_ref_with_identifiers_is_refused(api):
    """The consent's evidence reference is shown on the receipt as typed: identifiers are refused."""
    ref = await api.register(hetu(67))
    for evidence in (f"lomake {hetu(68)}", "soitettu 040 7654321"):
        refused = await api.call("POST", f"/api/v1/clients/{ref}/consents", KELA, expect=422, json={
            "categories": ["income.other"], "recipient_orgs": ["vantaa"], "purpose": "tt.income_calculation",
            "method": "written", "evidence_ref": evidence})
        assert refused["error"]["code"] == "identifier_in_text"
    texts = await stored_texts(api.client.app)
    assert not leaked(hetu(68), "hetu", texts) and not leaked("040 7654321", "phone", texts)


async def test_agreement_reference_never_reaches_the_audit_log(api):
    """The agreement reference is copied into the append-only log's basis column, so an
    identifier in it is refused before anything is written."""
    refused = await api.call("POST", "/api/v1/agreements", KELA_ADMIN, expect=422, json={
        "reference": f"Sopimus {hetu(69)}", "parties": ["kela", "vantaa"], "valid_from": "2026-01-01T00:00:00Z"})
    assert refused["error"]["code"] == "identifier_in_text"
    items = (await api.call("GET", "/api/v1/agreements", KELA_ADMIN, expect=200))["items"]
    aid = items[0]["id"]
    await api.call("PUT", f"/api/v1/agreements/{aid}", KELA_ADMIN, expect=422,
                   json={"reference": "yhteyshenkilö kirjaamo@example.fi"})
    texts = await stored_texts(api.client.app)
    assert not leaked(hetu(69), "hetu", texts) and not leaked("kirjaamo@example.fi", "email", texts)


async def test_display_names_hold_no_identifiers(api):
    """An expert's name is shown to everyone: an identifier there is refused. A name from the
    identity provider cannot be refused at sign-in, so its identifiers are removed before it is
    stored or shown to anyone else."""
    refused = await api.call("PUT", "/api/v1/experts/vantaa.uusi", "vantaa.admin", expect=422,
                             json={"name": f"Uusi Asiantuntija {hetu(70)}", "topics": ["other"]})
    assert refused["error"]["code"] == "identifier_in_text"
    cid, _ = await _claimed(api, n=71)
    token = api.issuer.mint(sub="kela.aino", org="kela", roles=["advisor"], name=f"Aino {hetu(72)}")
    response = await api.client.post(f"/api/v1/consultations/{cid}/messages", json={"text": "hei"},
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status == 201
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", VANTAA, expect=200)
    assert not leaked(hetu(72), "hetu", [("author", page["items"][0]["author"]["name"])])
    texts = await stored_texts(api.client.app)
    assert not leaked(hetu(70), "hetu", texts) and not leaked(hetu(72), "hetu", texts)


async def test_break_glass_justification_holds_no_identifier_of_any_kind(api):
    """The justification is kept in clear beside the audit log: every identifier is refused."""
    cid, _ = await _claimed(api, n=73)
    for text in ("Asiakkaan valitus, yhteys matti.meikalainen@example.fi, tarkistettava",
                 "Asiakkaan valitus, tilille FI21 1234 5600 0007 85 maksettu, tarkistettava"):
        refused = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", KELA_PO, expect=422,
                                 json={"justification": text})
        assert refused["error"]["code"] == "identifier_in_text"
    audit = await _audit_texts(api)
    assert not leaked("matti.meikalainen@example.fi", "email", audit)
    assert not leaked("FI21 1234 5600 0007 85", "iban", audit)


@pytest.fixture
def stricter(settings, tmp_path):
    """The shipped policies with one rule narrowed, as a county may do: a Kela advisor's IBAN
    reaches the county only in the income calculation, no longer at application intake."""
    policies = tmp_path / "policies"
    shutil.copytree(settings.policy_dir, policies)
    baseline = policies / "baseline.toml"
    text = baseline.read_text(encoding="utf-8")
    rule = text.index('id = "k2m-identifier-iban"')
    narrowed = re.sub(r"purposes = \[[^\]]*\]", 'purposes = ["tt.income_calculation"]', text[rule:], count=1)
    assert narrowed != text[rule:]  # the rule was narrowed, whatever its purposes are today
    baseline.write_text(text[:rule] + narrowed, encoding="utf-8")
    for cases in policies.glob("*.cases.toml"):
        cases.unlink()
    return replace(settings, policy_dir=policies)


async def test_attachment_name_identifiers_are_decided_per_reader_in_the_download(aiohttp_client, stricter):
    """The download's file name is the item's value as its reader may see it: an IBAN the policy
    does not let the county's expert receive is a marker in Content-Disposition too."""
    api = Api(await aiohttp_client(create_app(stricter)))
    cid, _ = await _claimed(api, purpose="tt.application_intake", n=74)
    iban = "FI21 1234 5600 0007 85"
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename=f"tiliote {iban}.pdf", content_type="application/pdf")
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", data=form, headers=api.auth(KELA))
    body = await response.json()
    assert response.status == 201, body
    own = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth(KELA))
    assert "FI21%201234" in own.headers["Content-Disposition"]  # the author sees what they wrote
    other = await api.client.get(f"/api/v1/attachments/{body['id']}", headers=api.auth(VANTAA))
    assert other.status == 200
    disposition = other.headers["Content-Disposition"]
    assert "iban%20withheld" in disposition and not leaked(iban, "iban", [("header", disposition)])
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", VANTAA, expect=200)
    assert page["items"][0]["data"][0]["value"] == "tiliote [iban withheld].pdf"


async def test_a_close_note_from_before_the_gate_is_shown_without_identifiers(api):
    """A note stored before the gate recorded its author and identifier positions (closed_by is
    empty) is shown to every reader with every identifier removed."""
    cid, _ = await _claimed(api, n=75)
    await api.call("POST", f"/api/v1/consultations/{cid}/close", VANTAA, expect=200, json={"outcome": "advice_given"})
    app = api.client.app
    content = app[keys.MESSAGES].content
    legacy = f"Soita 040 7654321, asiakas {NOTE_CODE}"

    async def write_legacy(conn):
        sealed = content.seal_note(await content.key(conn, cid), cid, legacy)
        await conn.execute(tables.consultations.update().where(tables.consultations.c.id == cid).values(
            outcome_note_sealed=sealed, closed_by=None, closed_org=None, closed_role=None))

    await app[keys.DB].write(write_legacy)
    for reader in (KELA, VANTAA):
        note = (await api.call("GET", f"/api/v1/consultations/{cid}", reader, expect=200))["outcome_note"]
        assert note.startswith("Soita ") and "poistettu" in note
        assert not leaked(NOTE_CODE, "hetu", [("n", note)]) and not leaked("040 7654321", "phone", [("n", note)])


def test_upgrade_removes_identifiers_from_references_and_names_kept_in_clear(tmp_path):
    """Migration 0009_gate: case and evidence references, agreement references (and their kept
    versions) and display names stored in clear before the gate lose every identifier; other
    values are left as they were."""
    import json
    import sqlite3

    from consult.storage import migrate

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url, "0008_hetu")
    code = "131052\u2013308T"  # as typed, with an en dash
    at = "2024-01-01 00:00:00"
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO clients (client_ref, hetu_index, hetu_sealed, created_at, created_by, created_org)"
                    f" VALUES ('cl_1', 'i1', x'00', '{at}', 'u', 'kela')")
        con.execute("INSERT INTO consultations (id, topic, urgency, question_sealed, purpose, origin_org, created_by,"
                    " target_org, case_ref, status, legal_hold, created_at) VALUES"
                    f" ('c1', 'other', 'today', x'00', 'general', 'kela', 'u', 'vantaa', 'TT {code}', 'open', 0, '{at}'),"
                    f" ('c2', 'other', 'today', x'00', 'general', 'kela', 'u', 'vantaa', 'TT-2024-1', 'open', 0, '{at}')")
        con.execute("INSERT INTO consents (id, version, client_ref, grantor, categories, recipient_orgs,"
                    " recipient_roles, recipient_users, purposes, valid_from, method, evidence_ref, recorded_by,"
                    " recorded_org, status, status_changed_at, created_at) VALUES ('k1', 1, 'cl_1', 'self', '[]',"
                    f" '[]', '[]', '[]', '[]', '{at}', 'written', 'soitto 040 7654321', 'u', 'kela', 'active',"
                    f" '{at}', '{at}')")
        con.execute("INSERT INTO agreements (id, reference, org_a, org_b, valid_from, topics, pools, version,"
                    f" created_at, created_by, updated_at, updated_by) VALUES ('a1', 'Sopimus {code}', 'kela',"
                    f" 'vantaa', '{at}', '[]', '[]', 1, '{at}', 'u', '{at}', 'u')")
        con.execute("INSERT INTO agreement_versions (agreement_id, version, snapshot, at, actor_id, actor_org)"
                    " VALUES ('a1', 1, ?, ?, 'u', 'kela')", (json.dumps({"reference": f"Sopimus {code}"}), at))
        con.execute("INSERT INTO directory_users (user_id, org, roles, name, last_seen) VALUES"
                    f" ('u', 'kela', '[]', 'Aino {code}', '{at}')")
    migrate.upgrade(url)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT id, case_ref FROM consultations ORDER BY id").fetchall() == [
            ("c1", "TT [poistettu]"), ("c2", "TT-2024-1")]
        assert con.execute("SELECT evidence_ref FROM consents").fetchone() == ("soitto [poistettu]",)
        assert con.execute("SELECT reference FROM agreements").fetchone() == ("Sopimus [poistettu]",)
        assert json.loads(con.execute("SELECT snapshot FROM agreement_versions").fetchone()[0]) == {
            "reference": "Sopimus [poistettu]"}
        assert con.execute("SELECT name FROM directory_users").fetchone() == ("Aino [poistettu]",)


def test_ids_the_service_issues_are_never_taken_for_identifiers():
    """About one UUID in a thousand holds digits shaped like a phone number ("0404-4187"): the
    service's own ids in a path are never refused as identifiers, or a consultation, message or
    attachment would answer 404 to its own participants by chance."""
    import uuid

    from consult.services import gate
    from consult.services.clients import new_client_ref

    assert not gate.holds_identifier("49b8226c-0404-4187-ad94-afeb2b83f33d")
    assert not any(gate.holds_identifier(str(uuid.uuid4())) for _ in range(20000))
    assert not any(gate.holds_identifier(new_client_ref()) for _ in range(2000))
    # Anything else that holds an identifier still does.
    assert gate.holds_identifier(f"x-{hetu(70)}") and gate.holds_identifier("040 123 4567")
