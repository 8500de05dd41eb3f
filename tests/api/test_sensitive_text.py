"""Free text to another organisation is checked against what that reader may not receive
(policies/signals.toml): the preview and the send flag it, sending needs a structured item or a
confirmation with a reason, a confirmation is audited, and the reader sees the mark."""

from __future__ import annotations

from consult.http import keys
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

ISSUE_TEXT = "perusosaa alennettu 20 %, asiakkaalla skitsofrenia ja lastensuojelun asiakkuus"
REASON = "Asiakas pyysi, että neuvoja tietää tilanteen ohjausta varten."


async def _claimed(api, purpose: str = "tt.income_calculation", n: int = 40) -> tuple[str, str]:
    ref = await api.register(hetu(n))
    created = await api.open_consultation(purpose=purpose, client_ref=ref)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=200)
    return created["id"], ref


async def _audit(api, consultation_id: str) -> list[dict]:
    page = await api.call("GET", f"/api/v1/audit/events?consultation_id={consultation_id}&limit=200",
                          "vantaa.ville", expect=200)
    return page["items"]


async def test_decision_content_health_and_child_welfare_in_text_are_refused_unconfirmed(api):
    """A Vantaa expert's free text that looks like decision content, health and child welfare
    does not reach the Kela advisor without the sender's confirmation; nothing is stored."""
    cid, _ref = await _claimed(api)
    before = len(await _audit(api, cid))
    body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=409,
                          json={"text": ISSUE_TEXT})
    error = body["error"]
    assert error["code"] == "sensitive_text"
    assert error["categories"] == ["child_welfare", "decision.content", "health"]
    spans = {f["category"]: ISSUE_TEXT[f["start"]:f["end"]] for f in error["flagged"]}
    assert spans == {"decision.content": "perusosaa alennettu 20 %", "health": "skitsofrenia",
                     "child_welfare": "lastensuojelun"}
    rules = {f["category"]: f["withheld_from"][0]["rule"] for f in error["flagged"]}
    assert rules["decision.content"] == "kela-never-decision-content"
    assert rules["child_welfare"] == "child-welfare-never-crosses"
    assert error["flagged"][0]["withheld_from"][0]["recipient"]["org"] == "kela"
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert page["items"] == []
    after = await _audit(api, cid)
    assert not [e for e in after[: len(after) - before] if e["action"].startswith(("message", "disclose"))]


async def test_preview_flags_the_same_passages_and_stores_nothing(api):
    cid, _ref = await _claimed(api, n=41)
    preview = await api.call("POST", f"/api/v1/consultations/{cid}/messages/preview", "vantaa.sanna",
                             expect=200, json={"text": ISSUE_TEXT})
    assert sorted(f["category"] for f in preview["sensitive"]) == ["child_welfare", "decision.content",
                                                                   "health"]
    assert (await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna"))["items"] == []
    ordinary = await api.call("POST", f"/api/v1/consultations/{cid}/messages/preview", "vantaa.sanna",
                              expect=200, json={"text": "Päätös on voimassa 31.3. asti."})
    assert ordinary["sensitive"] == []


async def test_a_confirmation_must_cover_every_flagged_category(api):
    cid, _ref = await _claimed(api, n=42)
    body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=409,
                          json={"text": ISSUE_TEXT, "sensitive_confirmation": {
                              "reason": REASON, "categories": ["health"]}})
    assert body["error"]["code"] == "sensitive_text"


async def test_a_reason_with_an_identity_code_is_refused_and_nothing_is_stored(api):
    cid, _ref = await _claimed(api, n=43)
    code = hetu(44)
    body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=422,
                          json={"text": ISSUE_TEXT, "sensitive_confirmation": {
                              "reason": f"Asiakas {code} pyysi tätä.",
                              "categories": ["child_welfare", "decision.content", "health"]}})
    assert body["error"]["code"] == "identifier_in_text" and code not in str(body)
    assert (await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna"))["items"] == []


async def test_a_confirmed_text_is_sent_marked_and_audited_with_the_reason(api):
    """The sender answers for confirmed free text: the reader sees the mark (REST and live), the
    disclosure is in the log with the reason beside it, and the log still verifies."""
    cid, ref = await _claimed(api, n=45)
    ws = await connect(api, "kela.aino")
    try:
        sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                              json={"text": ISSUE_TEXT, "sensitive_confirmation": {
                                  "reason": REASON,
                                  "categories": ["child_welfare", "decision.content", "health"]}})
        live = await next_event(ws, "message.created")
    finally:
        await ws.close()
    cats = ["child_welfare", "decision.content", "health"]
    assert sent["flagged_categories"] == cats
    assert live["message"]["flagged_categories"] == cats
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    [message] = page["items"]
    assert message["flagged_categories"] == cats and message["text"] == ISSUE_TEXT

    events = [e for e in await _audit(api, cid) if "sensitive_free_text" in e["flags"]]
    assert sorted(c for e in events for c in e["categories"]) == cats
    for e in events:
        assert e["action"] == "disclose" and e["basis"] == "sender-confirmation"
        assert e["actor"]["id"] == "vantaa.sanna" and e["recipient"]["org"] == "kela"
        assert e["message_id"] == sent["id"] and e["client_ref"] == ref and e["reason_id"]
    assert len({e["reason_id"] for e in events}) == 1
    # The Kela privacy officer sees the disclosure to their organisation too.
    kela = await api.call("GET", "/api/v1/audit/disclosures?basis=sender-confirmation", "kela.tuula",
                          expect=200)
    assert {d["message_id"] for d in kela["items"]} == {sent["id"]}
    reason = await api.call("GET", f"/api/v1/audit/reasons/{events[0]['reason_id']}", "vantaa.ville",
                            expect=200)
    assert reason["text"] == REASON and reason["kind"] == "sensitive_free_text"
    assert (await api.call("GET", "/api/v1/audit/verify", "vantaa.ville", expect=200))["ok"] is True


async def test_moving_the_passage_into_a_structured_item_lets_the_policy_decide(api):
    cid, _ref = await _claimed(api, purpose="sh.multidisciplinary", n=46)
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                          json={"text": "Katso tieto alla.", "data": [{"category": "health",
                                                                        "value": "skitsofrenia"}]})
    assert sent["flagged_categories"] == [] and sent["sensitive"] == []
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    [message] = page["items"]
    assert message["data"][0]["withheld"] is True and "skitsofrenia" not in str(message)


async def test_ordinary_text_passes_unflagged(api):
    cid, _ref = await _claimed(api, n=47)
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                          json={"text": "Hakemus on käsittelyssä, päätös on voimassa 31.3. asti."})
    assert sent["flagged_categories"] == [] and sent["sensitive"] == []


async def test_the_advisor_is_checked_too(api):
    """Kela to the municipality: debt and health need consent, so free text is flagged."""
    cid, _ref = await _claimed(api, purpose="tt.service_guidance", n=48)
    body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=409,
                          json={"text": "Asiakkaalla on ulosotossa velkaa ja masennus."})
    assert body["error"]["categories"] == ["debt", "health"]
    rules = {w["rule"] for f in body["error"]["flagged"] for w in f["withheld_from"]}
    assert rules == {"k2m-debt-consent", "k2m-health-consent"}


async def test_an_unclaimed_consultation_checks_against_the_target_organisation(api):
    ref = await api.register(hetu(49))
    created = await api.open_consultation(purpose="tt.service_guidance", client_ref=ref)
    body = await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "kela.aino",
                          expect=409, json={"text": "Asiakas on asunnoton."})
    [flag] = body["error"]["flagged"]
    assert flag["category"] == "housing.risk"
    assert flag["withheld_from"][0]["recipient"] == {"user_id": None, "org": "vantaa", "role": "expert"}


async def test_a_confirmation_reason_is_validated(api):
    cid, _ref = await _claimed(api, n=50)
    for bad in ({"reason": "lyhyt", "categories": ["health"]},
                {"reason": REASON, "categories": []},
                {"reason": REASON, "categories": ["no.such"]},
                {"reason": REASON},
                "yes"):
        body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=422,
                              json={"text": "Asiakkaalla on masennus.", "sensitive_confirmation": bad})
        assert body["error"]["code"] in ("invalid_field", "invalid")


async def test_the_reason_is_kept_beside_the_log_not_in_it(api):
    cid, _ref = await _claimed(api, n=51)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"text": "Asiakkaalla on masennus.", "sensitive_confirmation": {
                       "reason": "MARKER-REASON-4242 ohjausta varten", "categories": ["health"]}})
    from sqlalchemy import text
    async with api.client.app[keys.DB].read() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_events"))).all()
    assert "MARKER-REASON-4242" not in str(rows)


async def test_reasons_are_read_by_privacy_officers_of_the_organisations_concerned(api):
    """A written reason is shown only to a privacy officer whose organisation a record that
    refers to it concerns; every read is logged; confirmed sends are in the anomaly list."""
    cid, _ref = await _claimed(api, n=52)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"text": "Asiakkaalla on masennus.",
                         "sensitive_confirmation": {"reason": REASON, "categories": ["health"]}})
    [event] = [e for e in await _audit(api, cid) if "sensitive_free_text" in e["flags"]]
    path = f"/api/v1/audit/reasons/{event['reason_id']}"
    await api.call("GET", path, "kela.aino", expect=403)
    await api.call("GET", path, "vantaa.sanna", expect=403)
    assert (await api.call("GET", path, "kela.tuula", expect=200))["text"] == REASON
    await api.call("GET", "/api/v1/audit/reasons/no-such-reason", "vantaa.ville", expect=404)
    glass = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", "vantaa.ville", expect=200,
                           json={"justification": "Tarkastus asiakkaan pyynnöstä tietopyyntöön."})
    page = await api.call("GET", f"/api/v1/audit/events?consultation_id={cid}&action=break_glass",
                          "vantaa.ville", expect=200)
    glass_reason = page["items"][0]["reason_id"]
    assert glass["audit"]["flagged"] is True
    await api.call("GET", f"/api/v1/audit/reasons/{glass_reason}", "kela.tuula", expect=404)
    logged = await api.call("GET", "/api/v1/audit/events?action=audit.reason", "kela.tuula", expect=200)
    assert len(logged["items"]) == 1
    anomalies = await api.call("GET", "/api/v1/audit/anomalies", "vantaa.ville", expect=200)
    assert any(a["kind"] == "sensitive_free_text" and a["consultation_id"] == cid for a in anomalies["items"])


async def test_a_question_is_checked_against_the_target_organisation(api):
    """The question of a new consultation goes to the target organisation's experts: flagged
    like a message, sent only on confirmation, marked for the expert and audited."""
    ref = await api.register(hetu(53))
    question = "Asiakkaan palkasta menee ulosottoon, miten se huomioidaan?"
    payload = {"topic": "other", "urgency": "today", "question": question,
               "purpose": "tt.service_guidance", "target_org": "vantaa", "client_ref": ref}
    body = await api.call("POST", "/api/v1/consultations", "kela.aino", json=payload, expect=409)
    assert body["error"]["code"] == "sensitive_text" and body["error"]["categories"] == ["debt"]
    [flag] = body["error"]["flagged"]
    assert question[flag["start"]:flag["end"]] == "ulosottoon"
    mine = await api.call("GET", "/api/v1/consultations", "kela.aino", expect=200)
    assert mine["items"] == []
    created = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=201, json={
        **payload, "sensitive_confirmation": {"reason": REASON, "categories": ["debt"]}})
    assert created["flagged_categories"] == ["debt"]
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=200)
    seen = await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.sanna", expect=200)
    assert seen["flagged_categories"] == ["debt"] and seen["question"] == question
    events = await api.call("GET", f"/api/v1/audit/events?consultation_id={created['id']}",
                            "kela.tuula", expect=200)
    [disclosed] = [e for e in events["items"] if "sensitive_free_text" in e["flags"]]
    assert disclosed["categories"] == ["debt"] and disclosed["recipient"]["org"] == "vantaa"
    assert disclosed["basis"] == "sender-confirmation" and disclosed["reason_id"]


async def test_an_ordinary_question_is_not_flagged(api):
    created = await api.open_consultation(question="Mihin aikaan Tikkurilan palvelupiste on auki?",
                                          purpose="general")
    assert created["flagged_categories"] == [] and created["sensitive"] == []


async def test_the_access_report_lists_a_confirmed_text_and_own_colleagues_are_not_checked(api):
    """The client access report shows the confirmed disclosure with its basis; a reader in the
    sender's own organisation is never among those a passage is withheld from."""
    cid, ref = await _claimed(api, purpose="sh.multidisciplinary", n=54)
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)  # known to the service
    await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna", expect=200,
                   json={"user_id": "vantaa.paula"})
    body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=409,
                          json={"text": "Asiakkaalla on masennus."})
    recipients = {w["recipient"]["org"] for f in body["error"]["flagged"] for w in f["withheld_from"]}
    assert recipients == {"kela"}
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"text": "Asiakkaalla on masennus.",
                         "sensitive_confirmation": {"reason": REASON, "categories": ["health"]}})
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", "kela.tuula", expect=200)
    [disclosed] = [d for d in report["disclosures"] if "sensitive_free_text" in d["flags"]]
    assert disclosed["basis"] == "sender-confirmation" and disclosed["categories"] == ["health"]
    assert disclosed["to"]["org"] == "kela" and disclosed["from"]["id"] == "vantaa.sanna"


async def test_a_reason_with_any_identifier_is_refused(api):
    cid, _ref = await _claimed(api, n=55)
    for reason in ("Soita asiakkaalle numeroon 040 1234567 huomenna.",
                   "Asiakkaan tili FI49 5000 0120 0005 67 on mainittu.",
                   "Kysy lisää osoitteesta matti.meikalainen@example.fi kiitos."):
        body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=422,
                              json={"text": "Asiakkaalla on masennus.", "sensitive_confirmation": {
                                  "reason": reason, "categories": ["health"]}})
        assert body["error"]["code"] == "identifier_in_text"


async def test_an_attachment_caption_that_looks_sensitive_is_refused(api):
    cid, _ref = await _claimed(api, purpose="tt.application_intake", n=56)
    png = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    from aiohttp import FormData
    form = FormData()
    form.add_field("file", png, filename="liite.png", content_type="image/png")
    form.add_field("text", "Ulosoton maksusuunnitelma")
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", data=form,
                                     headers=api.auth("kela.aino"))
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "sensitive_text"
