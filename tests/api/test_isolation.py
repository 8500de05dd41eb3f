"""Isolation between advisors, organisations and roles (the security floor, docs/capabilities.md): what
you may not see is 404."""

from __future__ import annotations

import pytest

from tests.api.wsutil import connect, next_event, no_event

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found."}}


async def _claimed(api, **fields):
    created = await api.open_consultation(**fields)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "vantaa.sanna",
                   json={"text": "private answer"}, expect=201)
    return created["id"]


@pytest.mark.parametrize("outsider", ["kela.eero", "vantaa.mikko", "vantaa.paula", "kela.tuula",
                                      "vantaa.ville", "kela.admin", "vantaa.admin"])
async def test_non_participants_get_404_everywhere(api, outsider):
    """Property: a consultation is invisible to anyone who is not a participant — same 404 as a missing one."""
    cid = await _claimed(api)
    await api.call("GET", "/api/v1/me", outsider, expect=200)
    for method, path, body in [
        ("GET", f"/api/v1/consultations/{cid}", None),
        ("GET", f"/api/v1/consultations/{cid}/messages", None),
        ("POST", f"/api/v1/consultations/{cid}/messages", {"text": "hi"}),
        ("POST", f"/api/v1/consultations/{cid}/participants", {"user_id": outsider}),
        ("POST", f"/api/v1/consultations/{cid}/close", {"outcome": "declined"}),
        ("POST", f"/api/v1/consultations/{cid}/read", {"message_id": cid}),
    ]:
        assert await api.call(method, path, outsider, json=body, expect=404) == NOT_FOUND, (method, path)
    missing = "00000000-0000-4000-8000-000000000000"
    assert await api.call("GET", f"/api/v1/consultations/{missing}", outsider, expect=404) == NOT_FOUND
    listing = await api.call("GET", "/api/v1/consultations", outsider, expect=200)
    assert cid not in [c["id"] for c in listing["items"]]


async def test_claim_by_non_expert_roles(api):
    created = await api.open_consultation()
    cid = created["id"]
    # The creator can see it but is not an expert: 403.
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "kela.aino", expect=403)
    # A Kela advisor who is not a participant does not see it at all.
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "kela.eero", expect=404)
    # The social worker of the target org is not an on-duty expert: 404.
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=404)


async def test_off_duty_expert_is_not_offered_and_cannot_claim(api):
    await api.call("PUT", "/api/v1/experts/vantaa.mikko", "vantaa.mikko", json={"on_duty": False}, expect=200)
    mikko = await connect(api, "vantaa.mikko")
    aino = await connect(api, "kela.aino")  # the creator: her consultation.created is the barrier
    created = await api.open_consultation(pool="toimeentulotuki")
    assert created["offered_to"] == 1
    # Offers are published before the creator's own event, and events pass the ledger in order.
    assert (await next_event(aino, "consultation.created"))["consultation"]["id"] == created["id"]
    await no_event(mikko, "consultation.offered")
    await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.mikko", expect=404)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.mikko", expect=404)
    listing = await api.call("GET", "/api/v1/consultations", "vantaa.mikko", expect=200)
    assert listing["items"] == []
    await mikko.close()
    await aino.close()


async def test_pool_routing_limits_offers(api):
    created = await api.open_consultation(pool="backup")
    await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.sanna", expect=404)
    await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.liisa", expect=200)


async def test_only_advisors_and_social_workers_open_consultations(api):
    body = {"topic": "other", "urgency": "normal", "question": "q", "purpose": "general", "target_org": "vantaa"}
    for user in ("vantaa.sanna", "kela.tuula", "kela.admin"):
        await api.call("POST", "/api/v1/consultations", user, json=body, expect=403)
    body["target_org"] = "kela"
    await api.call("POST", "/api/v1/consultations", "vantaa.paula", json=body, expect=201)


async def test_an_advisor_sees_only_their_own_consultations(api):
    mine = await api.open_consultation(user="kela.aino")
    theirs = await api.open_consultation(user="kela.eero")
    aino = await api.call("GET", "/api/v1/consultations", "kela.aino", expect=200)
    eero = await api.call("GET", "/api/v1/consultations", "kela.eero", expect=200)
    assert [c["id"] for c in aino["items"]] == [mine["id"]]
    assert [c["id"] for c in eero["items"]] == [theirs["id"]]


async def test_unclaimed_offer_readers_cannot_write(api):
    created = await api.open_consultation()
    err = await api.call("POST", f"/api/v1/consultations/{created['id']}/messages", "vantaa.sanna",
                         json={"text": "hello"}, expect=403)
    assert err["error"]["code"] == "not_participant"


async def test_added_participant_must_belong_to_a_party_org(api):
    cid = await _claimed(api)
    await api.call("GET", "/api/v1/me", "kela.tuula", expect=200)
    err = await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna",
                         json={"user_id": "kela.tuula"}, expect=422)
    assert err["error"]["code"] == "not_participant_role"
    err = await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna",
                         json={"user_id": "nobody.known"}, expect=422)
    assert err["error"]["code"] == "unknown_user"
