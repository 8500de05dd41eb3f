"""Clients, consents and prohibitions over the API (docs/capabilities.md C3), and consent checks at read time."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from consult.http import keys
from consult.storage import audit_log
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

SOON = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()

CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "oral", "valid_until": SOON,
           "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä"}


async def test_register_client_is_stable_and_never_echoes_the_hetu(api, caplog):
    caplog.set_level(logging.DEBUG)
    code = hetu(7)
    first = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": code}, expect=201)
    again = await api.call("POST", "/api/v1/clients", "vantaa.sanna", json={"hetu": code.lower()}, expect=200)
    assert first["client_ref"] == again["client_ref"] and first["client_ref"].startswith("cl_")
    assert code not in json.dumps(first) and code not in caplog.text
    other = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": hetu(8)}, expect=201)
    assert other["client_ref"] != first["client_ref"]


@pytest.mark.parametrize("bad", ["010190-9001", "311390-900A", "not a hetu", "", 12345, "010190-900X" * 3])
async def test_invalid_hetu_is_422_without_echo(api, bad):
    err = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": bad}, expect=422)
    assert err["error"]["code"] == "invalid_hetu"
    assert not bad or str(bad) not in err["error"]["message"]


async def test_only_case_roles_register(api):
    await api.call("POST", "/api/v1/clients", "kela.tuula", json={"hetu": hetu(1)}, expect=403)
    await api.call("POST", "/api/v1/clients", "vantaa.admin", json={"hetu": hetu(1)}, expect=403)


async def test_consultation_needs_a_registered_client(api):
    err = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
        "topic": "other", "urgency": "normal", "question": "q", "purpose": "tt.application_intake",
        "target_org": "vantaa", "client_ref": "cl_ffffffffffffffffffff"})
    assert err["error"]["code"] == "unknown_client"


async def test_consent_lifecycle_is_audited_and_withdrawal_is_final(api):
    ref = await api.register(hetu(2))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    cid = consent["id"]
    assert consent["status"] == "active" and consent["version"] == 1 and consent["purposes"] == ["sh.multidisciplinary"]
    assert (await api.call("POST", f"/api/v1/consents/{cid}/suspend", "kela.aino", expect=200))["status"] == "suspended"
    await api.call("POST", f"/api/v1/consents/{cid}/suspend", "kela.aino", expect=409)
    assert (await api.call("POST", f"/api/v1/consents/{cid}/resume", "kela.aino", expect=200))["status"] == "active"
    v2 = await api.call("POST", f"/api/v1/consents/{cid}/versions", "kela.aino", expect=201,
                        json={**CONSENT, "categories": ["health", "debt"]})
    assert v2["version"] == 2 and v2["id"] == cid
    assert (await api.call("POST", f"/api/v1/consents/{cid}/revoke", "kela.aino", expect=200))["status"] == "withdrawn"
    await api.call("POST", f"/api/v1/consents/{cid}/resume", "kela.aino", expect=409)
    await api.call("POST", f"/api/v1/consents/{cid}/revoke", "kela.aino", expect=409)
    full = await api.call("GET", f"/api/v1/consents/{cid}", "kela.aino", expect=200)
    assert [e["event"] for e in full["events"]] == [
        "created", "suspended", "resumed", "superseded", "created", "withdrawn"]
    async with api.client.app[keys.DB].read() as conn:
        from sqlalchemy import text
        actions = (await conn.execute(text(
            "SELECT action FROM audit_events WHERE consent_id = :c ORDER BY seq"), {"c": cid})).scalars().all()
    assert actions == ["consent.created", "consent.suspended", "consent.resumed", "consent.superseded",
                       "consent.created", "consent.withdrawn", "consent.read"]  # the GET above is a read


async def test_consent_changes_only_by_recording_org(api):
    """Suspending, resuming and changing the scope stay with the recording organisation; a
    withdrawal the client tells either party of is recorded by that party (test_consent_record)."""
    ref = await api.register(hetu(3))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/suspend", "vantaa.paula", expect=403)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/versions", "vantaa.paula", json=CONSENT, expect=403)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/revoke", "kela.tuula", expect=403)
    listing = await api.call("GET", f"/api/v1/clients/{ref}/consents", "vantaa.paula", expect=200)
    assert [c["id"] for c in listing["items"]] == [consent["id"]]  # vantaa is a recipient


@pytest.mark.parametrize("patch", [
    {"categories": []}, {"categories": ["astrology"]}, {"recipient_orgs": ["espoo"]}, {"purpose": "general"},
    {"method": "telepathy"}, {"valid_until": "yesterday"}, {"valid_until": "2020-01-01"},
    {"grantor": "neighbour"}, {"colour": "blue"},
])
async def test_invalid_consents_are_422(api, patch):
    ref = await api.register(hetu(4))
    await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json={**CONSENT, **patch}, expect=422)


async def test_receipt_is_printable_text(api):
    ref = await api.register(hetu(5))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    for lang, title, health in (("fi", "KUITTI ASIAKKAALLE", "terveyttäsi"), ("sv", "KVITTO TILL KUNDEN", "hälsa"),
                                ("en", "RECEIPT FOR THE CLIENT", "your health")):
        response = await api.client.get(f"/api/v1/consents/{consent['id']}/receipt?lang={lang}",
                                        headers=api.auth("kela.aino"))
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
        assert title in text and consent["id"] in text and health in text


# -- consent scope at send and read time ---------------------------------------------------------


async def _setup(api, n=10):
    ref = await api.register(hetu(n))
    created = await api.open_consultation(purpose="sh.multidisciplinary", client_ref=ref)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=200)
    return created["id"], ref


async def _send_health(api, cid, consent_id, value="HEALTH-VALUE"):
    return await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "health info", "data": [{"category": "health", "value": value, "consent_id": consent_id}]})


async def _expert_sees(api, cid):
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    return page["items"][-1]["data"][0]


@pytest.mark.parametrize("scope,why", [
    ({"recipient_orgs": ["kela"], "disclosing_org": "kela"}, "wrong recipient org"),
    ({"purpose": "tt.service_guidance"}, "wrong purpose"),
    ({"categories": ["debt"]}, "category not covered"),
    ({"recipient_roles": ["social_worker"]}, "wrong recipient role"),
    ({"recipient_users": ["vantaa.mikko"]}, "wrong named person"),
])
async def test_consent_scope_must_cover_the_item(api, scope, why):
    cid, ref = await _setup(api)
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino",
                             json={**CONSENT, **scope}, expect=201)
    await _send_health(api, cid, consent["id"])
    item = await _expert_sees(api, cid)
    assert item["withheld"] is True, why


async def test_another_clients_consent_does_not_count(api):
    cid, _ = await _setup(api, 11)
    other = await api.register(hetu(12))
    consent = await api.call("POST", f"/api/v1/clients/{other}/consents", "kela.aino", json=CONSENT, expect=201)
    sent = await _send_health(api, cid, consent["id"])
    assert sent["policy"]["withheld"][0]["category"] == "health"
    assert (await _expert_sees(api, cid))["withheld"] is True


async def test_unknown_consent_id_is_422(api):
    cid, _ = await _setup(api, 13)
    err = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=422, json={
        "data": [{"category": "health", "value": "x", "consent_id": "00000000-0000-4000-8000-000000000000"}]})
    assert err["error"]["code"] == "unknown_consent"


async def test_withdrawn_suspended_and_expired_consents_stop_showing(api):
    """Property: after withdrawal the reader no longer sees what was disclosed, and sees why and since when."""
    cid, ref = await _setup(api, 14)
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await _send_health(api, cid, consent["id"], "HEALTH-42")
    assert (await _expert_sees(api, cid))["value"] == "HEALTH-42"

    await api.call("POST", f"/api/v1/consents/{consent['id']}/suspend", "kela.aino", expect=200)
    item = await _expert_sees(api, cid)
    assert item["withheld"] is True and item["consent"]["status"] == "suspended"
    await api.call("POST", f"/api/v1/consents/{consent['id']}/resume", "kela.aino", expect=200)
    assert (await _expert_sees(api, cid))["value"] == "HEALTH-42"

    await api.call("POST", f"/api/v1/consents/{consent['id']}/revoke", "kela.aino", expect=200)
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    item = page["items"][-1]["data"][0]
    assert item["withheld"] is True and item["consent"]["status"] == "withdrawn" and item["consent"]["since"]
    assert "HEALTH-42" not in json.dumps(page)
    # The audit trail keeps what was disclosed while it was valid.
    async with api.client.app[keys.DB].read() as conn:
        rows = await audit_log.for_consultation(conn, cid)
    disclosed = [r for r in rows if r["action"] == "disclose" and r["consent_id"] == consent["id"]]
    assert disclosed and disclosed[0]["consent_version"] == 1 and disclosed[0]["outcome"] == "permit"

    expired = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", expect=201,
                             json={**CONSENT, "valid_from": "2020-01-01T00:00:00Z",
                                   "valid_until": "2020-06-01T00:00:00Z"})
    assert expired["status"] == "expired"
    await _send_health(api, cid, expired["id"], "HEALTH-OLD")
    item = await _expert_sees(api, cid)
    assert item["withheld"] is True and item["consent"]["status"] == "expired"


async def test_live_event_respects_consent(api):
    cid, ref = await _setup(api, 15)
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/revoke", "kela.aino", expect=200)
    ws = await connect(api, "vantaa.sanna")
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "t", "data": [{"category": "health", "value": "LIVE-SECRET", "consent_id": consent["id"]}]})
    event = await next_event(ws, "message.created")
    assert event["message"]["data"][0]["withheld"] is True and "LIVE-SECRET" not in json.dumps(event)
    await ws.close()


async def test_prohibition_beats_consent_and_can_be_lifted(api):
    cid, ref = await _setup(api, 16)
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await _send_health(api, cid, consent["id"], "PROHIBITED-VALUE")
    assert (await _expert_sees(api, cid))["value"] == "PROHIBITED-VALUE"
    prohibition = await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                                 json={"category": "health", "org": "vantaa"}, expect=201)
    assert (await _expert_sees(api, cid))["withheld"] is True
    listing = await api.call("GET", f"/api/v1/clients/{ref}/prohibitions", "kela.tuula", expect=200)
    assert [p["id"] for p in listing["items"]] == [prohibition["id"]]
    await api.call("POST", f"/api/v1/prohibitions/{prohibition['id']}/revoke", "vantaa.paula", expect=404)
    await api.call("POST", f"/api/v1/prohibitions/{prohibition['id']}/revoke", "kela.aino", expect=200)
    assert (await _expert_sees(api, cid))["value"] == "PROHIBITED-VALUE"


# -- § 35 referral ---------------------------------------------------------------------------


async def test_referral_without_consent_needs_recorded_condition_and_is_flagged(api):
    ref = await api.register(hetu(17))
    created = await api.open_consultation(purpose="sh.referral", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)  # the intake
    # Without consent and without a recorded § 35(2) ground: withheld.
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "referral", "data": [{"category": "service_need.referral", "value": "NEEDS-HELP-1"}]})
    assert sent["policy"]["withheld"]
    # With the ground recorded: delivered, and flagged for the privacy officer.
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "urgent referral", "data": [{
            "category": "service_need.referral", "value": "NEEDS-HELP-2",
            "referral": {"condition": "unable_to_look_after_self",
                         "justification": "Cannot manage own affairs.",
                         "why_no_consent": "No one reachable to consent."}}]})
    assert sent["policy"]["withheld"] == []
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert page["items"][-1]["data"][0]["value"] == "NEEDS-HELP-2"
    async with api.client.app[keys.DB].read() as conn:
        rows = await audit_log.for_consultation(conn, cid)
    flagged = [r for r in rows if r["flags"] and "referral_without_consent" in r["flags"]]
    assert len(flagged) == 1 and flagged[0]["outcome"] == "permit"
    bad = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=422, json={
        "data": [{"category": "service_need.referral", "value": "x",
                  "referral": {"condition": "because", "justification": "x", "why_no_consent": "x"}}]})
    assert bad["error"]["code"] == "invalid_field"
