"""One person, one client (docs/capabilities.md C3): an identity code typed with an en dash, a minus sign, a
non-breaking hyphen or an em dash is the same client as the ASCII code, so prohibitions,
consents and the access report follow the person and not the keyboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.synthetic import hetu

SOON = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()

CODE = "131052-308T"
VARIANTS = ["131052\u2013308T", "131052\u2212308T", "131052\u2011308T", "131052\u2014308T",
            " 131052 - 308t ", "\uff11\uff13\uff11\uff10\uff15\uff12-308T", "131052\u200b-308T"]
KELA_PO = "kela.tuula"


async def test_every_typed_variant_is_the_same_client(api):
    """The registry indexes the canonical form: no variant registers a second client."""
    ref = await api.register(CODE)
    for variant in VARIANTS:
        again = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": variant}, expect=200)
        assert again == {"client_ref": ref, "created": False}
        found = await api.call("POST", "/api/v1/clients/lookup", "kela.tuula", json={"hetu": variant},
                               expect=200)
        assert found["client_ref"] == ref


async def test_prohibition_on_the_canonical_code_stops_the_item_under_the_dashed_code(api):
    """Regression: a health prohibition recorded on the canonical ref did not stop the same
    health item sent under the en-dash ref, and the canonical access report missed it."""
    ref = await api.register(CODE)
    await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                   json={"category": "health", "org": "vantaa"}, expect=201)
    dashed_ref = await api.register("131052\u2013308T", user="kela.aino")
    created = await api.open_consultation(purpose="sh.multidisciplinary", client_ref=dashed_ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    consent = await api.call("POST", f"/api/v1/clients/{dashed_ref}/consents", "kela.aino", expect=201, json={
        "categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
        "method": "oral", "valid_until": SOON,
           "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä"})
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "health info", "data": [{"category": "health", "value": "HEALTH-VALUE",
                                         "consent_id": consent["id"]}]})
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    item = page["items"][-1]["data"][0]
    assert item["withheld"] is True and "HEALTH-VALUE" not in str(page)
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", KELA_PO, expect=200)
    assert cid in {p["consultation_id"] for p in report["processing"]}


@pytest.mark.parametrize("dash", ["\u2013", "\u2212", "\u2011", "\u2014"])
async def test_dashed_code_in_a_question_becomes_the_link_to_the_same_client(api, dash):
    code = hetu(30)
    ref = await api.register(code)
    dashed = code.replace("-", dash)
    created = await api.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                          question=f"Asiakas {dashed} kysyy vuokrasta")
    assert created["question"] == f"Asiakas [client:{ref}] kysyy vuokrasta"
    assert dashed not in str(created) and code not in str(created)
