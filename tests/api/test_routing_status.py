"""The routing outcome survives a reload: GET of an open consultation says where it stands now
(offered to how many, or nobody on duty and when the next one comes, the expected wait still to
go, the place in the queue, the step it is at); once claimed the field is null."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.test_request_schemas import inline

from tests.api.routingutil import MONDAY_9, routed_api


@pytest.fixture
async def rapi(aiohttp_client, settings, monkeypatch):
    return await routed_api(aiohttp_client, settings, monkeypatch)


async def test_nobody_on_duty_then_next_on_duty_counts_down_in_the_read(rapi):
    for user in ("vantaa.sanna", "vantaa.mikko"):
        await rapi.call("PUT", f"/api/v1/experts/{user}", user, json={"on_duty": False}, expect=200)
    start = MONDAY_9 + timedelta(hours=2)
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.mikko", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=4)).isoformat()})
    created = await rapi.open_consultation(pool="toimeentulotuki")
    cid = created["id"]
    read = (await rapi.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200))["routing"]
    assert read["state"] == "nobody_on_duty" and read["offered_to"] == 0
    assert read["next_on_duty"] == "2026-03-02T09:00:00.000Z"
    assert read["expected_wait_seconds"] == 7200 and read["queue_position"] == 1
    assert read["stage"] == "offered" and read["offers"] == 1 and read["as_of"] == "2026-03-02T07:00:00.000Z"
    assert read["sla_due_at"] == created["routing"]["sla_due_at"]

    # Half an hour later the wait still to go is shorter (the clock is the injected one; nobody
    # on duty yet, so the SLA has re-offered it to nobody in between).
    rapi.clock.advance(minutes=30)
    later = (await rapi.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200))["routing"]
    assert later["expected_wait_seconds"] == 5400 and later["as_of"] == "2026-03-02T07:30:00.000Z"


async def test_offered_then_reoffered_then_claimed(rapi):
    created = await rapi.open_consultation(pool="toimeentulotuki")
    cid = created["id"]
    read = (await rapi.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200))["routing"]
    assert read["state"] == "offered" and read["offered_to"] == 2 and read["on_duty"] == 2
    assert read["next_on_duty"] is None and read["stage"] == "offered"
    assert read["next_step_at"] == "2026-03-02T07:05:00.000Z"
    # The expert it is offered to reads the same.
    offered = await rapi.call("GET", f"/api/v1/consultations/{cid}", "vantaa.sanna", expect=200)
    assert offered["routing"]["state"] == "offered"

    assert (await rapi.advance(minutes=5))["reoffered"] == 1
    again = (await rapi.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200))["routing"]
    assert again["stage"] == "reoffered" and again["offers"] == 2
    assert again["next_step_at"] == "2026-03-02T07:10:00.000Z"

    await rapi.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    claimed = await rapi.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert claimed["status"] == "claimed" and claimed["routing"] is None


async def test_the_field_is_in_the_openapi_document(rapi):
    doc = await rapi.call("GET", "/api/v1/openapi.json", None, expect=200)
    schema = doc["paths"]["/api/v1/consultations/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = inline(schema, doc)
    routing = schema["properties"]["routing"] if "properties" in schema else None
    assert routing is not None
    declared = [m for m in routing.get("anyOf", [routing]) if m.get("type") == "object"]
    assert declared and {"expected_wait_seconds", "stage", "as_of"} <= set(declared[0]["properties"])
