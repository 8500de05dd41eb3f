"""Live sessions: a WebSocket lives only as long as its token, can be renewed on the open socket,
and an administrator can end a user's sessions."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from aiohttp import WSMsgType

from consult.auth.dev import DEMO_USERS
from consult.http.app import create_app
from tests.api.wsutil import next_event
from tests.conftest import Api

TTL = 2  # seconds: a token this short runs out within a test
LEEWAY = 1


@pytest.fixture
async def api(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, token_leeway_seconds=LEEWAY)))
    return Api(client)


def user(user_id: str):
    return next(u for u in DEMO_USERS if u.user_id == user_id)


def short_token(api: Api, user_id: str, ttl: int = TTL, now: float | None = None) -> str:
    u = user(user_id)
    return api.issuer.mint(sub=u.user_id, org=u.org, roles=u.roles, name=u.name, ttl=ttl, now=now)


async def open_socket(api: Api, token: str):
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": token})
    ready = await ws.receive_json(timeout=5)
    assert ready["type"] == "ready", ready
    return ws, ready


async def closed_with(ws, timeout: float = TTL + LEEWAY + 10) -> int:
    """Read until the server closes the socket, within ``timeout`` in all; its close code. Events
    before the close are skipped."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - asyncio.get_running_loop().time()))
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code
        assert msg.type == WSMsgType.TEXT, msg


async def test_socket_is_closed_with_4401_when_its_token_expires(api):
    """A live connection ends with its token: closed with 4401 once exp plus the leeway has passed,
    and nothing is delivered after that — the socket does not outlive the token REST refuses."""
    token = short_token(api, "vantaa.sanna")
    ws, ready = await open_socket(api, token)
    assert ready["expires_at"]
    assert await closed_with(ws) == 4401
    # The same token on REST is refused too.
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401
    # An offer made now reaches no one through that socket (it is gone from the server's connections).
    await api.open_consultation(pool="toimeentulotuki")
    assert ws.closed


async def test_fresh_token_on_the_open_socket_keeps_it_open_without_losing_events(api):
    """A client that sends a fresh token for the same user before expiry keeps its connection,
    and receives the events published after the first token ran out."""
    renewed, _ = await open_socket(api, short_token(api, "vantaa.sanna"))
    barrier, _ = await open_socket(api, short_token(api, "vantaa.sanna"))
    await renewed.send_json({"type": "auth", "token": short_token(api, "vantaa.sanna", ttl=600)})
    ok = await next_event(renewed, "auth.ok")
    assert ok["expires_at"]
    # The barrier socket, with the same short token, is closed at its expiry: past that moment.
    assert await closed_with(barrier) == 4401
    created = await api.open_consultation(pool="toimeentulotuki")
    offered = await next_event(renewed, "consultation.offered")
    assert offered["consultation"]["id"] == created["id"]
    await renewed.send_json({"type": "ping"})
    await next_event(renewed, "pong")
    await renewed.close()


@pytest.mark.parametrize("sub,org", [("vantaa.mikko", "vantaa"), ("vantaa.sanna", "kela")])
async def test_a_token_for_someone_else_on_an_open_socket_closes_it(api, sub, org):
    """Renewal cannot switch the user or the organisation of a connection: refused and closed with 4401."""
    ws, _ = await open_socket(api, api.token("vantaa.sanna"))
    other = api.issuer.mint(sub=sub, org=org, roles=["expert"], ttl=600)
    await ws.send_json({"type": "auth", "token": other})
    assert await closed_with(ws, timeout=10) == 4401


async def test_an_invalid_token_on_an_open_socket_closes_it(api):
    ws, _ = await open_socket(api, api.token("vantaa.sanna"))
    await ws.send_json({"type": "auth", "token": "not-a-token"})
    assert await closed_with(ws, timeout=10) == 4401


async def audit_events(api: Api, action: str) -> list[dict]:
    body = await api.call("GET", f"/api/v1/audit/events?action={action}", "vantaa.ville", expect=200)
    return body["items"]


async def test_admin_ends_a_users_sessions(api):
    """An admin ends a user's sessions: the live socket is closed with 4403, every token issued
    before is refused on REST and WebSocket, a later sign-in works, and the act is audited."""
    old = api.token("vantaa.sanna")
    ws, _ = await open_socket(api, old)
    await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {old}"}, expect=200)

    ended = await api.call("POST", "/api/v1/sessions/end", "vantaa.admin", json={"user_id": "vantaa.sanna"},
                           expect=200)
    assert ended["user_id"] == "vantaa.sanna" and ended["org"] == "vantaa"
    assert await closed_with(ws, timeout=10) == 4403

    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert r.status == 401
    again = await api.client.ws_connect("/api/v1/ws")
    await again.send_json({"type": "auth", "token": old})
    assert await closed_with(again, timeout=10) == 4401

    # Token times are whole seconds: a token issued in a later second is a new session.
    later = short_token(api, "vantaa.sanna", ttl=600, now=time.time() + 1)
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {later}"})
    assert r.status == 200

    records = await audit_events(api, "sessions.end")
    assert len(records) == 1
    assert records[0]["actor"]["id"] == "vantaa.admin"
    assert records[0]["subject_user"] == "vantaa.sanna"


async def test_ending_sessions_reaches_only_the_admins_own_organisation(api):
    """An admin of another organisation cannot end a county user's sessions: their token and
    socket live on."""
    token = api.token("vantaa.sanna")
    ws, _ = await open_socket(api, token)
    body = await api.call("POST", "/api/v1/sessions/end", "kela.admin", json={"user_id": "vantaa.sanna"},
                          expect=404)
    assert body["error"]["code"] == "unknown_user"
    await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, expect=200)
    await ws.send_json({"type": "ping"})
    await next_event(ws, "pong")
    await ws.close()


@pytest.mark.parametrize("who", ["vantaa.sanna", "vantaa.ville"])
async def test_only_an_admin_ends_sessions(api, who):
    body = await api.call("POST", "/api/v1/sessions/end", who, json={"user_id": "vantaa.mikko"}, expect=403)
    assert body["error"]["code"] == "role"


async def test_ending_sessions_needs_a_user_id(api):
    await api.call("POST", "/api/v1/sessions/end", "vantaa.admin", json={}, expect=422)
    await api.call("POST", "/api/v1/sessions/end", "vantaa.admin", json={"user_id": "a b"}, expect=422)


async def test_a_token_without_iat_or_nbf_counts_as_issued_before_an_end(api):
    """A token that does not say when it was issued cannot outlive an ended session."""
    from jose import jwt

    now = int(time.time())
    claims = {"iss": api.issuer.issuer, "aud": api.issuer.audience, "sub": "vantaa.sanna", "org": "vantaa",
              "roles": ["expert"], "exp": now + 600}
    undated = jwt.encode(claims, api.issuer._pem.decode(), algorithm="ES256", headers={"kid": api.issuer.jwk["kid"]})
    await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {undated}"}, expect=200)
    await api.call("POST", "/api/v1/sessions/end", "vantaa.admin", json={"user_id": "vantaa.sanna"}, expect=200)
    await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {undated}"}, expect=401)
