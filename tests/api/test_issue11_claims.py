"""Guarantees written in README.md and SECURITY.md about free text, written reasons and
identity claims that no other test pinned down: each test names the sentence it proves."""

from __future__ import annotations

import json

import aiohttp
import pytest
from sqlalchemy import func, select

from consult.http import keys
from consult.storage import tables
from tests.api.test_identity_edges import UNAUTHENTICATED, _call, _claims, _sign
from tests.api.test_sensitive_text import ISSUE_TEXT, REASON, _claimed

# -- README "API overview": a token's claims ------------------------------------------------------


@pytest.mark.parametrize("claims", [
    {"sub": "kela aino"},            # sub: 1–128 of A–Z a–z 0–9 . _ @ : -
    {"sub": "k" * 129},
    {"sub": ""},
    {"org": "Kela"},                 # org: 1–64 of a–z 0–9 _ -
    {"name": "Aino\ue000"},          # a private-use character
    {"name": "Aino\u2029Neuvoja"},   # a paragraph separator
    {"name": "Aino\u2066Neuvoja"},   # a bidirectional isolate (format character)
    {"roles": "advisor\nadmin"},
], ids=lambda c: repr(c)[:40])
async def test_claims_outside_the_documented_grammar_are_401(api, claims):
    token = _sign(api, _claims(**claims))
    assert await _call(api, "GET", "/api/v1/me", token) == (401, UNAUTHENTICATED)


async def test_roles_may_be_one_string_and_unknown_roles_are_ignored(api):
    status, me = await _call(api, "GET", "/api/v1/me", _sign(api, _claims(roles="advisor")))
    assert status == 200 and me["roles"] == ["advisor"]
    status, me = await _call(api, "GET", "/api/v1/me", _sign(api, _claims(roles=["advisor", "wizard"])))
    assert status == 200 and me["roles"] == ["advisor"]


# -- README "Sensitive categories in free text" -----------------------------------------------------


async def test_preview_names_the_signal_that_matched(api):
    cid, _ref = await _claimed(api, n=80)
    preview = await api.call("POST", f"/api/v1/consultations/{cid}/messages/preview", "vantaa.sanna",
                             expect=200, json={"text": ISSUE_TEXT})
    for flag in preview["sensitive"]:
        assert flag["signal"] and flag["withheld_from"][0]["citation"] and flag["withheld_from"][0]["reason"]


async def test_a_confirmation_reason_is_at_most_1000_characters(api):
    cid, _ref = await _claimed(api, n=81)
    for reason, status in (("x" * 1001, 422), ("Asiakas pyysi. " + "x" * 985, 201)):
        assert len(reason) in (1000, 1001)
        body = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=status,
                              json={"text": "Asiakkaalla on masennus.",
                                    "sensitive_confirmation": {"reason": reason, "categories": ["health"]}})
        if status == 422:
            assert body["error"]["code"] == "invalid_field"


def _upload_form(caption: str, confirmation: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.7\nX\n%%EOF\n", filename="liite.pdf", content_type="application/pdf")
    form.add_field("text", caption)
    if confirmation is not None:
        form.add_field("sensitive_confirmation", confirmation)
    return form


async def _messages_stored(api) -> int:
    async with api.client.app[keys.DB].read() as conn:
        return (await conn.execute(select(func.count()).select_from(tables.messages))).scalar_one()


async def test_an_attachment_caption_is_confirmed_like_a_message(api):
    """README "Signals in free text": a flagged caption is refused (409, nothing stored) until the
    upload carries a sensitive_confirmation part covering the flagged categories; the message
    that carries the file is then marked for the reader and the disclosure audited with it."""
    cid, _ref = await _claimed(api, purpose="tt.application_intake", n=82)
    caption = "Ulosoton maksusuunnitelma"
    url = f"/api/v1/consultations/{cid}/attachments"
    refused = await api.client.post(url, data=_upload_form(caption), headers=api.auth("kela.aino"))
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "sensitive_text" and error["categories"] == ["debt"]
    assert await _messages_stored(api) == 0

    confirmed = await api.client.post(url, headers=api.auth("kela.aino"), data=_upload_form(
        caption, json.dumps({"reason": REASON, "categories": ["debt"]})))
    assert confirmed.status == 201
    body = await confirmed.json()
    assert body["message"]["flagged_categories"] == ["debt"]
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    [seen] = page["items"]
    assert seen["flagged_categories"] == ["debt"] and seen["text"] == caption
    audit = await api.call("GET", f"/api/v1/audit/events?consultation_id={cid}&limit=200", "vantaa.ville",
                           expect=200)
    flagged = [e for e in audit["items"] if "sensitive_free_text" in e["flags"]]
    assert [e["message_id"] for e in flagged] == [body["message"]["id"]]
    assert flagged[0]["basis"] == "sender-confirmation" and flagged[0]["categories"] == ["debt"]


@pytest.mark.parametrize("part", [
    "not json",
    '["debt"]',
    '{"reason": "Liian lyhyt", "categories": []}',
    '{"reason": "Asiakas pyysi kertomaan tilanteen.", "categories": ["debt"], "extra": 1}',
    '{"reason": "lyhyt", "categories": ["debt"]}',
], ids=["not-json", "not-object", "no-categories", "unknown-key", "short-reason"])
async def test_a_malformed_caption_confirmation_is_422_and_stores_nothing(api, part):
    cid, _ref = await _claimed(api, purpose="tt.application_intake", n=83)
    response = await api.client.post(f"/api/v1/consultations/{cid}/attachments", headers=api.auth("kela.aino"),
                                     data=_upload_form("Ulosoton maksusuunnitelma", part))
    assert response.status == 422
    # An unknown field is refused as every body's is (unknown_field); the rest are invalid.
    expected = "unknown_field" if '"extra"' in part else "invalid_field"
    assert (await response.json())["error"]["code"] == expected
    assert await _messages_stored(api) == 0


async def test_a_caption_confirmation_must_cover_every_flagged_category(api):
    cid, _ref = await _claimed(api, purpose="tt.application_intake", n=84)
    response = await api.client.post(
        f"/api/v1/consultations/{cid}/attachments", headers=api.auth("kela.aino"),
        data=_upload_form("Ulosoton maksusuunnitelma", json.dumps({"reason": REASON, "categories": ["health"]})))
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "sensitive_text"
    assert await _messages_stored(api) == 0


# -- README "Break-glass stays inside the organisation's rights": identifiers in free text -----------


async def test_break_glass_decides_identifiers_in_free_text_for_the_officers_organisation(api):
    """In a general consultation a Vantaa expert's phone number is not Kela's to see: the Kela
    officer's break-glass shows the marker, the Vantaa officer's shows the number as written."""
    cid = (await api.open_consultation(purpose="general"))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"text": "Soita numeroon 040 7654321 huomenna."})
    why = {"justification": "Kantelu 2026-8 edellyttää keskustelun tarkistamista."}
    kela = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", "kela.tuula", expect=200, json=why)
    [message] = kela["messages"]
    assert "7654321" not in str(kela) and "[phone withheld]" in message["text"]
    vantaa = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", "vantaa.ville", expect=200,
                            json=why)
    assert "040 7654321" in vantaa["messages"][0]["text"]


# -- README "Reads are recorded too": live deliveries ---------------------------------------------------


def test_live_records_are_one_per_connection_consultation_and_kind_of_event():
    """Each batch holds one record per connection, consultation and kind of event, naming the
    message when it covers one and the categories shown; what carries no content, or was
    already recorded in its act's transaction, adds none."""
    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.services.deliveries import delivery_records
    from consult.services.events import Delivery, Reader

    reader = Reader(Principal("vantaa.sanna", "vantaa", frozenset({"expert"}), "Sanna"), RequestContext("ws-1"))
    tab1, tab2 = (lambda _e: None), (lambda _e: None)  # two connections of one user
    offered = {"type": "consultation.offered",
               "consultation": {"id": "c1", "client_ref": "cl_1", "purpose": "general", "question": "q"}}

    def message(mid: str, category: str, withheld: bool = False) -> dict:
        return {"type": "message.created", "message": {"id": mid, "consultation_id": "c1", "data": [
            {"category": category, **({"withheld": True} if withheld else {})}]}}

    batch = [Delivery("vantaa.sanna", sink, reader, event) for sink in (tab1, tab2)
             for event in (offered, offered, message("m1", "health"), message("m2", "debt", withheld=True))]
    batch += [Delivery("vantaa.sanna", tab1, reader, {"type": "presence", "user_id": "x"}),
              Delivery("vantaa.sanna", tab1, reader, message("m3", "housing.risk"), recorded=True)]
    grouped = delivery_records(batch)
    assert len(grouped) == 2  # one group per connection
    for who, records in grouped:
        assert who is reader
        assert sorted(r.action for r in records) == ["live.consultation.offered", "live.message.created"]
        [live] = [r for r in records if r.action == "live.message.created"]
        assert live.categories == ("health",) and live.message_id is None  # two messages, one shown item
        [offer] = [r for r in records if r.action == "live.consultation.offered"]
        assert offer.client_ref == "cl_1" and offer.consultation_id == "c1"
