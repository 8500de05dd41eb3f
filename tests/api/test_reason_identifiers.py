"""Every written reason kept beside the audit log — a sender's confirmation of sensitive free
text (message, question, close note), a break-glass justification, the reason for an older
access report — is checked by the content gate's one rule for fields kept as typed
(``consult.services.gate.reference``): any identifier, however its dashes are written, refuses
the request with 422 ``identifier_in_text`` naming the field and kind, and nothing is stored."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import func, select

from consult.http import keys
from consult.storage import tables
from tests.api.test_gate_walk import HETU_FORMS, Identifiers
from tests.api.test_sensitive_text import _claimed
from tests.synthetic import hetu

CONFIRMING = {"text": "Asiakkaalla on masennus.", "categories": ["health"]}


def _reasons() -> list:
    """Each identifier the scanner knows, in every way of writing it, inside a reason."""
    idents = Identifiers().all()
    assert {i.variant for i in idents if i.kind == "hetu"} == set(HETU_FORMS)
    assert {i.kind for i in idents} == {"hetu", "iban", "phone", "email"}
    return [(i, f"Asiakas {i.value} pyysi tätä ohjausta varten.") for i in idents]


async def _stored(api) -> tuple[int, int]:
    async with api.client.app[keys.DB].read() as conn:
        reasons = (await conn.execute(select(func.count()).select_from(tables.audit_reasons))).scalar_one()
        messages = (await conn.execute(select(func.count()).select_from(tables.messages))).scalar_one()
    return reasons, messages


def _refused(body: dict, field: str, ident) -> None:
    error = body["error"]
    assert error["code"] == "identifier_in_text", (ident, body)
    assert {(f["field"], f["kind"]) for f in error["findings"]} == {(field, ident.kind)}, (ident, body)
    assert ident.value not in str(body)


async def test_a_confirmation_reason_with_any_identifier_is_refused_by_the_gate(api):
    cid, _ref = await _claimed(api, n=70)
    before = await _stored(api)
    for ident, reason in _reasons():
        confirmation = {"reason": reason, "categories": CONFIRMING["categories"]}
        body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=422,
                              json={"text": CONFIRMING["text"], "sensitive_confirmation": confirmation})
        _refused(body, "sensitive_confirmation.reason", ident)
        body = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", expect=422,
                              json={"outcome": "advice_given", "note": CONFIRMING["text"],
                                    "sensitive_confirmation": confirmation})
        _refused(body, "sensitive_confirmation.reason", ident)
    assert await _stored(api) == before
    seen = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert seen["status"] == "claimed"


async def test_a_question_confirmation_reason_with_any_identifier_is_refused(api):
    ref = await api.register(hetu(71))
    payload = {"topic": "other", "urgency": "today", "question": "Asiakkaan palkasta menee ulosottoon.",
               "purpose": "tt.service_guidance", "target_org": "vantaa", "client_ref": ref}
    for ident, reason in _reasons():
        body = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
            **payload, "sensitive_confirmation": {"reason": reason, "categories": ["debt"]}})
        _refused(body, "sensitive_confirmation.reason", ident)
    assert (await api.call("GET", "/api/v1/consultations", "kela.aino", expect=200))["items"] == []


async def test_break_glass_and_access_report_reasons_follow_the_same_grammar(api):
    cid, ref = await _claimed(api, n=72)
    before = await _stored(api)
    for ident, reason in _reasons():
        body = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", "vantaa.ville", expect=422,
                              json={"justification": reason + " Tarkastus."})
        _refused(body, "justification", ident)
        body = await api.call(
            "GET", f"/api/v1/clients/{ref}/access-report?from=2020-01-01T00:00:00Z&reason={quote(reason)}",
            "kela.tuula", expect=422)
        _refused(body, "reason", ident)
    assert await _stored(api) == before
