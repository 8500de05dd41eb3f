"""The edges of identity (the security floor, docs/capabilities.md): a token names a configured
organisation and plain-text claims, or it names no one; an admin manages the directory entries
of their own organisation."""

from __future__ import annotations

import time

import pytest
from aiohttp import WSMsgType
from jose import jwt

from consult.http import keys
from consult.storage import audit_log
from tests.synthetic import hetu

UNAUTHENTICATED = {"error": {"code": "unauthenticated", "message": "A valid bearer token is required."}}


def _claims(**over):
    now = int(time.time())
    base = {"iss": "konsulta-dev", "aud": "consult", "sub": "kela.aino", "org": "kela",
            "roles": ["advisor"], "name": "Aino Neuvoja", "iat": now, "nbf": now, "exp": now + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _sign(api, claims):
    issuer = api.client.app[keys.DEV_ISSUER]
    return jwt.encode(claims, issuer._pem.decode(), algorithm="ES256", headers={"kid": issuer.jwk["kid"]})


async def _call(api, method, path, token, json=None):
    response = await api.client.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})
    return response.status, await response.json()


async def test_token_of_an_unconfigured_organisation_is_401_everywhere(api):
    """Property: an organisation this deployment does not know cannot register clients, record
    prohibitions or open the live channel — its token names no one."""
    stranger = _sign(api, _claims(sub="espoo.eeva", org="espoo", roles=["advisor", "social_worker"]))
    assert await _call(api, "GET", "/api/v1/me", stranger) == (401, UNAUTHENTICATED)
    status, _ = await _call(api, "POST", "/api/v1/clients", stranger, {"hetu": hetu(50)})
    assert status == 401
    ref = await api.register(hetu(51))
    status, _ = await _call(api, "POST", f"/api/v1/clients/{ref}/prohibitions", stranger,
                            {"category": "health", "org": "vantaa"})
    assert status == 401
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": stranger})
    msg = await ws.receive(timeout=5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING) and ws.close_code == 4401
    await ws.close()
    async with api.client.app[keys.DB].read() as conn:
        rows = [r async for part in audit_log.iter_query(conn, audit_log.EventFilter()) for r in part]
    assert not [r for r in rows if r["actor_org"] == "espoo"]


@pytest.mark.parametrize("claims", [
    {"name": "Aino\x00Neuvoja"},
    {"name": "Aino\nNeuvoja"},
    {"name": "Aino\r\nNeuvoja"},
    {"name": "Aino\tNeuvoja"},
    {"name": "Aino\x7f"},
    {"name": "Aino\x85Neuvoja"},
    {"name": "Aino\u2028Neuvoja"},
    {"name": "Aino \u202eajovueN"},
    {"name": "Aino\u200bNeuvoja"},
    {"name": "Aino\ud800"},
    {"name": "A" * 201},
    {"name": 42},
    {"name": ["Aino"]},
    {"roles": ["advisor\x00admin"]},
    {"roles": ["advisor", "x" * 65]},
    {"roles": ["advisor"] * 33},
    {"roles": [""]},
    {"sub": "kela.aino\n"},
    {"org": "kela\x00"},
], ids=lambda c: repr(c)[:40])
async def test_claims_that_are_not_plain_text_are_401(api, claims):
    """Property: no control, format or separator character, and no oversized claim, reaches
    the directory, a participant list or the audit log through a token."""
    token = _sign(api, _claims(**claims))
    assert await _call(api, "GET", "/api/v1/me", token) == (401, UNAUTHENTICATED)
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": token})
    await ws.receive(timeout=5)
    assert ws.close_code == 4401
    await ws.close()


@pytest.mark.parametrize(("name", "shown"), [
    ("Åsa Öberg-Länsimäki", "Åsa Öberg-Länsimäki"),
    ("  Aino  ", "Aino"),
    ("", "kela.aino"),
    (None, "kela.aino"),
    ("A" * 200, "A" * 200),
])
async def test_plain_names_are_accepted(api, name, shown):
    status, body = await _call(api, "GET", "/api/v1/me", _sign(api, _claims(name=name)))
    assert status == 200 and body["name"] == shown


async def test_admin_cannot_name_a_user_of_another_organisation(api):
    """Property: an admin manages only their own organisation's directory entries."""
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)  # the service knows her org
    body = {"name": "Paula", "topics": ["income"], "pools": [], "languages": ["fi"]}
    await api.call("PUT", "/api/v1/experts/vantaa.paula", "kela.admin", json=body, expect=403)
    named = await api.call("PUT", "/api/v1/experts/vantaa.paula", "vantaa.admin", json=body, expect=200)
    assert named["org"] == "vantaa"


async def test_entry_named_before_sign_in_follows_the_user_to_their_own_organisation(api):
    """Regression: a Kela admin named a not-yet-seen Vantaa user; the Vantaa admin could then
    not edit the entry. The user's sign-in decides: the entry moves to Vantaa, off duty, and
    only Vantaa's admin manages it from then on."""
    body = {"name": "Uusi Asiantuntija", "topics": ["income"], "pools": [], "languages": ["fi"], "on_duty": True}
    made = await api.call("PUT", "/api/v1/experts/vantaa.uusi", "kela.admin", json=body, expect=200)
    assert made["org"] == "kela"
    token = _sign(api, _claims(sub="vantaa.uusi", org="vantaa", roles=["expert"], name="Uusi Asiantuntija"))
    assert (await _call(api, "GET", "/api/v1/me", token))[0] == 200
    listed = await api.call("GET", "/api/v1/experts", "vantaa.admin", expect=200)
    [entry] = [e for e in listed["items"] if e["id"] == "vantaa.uusi"]
    assert entry["org"] == "vantaa" and entry["on_duty"] is False
    await api.call("PUT", "/api/v1/experts/vantaa.uusi", "kela.admin", json={"on_duty": True}, expect=403)
    edited = await api.call("PUT", "/api/v1/experts/vantaa.uusi", "vantaa.admin", json={"on_duty": True},
                            expect=200)
    assert edited["org"] == "vantaa" and edited["on_duty"] is True
    async with api.client.app[keys.DB].read() as conn:
        rows = [r async for part in audit_log.iter_query(conn, audit_log.EventFilter()) for r in part]
    moved = [r for r in rows if r["action"] == "directory.expert.reassign"]
    assert [(r["subject_user"], r["recipient_org"]) for r in moved] == [("vantaa.uusi", "vantaa")]
