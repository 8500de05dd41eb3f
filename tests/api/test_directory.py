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


async def test_an_expert_is_named_only_to_a_pool_that_exists(api):
    """A typing error never makes a new, empty pool that advisors then see: 422 naming the pool
    (a staff-chosen name, no personal data) until the admin creates it through the pool endpoint;
    the pools an expert already has, and the organisation's intake pools, stay valid."""
    body = {"name": "Liisa V.", "topics": ["other"], "pools": ["backup", "bakcup"], "languages": ["fi"]}
    err = await api.call("PUT", "/api/v1/experts/vantaa.liisa", "vantaa.admin", json=body, expect=422)
    assert err["error"]["code"] == "unknown_pool" and "bakcup" in err["error"]["message"]
    assert "backup," not in err["error"]["message"]
    listed = await api.call("GET", "/api/v1/pools?org=vantaa", "kela.aino", expect=200)
    assert "bakcup" not in {p["name"] for p in listed["items"]}
    liisa = next(e for e in (await api.call("GET", "/api/v1/experts?org=vantaa", "kela.aino"))["items"]
                 if e["id"] == "vantaa.liisa")
    assert liisa["pools"] == ["backup"]
    # Another organisation's pool is not this organisation's.
    await api.call("PUT", "/api/v1/pools/vantaa/iltavuoro", "vantaa.admin", json={"reoffers": 1}, expect=200)
    await api.call("GET", "/api/v1/me", "kela.eero", expect=200)
    err = await api.call("PUT", "/api/v1/experts/kela.eero", "kela.admin", expect=422,
                         json={"name": "Eero", "topics": ["other"], "pools": ["iltavuoro"], "languages": ["fi"]})
    assert err["error"]["code"] == "unknown_pool"
    # Created explicitly, the pool can be chosen; kept pools and intake pools need no new check.
    named = await api.call("PUT", "/api/v1/experts/vantaa.liisa", "vantaa.admin", expect=200,
                           json={**body, "pools": ["backup", "iltavuoro"]})
    assert named["pools"] == ["backup", "iltavuoro"]
    kept = await api.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.admin", expect=200,
                          json={"pools": ["toimeentulotuki"]})
    assert kept["pools"] == ["toimeentulotuki"]
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)
    intake = await api.call("PUT", "/api/v1/experts/vantaa.paula", "vantaa.admin", expect=200,
                            json={"name": "Paula", "topics": ["other"], "pools": ["social_work_intake"]})
    assert intake["pools"] == ["social_work_intake"]
