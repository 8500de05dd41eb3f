"""Every routing endpoint × every role (the security floor, docs/capabilities.md): the right
status for each, 401 without a token, 404 for what another organisation owns, and never a 5xx."""

from __future__ import annotations

import pytest

from consult.auth.dev import DEMO_USERS

USERS = [u.user_id for u in DEMO_USERS]


async def _fixtures(api):
    """An agreement id, a roster period, a closed consultation and an approved entry."""
    agreement = (await api.call("GET", "/api/v1/agreements", "kela.admin"))["items"][0]["id"]
    period = await api.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.liisa", "starts_at": "2030-01-07T06:00:00Z", "ends_at": "2030-01-07T14:00:00Z"})
    created = await api.open_consultation()
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", json={"outcome": "advice_given"},
                   expect=200)
    entry = await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.sanna", expect=201,
                           json={"question": "Miten liite toimitetaan?", "answer": "Sähköisesti asiointipalvelussa."})
    draft = await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.sanna", expect=201,
                           json={"question": "Luonnos?", "answer": "Luonnos."})
    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "vantaa.mikko", expect=200)
    return agreement, period["id"], cid, entry["id"], draft["id"]


def _cases(agreement, period, cid, entry, draft):
    staff_read = {"kela.tuula": 200, "vantaa.ville": 200, "kela.admin": 200, "vantaa.admin": 200}
    everyone = {u: 200 for u in USERS}
    return [
        ("GET", "/api/v1/agreements", None, everyone),
        ("GET", f"/api/v1/agreements/{agreement}", None, everyone),
        ("PUT", f"/api/v1/agreements/{agreement}", {"reference": "Sopimus 1/2016"},
         {**{u: 403 for u in USERS}, "kela.admin": 200, "vantaa.admin": 200}),
        ("POST", "/api/v1/agreements", {"reference": "x", "parties": ["kela", "vantaa"],
                                         "valid_from": "2030-01-01T00:00:00Z"},
         {**{u: 403 for u in USERS}, "kela.admin": 201, "vantaa.admin": 201}),
        ("GET", "/api/v1/pools", None, everyone),
        ("PUT", "/api/v1/pools/vantaa/backup", {"reoffers": 2},
         {**{u: 403 for u in USERS}, "kela.admin": 404, "vantaa.admin": 200}),
        ("GET", "/api/v1/queue", None,
         {**{u: 403 for u in USERS}, "vantaa.sanna": 200, "vantaa.mikko": 200, "vantaa.liisa": 200,
          "vantaa.paula": 200, "vantaa.kaisa": 200}),  # the intakes' social workers
        ("GET", "/api/v1/roster?org=vantaa", None, {u: 200 if u.startswith("vantaa.") else 404 for u in USERS}),
        ("POST", "/api/v1/roster/periods", {"user_id": "vantaa.liisa", "starts_at": "2030-01-08T06:00:00Z",
                                             "ends_at": "2030-01-08T14:00:00Z"},
         {**{u: 403 for u in USERS}, "kela.admin": 404, "vantaa.admin": 201}),
        ("POST", "/api/v1/roster/rules", {"user_id": "vantaa.liisa", "weekday": 6, "start": "09:00", "end": "12:00"},
         {**{u: 403 for u in USERS}, "kela.admin": 404, "vantaa.admin": 201}),
        ("DELETE", f"/api/v1/roster/periods/{period}", None,
         {**{u: 404 if u.startswith("kela.") else 403 for u in USERS}, "vantaa.admin": 200}),
        ("GET", "/api/v1/holidays?year=2026", None, everyone),
        ("GET", "/api/v1/stats", None, {**{u: 403 for u in USERS}, **staff_read}),
        ("GET", "/api/v1/stats.csv", None, {**{u: 403 for u in USERS}, **staff_read}),
        ("POST", f"/api/v1/consultations/{cid}/knowledge", {"question": "K?", "answer": "V."},
         {**{u: 404 for u in USERS}, "kela.aino": 403, "vantaa.sanna": 201}),
        ("GET", "/api/v1/knowledge?q=liite", None, {**everyone, "kela.eero": 200}),
        ("GET", "/api/v1/knowledge/drafts", None,
         {**{u: 403 for u in USERS}, "vantaa.sanna": 200, "vantaa.mikko": 200, "vantaa.liisa": 200,
          "kela.admin": 200, "vantaa.admin": 200}),
        ("GET", f"/api/v1/knowledge/{entry}", None, everyone),
        ("GET", f"/api/v1/knowledge/{draft}", None, {u: 200 if u.startswith("vantaa.") else 404 for u in USERS}),
        ("POST", f"/api/v1/knowledge/{draft}/approve", None,
         {**{u: 404 if u.startswith("kela.") else 403 for u in USERS}, "vantaa.mikko": 200, "vantaa.liisa": 200}),
    ]


@pytest.mark.parametrize("user", USERS)
async def test_every_routing_endpoint_for_every_role(api, user):
    """Property: each role gets exactly the expected status; another organisation's objects are 404."""
    ids = await _fixtures(api)
    for method, path, body, expected in _cases(*ids):
        response = await api.client.request(method, path, json=body, headers=api.auth(user))
        assert response.status < 500, (method, path, user)
        assert response.status == expected[user], (method, path, user, response.status, await response.text())


async def test_routing_endpoints_need_a_token(api):
    ids = await _fixtures(api)
    for method, path, body, _expected in _cases(*ids):
        answer = await api.call(method, path, None, json=body, expect=401)
        assert answer["error"]["code"] == "unauthenticated", (method, path)
