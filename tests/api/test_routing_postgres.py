"""Routing, statistics and the knowledge base through the real app on PostgreSQL (the scale-out
store) on a copy of the migrated template (``pg_migrated``), skipped — saying so — when no server
is reachable."""

from __future__ import annotations

from dataclasses import replace

from tests.api.routingutil import routed_api


async def test_routing_flow_on_postgresql(aiohttp_client, settings, monkeypatch, pg_migrated):
    api = await routed_api(aiohttp_client, replace(settings, database_url=pg_migrated), monkeypatch)
    created = await api.open_consultation(pool="toimeentulotuki")
    assert created["routing"]["offered_to"] == 2
    await api.open_consultation(urgency="normal", pool="toimeentulotuki")
    queue = await api.call("GET", "/api/v1/queue", "vantaa.sanna", expect=200)
    assert [q["urgency"] for q in queue["items"]] == ["immediate", "normal"]
    assert (await api.advance(minutes=5))["reoffered"] == 1
    assert (await api.advance(minutes=5))["escalated"] == 1
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.liisa", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.liisa", json={"outcome": "advice_given"},
                   expect=200)
    entry = await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.liisa", expect=201,
                           json={"question": "Riittääkö vuokrasopimus liitteeksi?", "answer": "Riittää."})
    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "vantaa.sanna", expect=200)
    hits = await api.call("GET", "/api/v1/knowledge?q=vuokrasopimuksen", "kela.aino", expect=200)
    assert [h["id"] for h in hits["items"]] == [entry["id"]]
    stats = await api.call("GET", "/api/v1/stats?from=2026-03&to=2026-03", "kela.admin", expect=200)
    row = stats["rows"][0]
    assert row["consultations"] == 2 and row["escalated"] == 1 and row["time_to_claim_seconds"]["median"] == 600
    await api.call("POST", "/api/v1/roster/rules", "vantaa.admin", expect=201,
                   json={"user_id": "vantaa.mikko", "weekday": 2, "start": "08:00", "end": "16:00"})
    pools = {p["name"]: p for p in (await api.call("GET", "/api/v1/pools?org=vantaa", "kela.aino"))["items"]}
    assert pools["toimeentulotuki"]["on_duty"] == 1  # mikko's roster says Tuesdays only
