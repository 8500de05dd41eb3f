"""Every way a bearer token can be wrong is a 401 — never a 500, never a pass (the security floor,
docs/capabilities.md)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from aiohttp import WSMsgType
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from consult.auth.dev import DevIssuer
from consult.http import keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**over):
    now = int(time.time())
    base = {"iss": "konsulta-dev", "aud": "consult", "sub": "kela.aino", "org": "kela",
            "roles": ["advisor"], "iat": now, "nbf": now, "exp": now + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _sign(api, claims, **headers):
    issuer = api.client.app[keys.DEV_ISSUER]
    pem = issuer._pem.decode()
    return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": issuer.jwk["kid"], **headers})


def _foreign_ec_token(claims, kid):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": kid})


async def _status(api, token: str | None, raw_header: str | None = None) -> tuple[int, dict]:
    headers = {}
    if raw_header is not None:
        headers["Authorization"] = raw_header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await api.client.get("/api/v1/me", headers=headers)
    return response.status, await response.json()


async def test_valid_token_is_accepted(api):
    status, body = await _status(api, _sign(api, _claims()))
    assert status == 200 and body["id"] == "kela.aino" and body["roles"] == ["advisor"]


async def test_nbf_is_optional(api):
    """``nbf`` is optional (RFC 7519 §4.1.5): many providers leave it out; when present it is
    checked (the "not yet valid" case below)."""
    status, body = await _status(api, _sign(api, _claims(nbf=None)))
    assert status == 200 and body["id"] == "kela.aino"


def _cases(api):
    issuer = api.client.app[keys.DEV_ISSUER]
    kid = issuer.jwk["kid"]
    good = _sign(api, _claims())
    header, payload, sig = good.split(".")
    now = int(time.time())
    tampered_payload = _b64(json.dumps(_claims(org="vantaa", roles=["admin"])).encode())
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    public_pem = json.dumps(issuer.jwk)
    hs_token = jwt.encode(_claims(), public_pem, algorithm="HS256", headers={"kid": kid})
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    return {
        "no header": (None, None),
        "not bearer": (None, f"Basic {good}"),
        "empty bearer": (None, "Bearer "),
        "garbage": ("not.a.jwt", None),
        "alg none": (f"{none_header}.{payload}.", None),
        "HS256 signed with the public key": (hs_token, None),
        "RS256 from an unknown key with our kid": (
            jwt.encode(_claims(), rsa_pem, algorithm="RS256", headers={"kid": kid}), None),
        "expired": (_sign(api, _claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600)), None),
        "not yet valid": (_sign(api, _claims(nbf=now + 3600, exp=now + 7200)), None),
        "wrong issuer": (_sign(api, _claims(iss="someone-else")), None),
        "wrong audience": (_sign(api, _claims(aud="other-service")), None),
        "missing exp": (_sign(api, _claims(exp=None)), None),
        "missing iss": (_sign(api, _claims(iss=None)), None),
        "missing aud": (_sign(api, _claims(aud=None)), None),
        "unknown kid": (_foreign_ec_token(_claims(), "no-such-kid"), None),
        "right kid, wrong key": (_foreign_ec_token(_claims(), kid), None),
        "tampered payload": (f"{header}.{tampered_payload}.{sig}", None),
        "tampered signature": (f"{header}.{payload}.{sig[:-4]}AAAA", None),
        "bad org claim": (_sign(api, _claims(org="Kela Vantaa!")), None),
        "huge token": ("a" * 8100, None),
    }


async def test_every_auth_failure_is_401(api):
    """Property: no malformed, forged, expired or misaddressed token authenticates, and none causes a 5xx."""
    for name, (token, raw) in _cases(api).items():
        status, body = await _status(api, token, raw)
        assert status == 401, name
        assert body == {"error": {"code": "unauthenticated", "message": "A valid bearer token is required."}}, name


async def test_websocket_rejects_bad_or_missing_auth_with_4401(api):
    """Property: the live channel authenticates on the first frame, and never from the URL."""
    for first in ({"type": "auth", "token": "nope"}, {"type": "hello"}, "not json"):
        ws = await api.client.ws_connect("/api/v1/ws")
        if isinstance(first, str):
            await ws.send_str(first)
        else:
            await ws.send_json(first)
        msg = await ws.receive(timeout=5)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 4401
        await ws.close()


async def test_websocket_times_out_without_auth(api):
    ws = await api.client.ws_connect("/api/v1/ws")
    msg = await ws.receive(timeout=10)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 4401


async def test_token_in_query_string_is_not_accepted(api):
    token = api.token("kela.aino")
    response = await api.client.get(f"/api/v1/me?access_token={token}")
    assert response.status == 401


async def test_dev_issuer_is_off_unless_asked(tmp_path):
    """Property: without CONSULT_DEV the service refuses to start with no identity provider."""
    from consult.config import load_settings
    from consult.errors import ConfigError

    with pytest.raises(ConfigError, match="CONSULT_JWKS"):
        load_settings({})


async def test_external_jwks_file_is_trusted_and_dev_endpoints_absent(aiohttp_client, tmp_path):
    """An identity provider's JWKS (here a file) is trusted; no development endpoint exists."""
    from consult.config import Settings
    from consult.http.app import create_app
    from tests.conftest import ROOT

    idp = DevIssuer(tmp_path / "idp.pem", issuer="https://idp.example", audience="consult")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [idp.jwk]}))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", policy_dir=ROOT / "policies",
        data_dir=tmp_path, jwks=str(tmp_path / "jwks.json"), issuer="https://idp.example",
    )
    client = await aiohttp_client(create_app(settings))
    token = idp.mint(sub="kela.aino", org="kela", roles=["advisor"])
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    other = DevIssuer(tmp_path / "other.pem", issuer="https://idp.example", audience="consult")
    forged = other.mint(sub="kela.aino", org="kela", roles=["advisor"])
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status == 401
    response = await client.post("/api/v1/dev/token", json={"user_id": "kela.aino"})
    assert response.status == 404


async def test_repeated_failures_from_one_address_are_throttled(aiohttp_client, settings):
    """Property: guessing tokens from one address is cut off with 429 after the configured failures."""
    from dataclasses import replace

    from consult.http.app import create_app
    from tests.conftest import Api

    api = Api(await aiohttp_client(create_app(replace(settings, auth_failures_per_minute=5))))
    good = api.auth("kela.aino")
    assert (await api.client.get("/api/v1/me", headers=good)).status == 200
    for _ in range(5):
        response = await api.client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
        assert response.status == 401
    response = await api.client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status == 429
    assert (await response.json())["error"]["code"] == "rate_limited"
    # While blocked, a bad token on the live channel closes it with 4429; a valid token is
    # never slowed (tests/api/test_identity_providers.py).
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": "not-a-token"})
    await ws.receive(timeout=5)
    assert ws.close_code == 4429
    assert (await api.client.get("/api/v1/me", headers=good)).status == 200


def test_throttle_window_expires():
    from consult.auth.throttle import FailureThrottle

    now = [0.0]
    throttle = FailureThrottle(2, 60, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.blocked("a") and not throttle.blocked("b")
    now[0] = 61
    assert not throttle.blocked("a")
