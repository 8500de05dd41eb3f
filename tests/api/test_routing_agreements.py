"""Agreements between organisations (docs/capabilities.md C6a): none in force, no new consultation (403 naming
the missing agreement); admins of a party manage them; every change is a version and audited."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from consult.http import keys
from tests.api.routingutil import routed_api


@pytest.fixture
async def rapi(aiohttp_client, settings, monkeypatch):
    settings = replace(settings, orgs=("kela", "vantaa", "espoo"))
    return await routed_api(aiohttp_client, settings, monkeypatch)


async def _kela_vantaa(rapi):
    items = (await rapi.call("GET", "/api/v1/agreements", "kela.admin", expect=200))["items"]
    return next(a for a in items if a["parties"] == ["kela", "vantaa"])


async def test_demo_ships_the_kela_vantaa_agreement(rapi):
    agreement = await _kela_vantaa(rapi)
    assert agreement["in_force"] is True and agreement["topics"] == [] and agreement["valid_until"] is None
    await rapi.open_consultation()


async def test_no_agreement_means_no_consultation(rapi):
    """Property: without an agreement in force between the two organisations nothing is opened."""
    refused = await rapi.call("POST", "/api/v1/consultations", "kela.aino", expect=403, json={
        "topic": "other", "urgency": "today", "question": "Q?", "purpose": "general", "target_org": "espoo"})
    assert refused["error"]["code"] == "no_agreement"
    assert "kela and espoo" in refused["error"]["message"] and "topic 'other'" in refused["error"]["message"]


async def test_termination_and_scope_are_enforced_and_versioned(rapi):
    agreement = await _kela_vantaa(rapi)
    aid = agreement["id"]
    await rapi.call("PUT", f"/api/v1/agreements/{aid}", "kela.aino", json={"topics": ["other"]}, expect=403)
    await rapi.call("PUT", f"/api/v1/agreements/{aid}", "vantaa.admin", json={"parties": ["kela", "espoo"]},
                    expect=422)
    scoped = await rapi.call("PUT", f"/api/v1/agreements/{aid}", "vantaa.admin",
                             json={"topics": ["attachments"], "pools": ["toimeentulotuki"]}, expect=200)
    assert scoped["version"] == 2
    refused = await rapi.call("POST", "/api/v1/consultations", "kela.aino", expect=403, json={
        "topic": "other", "urgency": "today", "question": "Q?", "purpose": "general", "target_org": "vantaa"})
    assert refused["error"]["code"] == "no_agreement"
    await rapi.open_consultation(topic="attachments", pool="toimeentulotuki")
    await rapi.call("POST", "/api/v1/consultations", "kela.aino", expect=403, json={
        "topic": "attachments", "urgency": "today", "question": "Q?", "purpose": "general", "target_org": "vantaa",
        "pool": "backup"})

    # Terminated (at six months' notice): in force until then, not after.
    until = (rapi.clock.now().replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    rapi.clock.advance(days=183)
    ended = await rapi.call("PUT", f"/api/v1/agreements/{aid}", "kela.admin", json={"valid_until": until}, expect=200)
    assert ended["in_force"] is False and ended["version"] == 3
    await rapi.call("POST", "/api/v1/consultations", "kela.aino", expect=403, json={
        "topic": "attachments", "urgency": "today", "question": "Q?", "purpose": "general", "target_org": "vantaa",
        "pool": "toimeentulotuki"})
    full = await rapi.call("GET", f"/api/v1/agreements/{aid}", "vantaa.sanna", expect=200)
    assert [v["version"] for v in full["versions"]] == [1, 2, 3]
    assert full["versions"][1]["by"] == "vantaa.admin" and full["versions"][1]["agreement"]["topics"] == ["attachments"]
    async with rapi.app[keys.DB].read() as conn:
        actions = (await conn.execute(text("SELECT action FROM audit_events WHERE action LIKE 'agreement.%' "
                                           "ORDER BY leaf_index"))).scalars().all()
    assert actions == ["agreement.create", "agreement.update", "agreement.update"]


async def test_admins_of_a_party_record_agreements(rapi):
    body = {"reference": "Kela–Espoo 2026/14", "parties": ["kela", "espoo"], "valid_from": "2026-03-01T00:00:00Z",
            "topics": ["other"]}
    await rapi.call("POST", "/api/v1/agreements", "vantaa.admin", json=body, expect=403)
    await rapi.call("POST", "/api/v1/agreements", "kela.aino", json=body, expect=403)
    await rapi.call("POST", "/api/v1/agreements", "kela.admin", json={**body, "parties": ["kela", "kela"]}, expect=422)
    await rapi.call("POST", "/api/v1/agreements", "kela.admin", json={**body, "parties": ["kela", "oulu"]}, expect=422)
    await rapi.call("POST", "/api/v1/agreements", "kela.admin", json={**body, "valid_until": "2026-02-01T00:00:00Z"},
                    expect=422)
    await rapi.call("POST", "/api/v1/agreements", "kela.admin", json={**body, "topics": ["nope"]}, expect=422)
    created = await rapi.call("POST", "/api/v1/agreements", "kela.admin", json=body, expect=201)
    assert created["parties"] == ["espoo", "kela"] and created["in_force"] is True
    await rapi.call("GET", f"/api/v1/agreements/{created['id']}", "vantaa.admin", expect=404)
    vantaa_sees = (await rapi.call("GET", "/api/v1/agreements", "vantaa.admin", expect=200))["items"]
    assert all("vantaa" in a["parties"] for a in vantaa_sees)
