"""The directory of experts: named by admins of their own organisation; duty; live presence."""

from __future__ import annotations

from tests.api.wsutil import connect, next_event


async def test_demo_experts_listed_with_presence(api):
    listing = await api.call("GET", "/api/v1/experts", "kela.aino", expect=200)
    ids = {e["id"] for e in listing["items"]}
    assert {"vantaa.sanna", "vantaa.mikko", "vantaa.liisa"} <= ids
    assert all(e["presence"] == "offline" for e in listing["items"])
    watcher = await connect(api, "kela.aino")
    sanna = await connect(api, "vantaa.sanna")
    event = await next_event(watcher, "presence")
    assert event == {"type": "presence", "user_id": "vantaa.sanna", "presence": "online"}
    listing = await api.call("GET", "/api/v1/experts?org=vantaa", "kela.aino", expect=200)
    assert {e["id"]: e["presence"] for e in listing["items"]}["vantaa.sanna"] == "online"
    await sanna.close()
    assert (await next_event(watcher, "presence"))["presence"] == "offline"
    await watcher.close()


async def test_admin_names_expert_of_own_org_only(api):
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)
    body = {"name": "Paula S.", "topics": ["other"], "pools": ["backup"], "languages": ["fi", "sv"], "on_duty": True}
    await api.call("PUT", "/api/v1/experts/vantaa.paula", "kela.admin", json=body, expect=403)
    await api.call("PUT", "/api/v1/experts/vantaa.paula", "kela.aino", json=body, expect=403)
    named = await api.call("PUT", "/api/v1/experts/vantaa.paula", "vantaa.admin", json=body, expect=200)
    assert named["org"] == "vantaa" and named["pools"] == ["backup"] and named["on_duty"] is True
    await api.call("PUT", "/api/v1/experts/vantaa.sanna", "kela.admin", json={"on_duty": False}, expect=403)


async def test_expert_toggles_only_own_duty(api):
    off = await api.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.sanna", json={"on_duty": False}, expect=200)
    assert off["on_duty"] is False and off["pools"] == ["toimeentulotuki"]
    await api.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.sanna", json={"pools": ["x"]}, expect=403)
    await api.call("PUT", "/api/v1/experts/vantaa.mikko", "vantaa.sanna", json={"on_duty": False}, expect=403)


async def test_invalid_expert_fields(api):
    for body in ({"pools": "backup"}, {"pools": ["Bad Pool"]}, {"on_duty": "yes"}, {"nickname": "x"}):
        await api.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.admin", json=body, expect=422)
