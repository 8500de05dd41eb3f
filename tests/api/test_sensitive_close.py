"""The close note is free text for the other participants: checked against what a recipient in
another organisation may not receive, like a message (consult/services/sensitive.py)."""

from __future__ import annotations

from tests.api.test_request_schemas import alternatives, inline
from tests.api.test_sensitive_text import ISSUE_TEXT, REASON, _audit, _claimed
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

CATS = ["child_welfare", "decision.content", "health"]


async def test_a_sensitive_close_note_is_refused_unconfirmed_and_nothing_is_stored(api):
    """The issue's note from a Vantaa expert does not reach the Kela advisor unconfirmed: 409
    with the flagged passages, the consultation stays open and nothing is logged as closed."""
    cid, _ref = await _claimed(api, n=60)
    body = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=409,
                          json={"outcome": "advice_given", "note": ISSUE_TEXT})
    assert body["error"]["code"] == "sensitive_text" and body["error"]["categories"] == CATS
    spans = {f["category"]: ISSUE_TEXT[f["start"]:f["end"]] for f in body["error"]["flagged"]}
    assert spans["decision.content"] == "perusosaa alennettu 20 %"
    assert all(w["recipient"]["org"] == "kela" for f in body["error"]["flagged"] for w in f["withheld_from"])
    seen = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert seen["status"] == "claimed" and seen["outcome_note"] is None
    assert not [e for e in await _audit(api, cid) if e["action"] == "consultation.close"]
    # A confirmation must cover every flagged category.
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=409,
                   json={"outcome": "advice_given", "note": ISSUE_TEXT,
                         "sensitive_confirmation": {"reason": REASON, "categories": ["health"]}})


async def test_a_confirmed_close_note_is_marked_for_readers_and_audited(api):
    cid, ref = await _claimed(api, n=61)
    ws = await connect(api, "kela.aino")
    try:
        closed = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=200,
                                json={"outcome": "advice_given", "note": ISSUE_TEXT,
                                      "sensitive_confirmation": {"reason": REASON, "categories": CATS}})
        live = await next_event(ws, "consultation.closed")
    finally:
        await ws.close()
    assert closed["outcome_flagged_categories"] == CATS
    assert sorted(f["category"] for f in closed["sensitive"]) == CATS
    assert live["consultation"]["outcome_flagged_categories"] == CATS
    seen = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert seen["outcome_flagged_categories"] == CATS and seen["outcome_note"] == ISSUE_TEXT
    assert seen["flagged_categories"] == []  # the question was not flagged
    events = [e for e in await _audit(api, cid) if "sensitive_free_text" in e["flags"]]
    assert sorted(c for e in events for c in e["categories"]) == CATS
    for e in events:
        assert e["action"] == "disclose" and e["basis"] == "sender-confirmation"
        assert e["rule_id"] == "sender-confirmed-free-text"
        assert e["actor"]["id"] == "vantaa.sanna" and e["recipient"]["org"] == "kela"
        assert e["message_id"] is None and e["client_ref"] == ref and e["reason_id"]
    assert len({e["reason_id"] for e in events}) == 1
    reason = await api.call("GET", f"/api/v1/audit/reasons/{events[0]['reason_id']}", "kela.tuula", expect=200)
    assert reason["text"] == REASON and reason["kind"] == "sensitive_free_text"
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", "kela.tuula", expect=200)
    assert {c for d in report["disclosures"] if "sensitive_free_text" in d["flags"]
            for c in d["categories"]} == set(CATS)
    anomalies = await api.call("GET", "/api/v1/audit/anomalies", "kela.tuula", expect=200)
    assert any(a["kind"] == "sensitive_free_text" and a["consultation_id"] == cid for a in anomalies["items"])
    assert (await api.call("GET", "/api/v1/audit/verify", "vantaa.ville", expect=200))["ok"] is True


async def test_an_ordinary_close_note_is_not_flagged(api):
    cid, _ref = await _claimed(api, n=62)
    closed = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=200,
                            json={"outcome": "advice_given", "note": "Neuvottu hakemaan verkossa."})
    assert closed["outcome_flagged_categories"] == [] and closed["sensitive"] == []


async def test_a_close_confirmation_reason_with_an_identifier_is_refused(api):
    cid, _ref = await _claimed(api, n=63)
    code = hetu(64)
    body = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=422,
                          json={"outcome": "advice_given", "note": ISSUE_TEXT, "sensitive_confirmation": {
                              "reason": f"Asiakas {code} pyysi tätä.", "categories": CATS}})
    assert body["error"]["code"] == "identifier_in_text" and code not in str(body)
    seen = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert seen["status"] == "claimed"


async def test_the_close_body_documents_the_confirmation(api):
    doc = await api.call("GET", "/api/v1/openapi.json", expect=200)
    operation = doc["paths"]["/api/v1/consultations/{id}/close"]["post"]
    schema = inline(operation["requestBody"]["content"]["application/json"]["schema"], doc)
    confirmation = next(m for m in alternatives(schema["properties"]["sensitive_confirmation"]) if "required" in m)
    assert set(confirmation["required"]) == {"reason", "categories"}
    assert "409" in operation["responses"]
