"""Routing at counter speed: SLA re-offer and escalation to the backup pool shown live to the
advisor, "nobody on duty" told at once with the next on-duty time, the per-expert limit of open
consultations, the queue by urgency and age, and the expected wait from recent history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from consult.http import keys

from tests.api.routingutil import MONDAY_9, routed_api
from tests.api.wsutil import connect, next_event, no_event


@pytest.fixture
async def rapi(aiohttp_client, settings, monkeypatch):
    return await routed_api(aiohttp_client, settings, monkeypatch)


async def test_unclaimed_immediate_is_reoffered_then_escalated_to_backup(rapi):
    """Property: after the pool's SLA the consultation is offered again, after another it reaches
    the backup pool; the advisor sees each step live and each step is audited."""
    aino = await connect(rapi, "kela.aino")
    sanna = await connect(rapi, "vantaa.sanna")
    liisa = await connect(rapi, "vantaa.liisa")
    created = await rapi.open_consultation(pool="toimeentulotuki")
    cid = created["id"]
    assert created["routing"]["state"] == "offered" and created["routing"]["offered_to"] == 2
    assert created["routing"]["sla_seconds"] == 300
    assert created["routing"]["sla_due_at"] == "2026-03-02T07:05:00.000Z"
    assert (await next_event(sanna, "consultation.offered"))["consultation"]["id"] == cid
    await rapi.call("GET", f"/api/v1/consultations/{cid}", "vantaa.liisa", expect=404)

    assert (await rapi.advance(minutes=4, seconds=59))["reoffered"] == 0
    assert (await rapi.advance(seconds=1))["reoffered"] == 1
    reoffered = await next_event(aino, "consultation.reoffered")
    assert reoffered["consultation_id"] == cid and reoffered["offers"] == 2 and reoffered["offered_to"] == 2
    again = await next_event(sanna, "consultation.offered")
    assert again["consultation"]["id"] == cid and again["reason"] == "reoffered"
    await no_event(liisa, "consultation.offered")

    assert (await rapi.advance(minutes=5))["escalated"] == 1
    escalated = await next_event(aino, "consultation.escalated")
    assert escalated["pool"] == "backup" and escalated["offered_to"] == 3
    offered = await next_event(liisa, "consultation.offered")
    assert offered["consultation"]["id"] == cid and offered["reason"] == "escalated"

    # The backup expert now sees and may claim it; the original pool still sees it claimed.
    await rapi.call("GET", f"/api/v1/consultations/{cid}", "vantaa.liisa", expect=200)
    claimed = await rapi.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.liisa", expect=200)
    assert claimed["claimed_by"] == "vantaa.liisa"
    assert (await next_event(sanna, "consultation.claimed"))["claimed_by"] == "vantaa.liisa"
    assert (await rapi.advance(minutes=30)) == {"duty_changes": 0, "reoffered": 0, "escalated": 0}

    async with rapi.app[keys.DB].read() as conn:
        actions = (await conn.execute(text(
            "SELECT action FROM audit_events WHERE consultation_id = :c ORDER BY leaf_index"), {"c": cid})).scalars().all()
    acts = [a for a in actions if not a.startswith("live.")]  # live deliveries are reads, recorded too
    assert acts[:3] == ["consultation.create", "routing.reoffer", "routing.escalate"]
    assert "live.consultation.offered" in actions
    for ws in (aino, sanna, liisa):
        await ws.close()


async def test_without_backup_it_keeps_reoffering_until_claimed(rapi):
    aino = await connect(rapi, "kela.aino")
    created = await rapi.open_consultation(pool="backup")
    for n in range(2, 5):
        await rapi.advance(minutes=5)
        assert (await next_event(aino, "consultation.reoffered"))["offers"] == n
    await no_event(aino, "consultation.escalated")
    await rapi.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.liisa", expect=200)
    assert (await rapi.advance(minutes=5))["reoffered"] == 0
    await aino.close()


async def test_pool_sla_and_backup_are_set_by_the_orgs_admin(rapi):
    body = {"sla_seconds": {"immediate": 60}, "reoffers": 0, "backup_pool": "backup"}
    await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "kela.admin", json=body, expect=404)
    await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "vantaa.sanna", json=body, expect=403)
    await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "vantaa.admin", expect=422,
                    json={"sla_seconds": {"immediate": 1}})
    await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "vantaa.admin", expect=422,
                    json={"backup_pool": "toimeentulotuki"})
    pool = await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "vantaa.admin", json=body, expect=200)
    assert pool["sla_seconds"]["immediate"] == 60 and pool["reoffers"] == 0
    aino = await connect(rapi, "kela.aino")
    created = await rapi.open_consultation(pool="toimeentulotuki")
    assert created["routing"]["sla_seconds"] == 60
    assert (await rapi.advance(seconds=60))["escalated"] == 1  # no re-offer first
    assert (await next_event(aino, "consultation.escalated"))["consultation_id"] == created["id"]
    await aino.close()


async def test_nobody_on_duty_is_told_at_once_with_next_on_duty(rapi):
    for user in ("vantaa.sanna", "vantaa.mikko"):
        await rapi.call("PUT", f"/api/v1/experts/{user}", user, json={"on_duty": False}, expect=200)
    start = MONDAY_9 + timedelta(hours=2)
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.mikko", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=4)).isoformat()})
    pools = {p["name"]: p for p in (await rapi.call("GET", "/api/v1/pools?org=vantaa", "kela.aino"))["items"]}
    assert pools["toimeentulotuki"]["on_duty"] == 0
    assert pools["toimeentulotuki"]["next_on_duty"] == "2026-03-02T09:00:00.000Z"
    created = await rapi.open_consultation(pool="toimeentulotuki")
    routing = created["routing"]
    assert routing["state"] == "nobody_on_duty" and routing["offered_to"] == 0
    assert routing["next_on_duty"] == "2026-03-02T09:00:00.000Z"
    assert routing["expected_wait_seconds"] == 7200
    # When the roster puts the expert on duty, the waiting consultation is offered to them.
    mikko = await connect(rapi, "vantaa.mikko")
    await rapi.advance(hours=2)
    offered = await next_event(mikko, "consultation.offered")
    assert offered["consultation"]["id"] == created["id"] and offered["reason"] == "on_duty"
    await mikko.close()


async def test_per_expert_limit_of_open_consultations(rapi):
    await rapi.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", "vantaa.admin",
                    json={"max_open_per_expert": 1}, expect=200)
    first = await rapi.open_consultation(pool="toimeentulotuki")
    second = await rapi.open_consultation(pool="toimeentulotuki")
    await rapi.call("POST", f"/api/v1/consultations/{first['id']}/claim", "vantaa.sanna", expect=200)
    full = await rapi.call("POST", f"/api/v1/consultations/{second['id']}/claim", "vantaa.sanna", expect=409)
    assert full["error"]["code"] == "at_capacity"
    third = await rapi.open_consultation(pool="toimeentulotuki")
    assert third["routing"]["offered_to"] == 1 and third["routing"]["at_capacity"] == 1
    await rapi.call("POST", f"/api/v1/consultations/{first['id']}/close", "vantaa.sanna",
                    json={"outcome": "advice_given"}, expect=200)
    await rapi.call("POST", f"/api/v1/consultations/{second['id']}/claim", "vantaa.sanna", expect=200)


async def test_queue_orders_by_urgency_then_age(rapi):
    ids = {}
    for urgency in ("normal", "today", "normal", "immediate", "today"):
        ids.setdefault(urgency, []).append((await rapi.open_consultation(urgency=urgency, pool="toimeentulotuki"))["id"])
        rapi.clock.advance(minutes=1)
    queue = await rapi.call("GET", "/api/v1/queue", "vantaa.sanna", expect=200)
    assert [q["id"] for q in queue["items"]] == ids["immediate"] + ids["today"] + ids["normal"]
    assert queue["items"][-1]["waiting_seconds"] == 3 * 60
    assert "question" not in queue["items"][0]
    await rapi.call("GET", "/api/v1/queue", "kela.aino", expect=403)
    assert (await rapi.call("GET", "/api/v1/queue", "vantaa.liisa", expect=200))["items"] == []
    last = await rapi.open_consultation(urgency="today", pool="toimeentulotuki")
    assert last["routing"]["queue_position"] == 4  # behind the immediate and the two older "today"


async def test_expected_wait_is_the_median_of_recent_claims(rapi):
    created = await rapi.open_consultation(pool="toimeentulotuki")
    assert created["routing"]["expected_wait_seconds"] is None  # no history yet
    for wait in (30, 90, 600):
        c = await rapi.open_consultation(pool="toimeentulotuki")
        rapi.clock.advance(seconds=wait)
        await rapi.call("POST", f"/api/v1/consultations/{c['id']}/claim", "vantaa.sanna", expect=200)
    created = await rapi.open_consultation(pool="toimeentulotuki")
    assert created["routing"]["expected_wait_seconds"] == 90
    pools = {p["name"]: p for p in (await rapi.call("GET", "/api/v1/pools?org=vantaa", "kela.aino"))["items"]}
    assert pools["toimeentulotuki"]["expected_wait_seconds"]["immediate"] == 90
    assert pools["toimeentulotuki"]["expected_wait_seconds"]["today"] is None


async def test_expert_coming_on_duty_by_own_toggle_is_offered_what_waits(rapi):
    await rapi.tick()
    await rapi.call("PUT", "/api/v1/experts/vantaa.liisa", "vantaa.liisa", json={"on_duty": False}, expect=200)
    await rapi.tick()
    created = await rapi.open_consultation(pool="backup", urgency="today")
    assert created["routing"]["state"] == "nobody_on_duty" and created["routing"]["next_on_duty"] is None
    liisa = await connect(rapi, "vantaa.liisa")
    await rapi.call("PUT", "/api/v1/experts/vantaa.liisa", "vantaa.liisa", json={"on_duty": True}, expect=200)
    await rapi.tick()
    offered = await next_event(liisa, "consultation.offered")
    assert offered["consultation"]["id"] == created["id"] and offered["reason"] == "on_duty"
    await liisa.close()


async def test_questions_to_any_on_duty_expert_are_counted_apart_from_the_pools(rapi):
    """A consultation with no pool waits in none of the pools: ``unpooled`` counts it per organisation."""
    before = await rapi.call("GET", "/api/v1/pools?org=vantaa", "kela.aino")
    assert before["unpooled"] == []
    for _ in range(2):
        await rapi.open_consultation(pool=None)
    claimed = await rapi.open_consultation(pool=None)
    await rapi.open_consultation(pool="toimeentulotuki")
    await rapi.call("POST", f"/api/v1/consultations/{claimed['id']}/claim", "vantaa.sanna", expect=200)
    after = await rapi.call("GET", "/api/v1/pools?org=vantaa", "kela.aino")
    assert after["unpooled"] == [{"org": "vantaa", "waiting": 2}]
    assert {p["name"]: p["waiting"] for p in after["items"]}["toimeentulotuki"] == 1
    assert (await rapi.call("GET", "/api/v1/pools?org=kela", "kela.aino"))["unpooled"] == []
