"""The whole consultation flow over HTTP and WebSocket: advisor → offer → claim → answer → close."""

from __future__ import annotations

import json

from tests.api.wsutil import connect, next_event, no_event
from tests.synthetic import hetu


async def test_advisor_to_expert_end_to_end(api):
    sanna = await connect(api, "vantaa.sanna")
    mikko = await connect(api, "vantaa.mikko")
    aino = await connect(api, "kela.aino")

    client_ref = await api.register(hetu(1))
    created = await api.open_consultation(pool="toimeentulotuki", client_ref=client_ref)
    cid = created["id"]
    assert created["status"] == "open"
    assert created["offered_to"] == 2

    # Both on-duty experts of the pool are offered it live.
    for ws in (sanna, mikko):
        offered = await next_event(ws, "consultation.offered")
        assert offered["consultation"]["id"] == cid

    # First claim wins; the second gets 409.
    claimed = await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    assert claimed["status"] == "claimed" and claimed["claimed_by"] == "vantaa.sanna"
    lost = await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.mikko", expect=409)
    assert lost["error"]["code"] == "already_claimed"
    event = await next_event(aino, "consultation.claimed")
    assert event["consultation"]["claimed_by"] == "vantaa.sanna"
    # The other expert learns it was taken, and by whom, without the consultation again.
    event = await next_event(mikko, "consultation.claimed")
    assert event["consultation_id"] == cid and event["claimed_by"] == "vantaa.sanna" and "consultation" not in event

    # The loser no longer sees it.
    await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.mikko", expect=404)

    # The expert answers with a permitted data item; the advisor gets it live.
    answer = await api.call(
        "POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna",
        json={"text": "The rent attachment is still missing.",
              "data": [{"category": "application.status", "value": "waiting for attachments"}]},
        expect=201,
    )
    live = await next_event(aino, "message.created")
    assert live["message"]["id"] == answer["id"]
    assert live["message"]["data"] == [{"category": "application.status", "value": "waiting for attachments"}]
    await no_event(mikko, "message.created")

    # Read receipt reaches the expert.
    await api.call("POST", f"/api/v1/consultations/{cid}/read", "kela.aino",
                   json={"message_id": answer["id"]}, expect=200)
    receipt = await next_event(sanna, "message.read")
    assert receipt["user_id"] == "kela.aino" and receipt["message_id"] == answer["id"]
    history = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    assert [r["user_id"] for r in history["items"][0]["read_by"]] == ["kela.aino"]

    fetched = await api.call("GET", f"/api/v1/consultations/{cid}", "kela.aino", expect=200)
    assert fetched["first_response_at"] is not None

    closed = await api.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino",
                            json={"outcome": "advice_given"}, expect=200)
    assert closed["status"] == "closed" and closed["outcome"] == "advice_given"
    assert (await next_event(sanna, "consultation.closed"))["consultation"]["id"] == cid
    again = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna",
                           json={"outcome": "declined"}, expect=409)
    assert again["error"]["code"] == "closed"
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino",
                   json={"text": "one more thing"}, expect=409)
    for ws in (sanna, mikko, aino):
        await ws.close()


async def test_every_tab_of_a_user_gets_every_event(api):
    tabs = [await connect(api, "vantaa.liisa") for _ in range(3)]
    created = await api.open_consultation(pool="backup", urgency="today")
    for ws in tabs:
        assert (await next_event(ws, "consultation.offered"))["consultation"]["id"] == created["id"]
        await ws.close()


async def test_named_expert_only_is_offered(api):
    sanna = await connect(api, "vantaa.sanna")
    mikko = await connect(api, "vantaa.mikko")
    created = await api.open_consultation(expert_id="vantaa.mikko")
    assert (await next_event(mikko, "consultation.offered"))["consultation"]["id"] == created["id"]
    await no_event(sanna, "consultation.offered")
    await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.sanna", expect=404)
    await api.call("POST", f"/api/v1/consultations/{created['id']}/claim", "vantaa.sanna", expect=404)
    await sanna.close()
    await mikko.close()


async def test_participant_added_later_sees_history_and_live_messages(api):
    created = await api.open_consultation()
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino",
                   json={"text": "Hello"}, expect=201)
    # The social worker must have been seen by the service to be added.
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)
    await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.paula", expect=404)
    added = await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna",
                           json={"user_id": "vantaa.paula"}, expect=200)
    assert {p["user_id"] for p in added["participants"]} == {"kela.aino", "vantaa.sanna", "vantaa.paula"}
    paula = await connect(api, "vantaa.paula")
    history = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert [m["text"] for m in history["items"]] == ["Hello"]
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", json={"text": "Second"}, expect=201)
    assert (await next_event(paula, "message.created"))["message"]["text"] == "Second"
    await paula.close()


async def test_paging_of_consultations_and_messages(api):
    ids = [(await api.open_consultation(question=f"Question {i}"))["id"] for i in range(5)]
    first = await api.call("GET", "/api/v1/consultations?limit=2", "kela.aino", expect=200)
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    second = await api.call("GET", f"/api/v1/consultations?limit=2&cursor={first['next']}", "kela.aino", expect=200)
    third = await api.call("GET", f"/api/v1/consultations?limit=2&cursor={second['next']}", "kela.aino", expect=200)
    assert [c["id"] for c in second["items"] + third["items"]] == ids[::-1][2:]
    assert third["next"] is None

    cid = ids[0]
    for i in range(5):
        await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", json={"text": f"m{i}"}, expect=201)
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages?limit=3", "kela.aino", expect=200)
    rest = await api.call("GET", f"/api/v1/consultations/{cid}/messages?limit=3&cursor={page['next']}",
                          "kela.aino", expect=200)
    assert [m["text"] for m in page["items"] + rest["items"]] == [f"m{i}" for i in range(5)]
    assert rest["next"] is None
    claimed = await api.call("GET", "/api/v1/consultations?status=claimed", "kela.aino", expect=200)
    assert claimed["items"] == []


async def test_the_other_offered_experts_learn_of_the_claim_without_the_consultation_again(api):
    """When one expert claims, the others it was offered to lose it (404): their live event says it
    was taken and by whom, and carries no question and no client — kept that way for a resume too —
    so it is no delivery of content and has no `live.consultation.claimed` record. The advisor and
    the claimant get the consultation as they may see it, each delivery recorded."""
    from sqlalchemy import text

    from consult.http import keys

    mikko = await connect(api, "vantaa.mikko")
    aino = await connect(api, "kela.aino")
    sanna = await connect(api, "vantaa.sanna")
    client_ref = await api.register(hetu(2))
    cid = (await api.open_consultation(pool="toimeentulotuki", client_ref=client_ref))["id"]
    offered = await next_event(mikko, "consultation.offered")
    assert offered["consultation"]["question"]  # the offer itself shows the question
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)

    taken = await next_event(mikko, "consultation.claimed")
    assert {k: v for k, v in taken.items() if k not in ("event_id", "claimed_at")} == {
        "type": "consultation.claimed", "consultation_id": cid, "status": "claimed", "claimed_by": "vantaa.sanna"}
    assert taken["claimed_at"] and isinstance(taken["event_id"], int)
    assert client_ref not in json.dumps(taken)
    for ws in (aino, sanna):
        assert (await next_event(ws, "consultation.claimed"))["consultation"]["id"] == cid
    await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.mikko", expect=404)

    # Resumed from before the claim: the kept event is the same notice.
    again = await api.client.ws_connect("/api/v1/ws")
    await again.send_json({"type": "auth", "token": api.token("vantaa.mikko"), "last_event_id": offered["event_id"]})
    assert (await again.receive_json(timeout=5))["type"] == "ready"
    replayed = await next_event(again, "consultation.claimed")
    assert "consultation" not in replayed and replayed["consultation_id"] == cid
    for ws in (mikko, aino, sanna, again):
        await ws.close()

    async with api.client.app[keys.DB].read() as conn:
        recorded = (await conn.execute(text(
            "SELECT actor_id FROM audit_events WHERE action = 'live.consultation.claimed' AND consultation_id = :c"),
            {"c": cid})).scalars().all()
    assert sorted(set(recorded)) == ["kela.aino", "vantaa.sanna"]
