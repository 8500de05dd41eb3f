"""Disclosure prohibitions are the recording organisation's business (docs/capabilities.md C3).

Only the recording organisation's advisors, social workers and privacy officers list a client's
prohibitions, with who recorded them and for which categories. Anyone else learns only that an
item was withheld from them by a prohibition — in the disclosure result, never who recorded it or
for which other categories.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.synthetic import hetu

CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "oral", "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä",
           "valid_until": (datetime.now(UTC) + timedelta(days=90)).date().isoformat()}


async def _prohibited(api, n: int) -> tuple[str, str, list[str]]:
    """Kela records a health prohibition towards Vantaa and a child-welfare prohibition."""
    ref = await api.register(hetu(n))
    ids = []
    for body in ({"category": "health", "org": "vantaa"}, {"category": "child_welfare"}):
        ids.append((await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino", json=body,
                                   expect=201))["id"])
    cid = (await api.open_consultation(purpose="sh.multidisciplinary", client_ref=ref))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    return ref, cid, ids


@pytest.mark.parametrize("user", ["kela.aino", "kela.eero", "kela.tuula"])
async def test_recording_organisation_lists_its_prohibitions_with_creators(api, user):
    """The recording organisation's readers see its prohibitions in full."""
    ref, _cid, ids = await _prohibited(api, 50)
    listing = await api.call("GET", f"/api/v1/clients/{ref}/prohibitions", user, expect=200)
    assert sorted(p["id"] for p in listing["items"]) == sorted(ids)
    assert {p["created_by"] for p in listing["items"]} == {"kela.aino"}
    assert {p["category"] for p in listing["items"]} == {"health", "child_welfare"}


@pytest.mark.parametrize("user", ["vantaa.paula", "vantaa.ville", "vantaa.sanna", "vantaa.admin"])
async def test_another_organisation_never_reads_the_prohibitions(api, user):
    """A social worker, privacy officer, expert or admin of another organisation learns nothing
    of Kela's prohibitions from the list: 403, or a list without them."""
    ref, _cid, _ids = await _prohibited(api, 51)
    response = await api.client.get(f"/api/v1/clients/{ref}/prohibitions", headers=api.auth(user))
    body = await response.text()
    assert response.status in (200, 403, 404), body
    if response.status == 200:
        assert json.loads(body)["items"] == []
    assert "kela.aino" not in body and "child_welfare" not in body and "health" not in body


async def test_the_other_organisation_sees_its_own_prohibitions_only(api):
    """Each organisation keeps its own list: Vantaa's prohibition is Vantaa's, Kela's is Kela's."""
    ref, _cid, kela_ids = await _prohibited(api, 52)
    own = await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "vantaa.paula",
                         json={"category": "debt", "org": "kela"}, expect=201)
    vantaa = await api.call("GET", f"/api/v1/clients/{ref}/prohibitions", "vantaa.ville", expect=200)
    assert [p["id"] for p in vantaa["items"]] == [own["id"]]
    kela = await api.call("GET", f"/api/v1/clients/{ref}/prohibitions", "kela.tuula", expect=200)
    assert sorted(p["id"] for p in kela["items"]) == sorted(kela_ids)


async def test_the_reader_learns_only_that_the_item_was_withheld_by_a_prohibition(api):
    """The disclosure result names the rule that withheld the item — not who recorded the
    prohibition, nor which other categories the client's prohibitions cover."""
    ref, cid, _ids = await _prohibited(api, 53)
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "liitteenä tieto", "data": [{"category": "health", "value": "PROHIBITED-HEALTH",
                                          "consent_id": consent["id"]}]})
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    [item] = page["items"][-1]["data"]
    assert item["withheld"] is True and item["rule"] == "client-prohibition" and item["category"] == "health"
    raw = json.dumps(page)
    assert "PROHIBITED-HEALTH" not in raw and "child_welfare" not in raw
    assert "created_by" not in json.dumps(item) and "kela.aino" not in json.dumps(item)
