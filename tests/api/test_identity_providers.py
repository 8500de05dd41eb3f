"""Real identity providers: keys fetched from a real JWKS server on this host, rotated and removed
there; several issuers with their own claim names; the last good JWKS kept for an outage."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from jose import jwt

from consult.auth.dev import DevIssuer
from consult.auth.tokens import AuthError
from consult.config import Settings, load_settings
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from tests.conftest import ROOT

ISSUER = "https://idp.example/realms/konsulta"


class Provider:
    """A JWKS endpoint on 127.0.0.1 whose keys the test rotates, and the private keys to sign with."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.published: dict[str, list[dict[str, Any]]] = {}
        self.hits: dict[str, int] = {}
        self.down = False
        self.server: TestServer | None = None

    def key(self, name: str, issuer: str = ISSUER) -> DevIssuer:
        return DevIssuer(self.tmp_path / f"{name}.pem", issuer=issuer, audience="consult")

    def publish(self, path: str, *signers: DevIssuer) -> str:
        self.published[path] = [s.jwk for s in signers]
        return self.url(path)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def start(self, aiohttp_server) -> Provider:  # type: ignore[no-untyped-def]
        async def jwks(request: web.Request) -> web.Response:
            self.hits[request.path] = self.hits.get(request.path, 0) + 1
            if request.path.startswith("/moved"):
                raise web.HTTPFound(request.path.removeprefix("/moved"))
            if self.down or request.path not in self.published:
                return web.json_response({"error": "unavailable"}, status=503)
            return web.json_response({"keys": self.published[request.path]})

        app = web.Application()
        app.router.add_get("/{tail:.*}", jwks)
        self.server = await aiohttp_server(app, host="127.0.0.1")
        return self


def sign(signer: DevIssuer, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": signer.issuer, "aud": "consult", "sub": "kela.aino", "org": "kela", "roles": ["advisor"],
            "iat": now, "exp": now + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, signer._pem.decode(), algorithm="ES256", headers={"kid": signer.jwk["kid"]})


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def settings_for(tmp_path: Path, **over: Any) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", key_file=tmp_path / "keys.json",
                    policy_dir=ROOT / "policies", data_dir=tmp_path, **over)


@pytest.fixture
async def provider(aiohttp_server, tmp_path) -> Provider:  # type: ignore[no-untyped-def]
    return await Provider(tmp_path).start(aiohttp_server)


async def me(client, token: str, **headers: str) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = await client.get("/api/v1/me", headers=bearer(token, **headers))
    return response.status, await response.json()


# -- keys: rotation, removal, outage ------------------------------------------------------------


async def test_a_new_key_at_the_provider_is_trusted_at_once(aiohttp_client, provider, tmp_path):
    """Property: a token signed with the provider's new key (unknown kid) fetches the JWKS again
    and is accepted — no 401 for everyone until the periodic refresh."""
    old, new = provider.key("old"), provider.key("new")
    url = provider.publish("/jwks", old)
    client = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url)))
    assert (await me(client, sign(old)))[0] == 200
    provider.publish("/jwks", old, new)
    status, body = await me(client, sign(new))
    assert status == 200 and body["id"] == "kela.aino"


async def test_unknown_key_refetch_is_rate_limited(provider, tmp_path):
    """Property: tokens naming keys nobody published cannot make the service hammer the provider:
    at most one fetch per issuer per minute (the clock is pinned)."""
    from consult.auth.jwks import IdentityProviders, KeySource
    from consult.auth.tokens import Issuer, TokenVerifier

    known, stranger = provider.key("known"), provider.key("stranger")
    url = provider.publish("/jwks", known)
    now = [1000.0]
    verifier = TokenVerifier([Issuer(ISSUER, "consult", frozenset({"kela"}))])
    identity = IdentityProviders(verifier, [KeySource(ISSUER, url, tmp_path)], refresh_seconds=600,
                                 clock=lambda: now[0])
    await identity.load()
    assert provider.hits["/jwks"] == 1
    for _ in range(5):
        with pytest.raises(AuthError, match="unknown kid"):
            await identity.verify(sign(stranger))
    assert provider.hits["/jwks"] == 2  # one refetch for the first unknown kid, none after
    now[0] += 59
    with pytest.raises(AuthError, match="unknown kid"):
        await identity.verify(sign(stranger))
    assert provider.hits["/jwks"] == 2
    now[0] += 2
    for _ in range(2):
        with pytest.raises(AuthError, match="unknown kid"):
            await identity.verify(sign(stranger))
    assert provider.hits["/jwks"] == 3
    assert (await identity.verify(sign(known))).user_id == "kela.aino"


async def test_a_removed_key_is_distrusted_at_the_next_refresh(aiohttp_client, provider, tmp_path):
    """Property: once the provider withdraws a key, tokens it signed — even ones already accepted
    and remembered — are refused after the next refresh, which runs every
    CONSULT_JWKS_REFRESH_MINUTES."""
    old, new = provider.key("old"), provider.key("new")
    url = provider.publish("/jwks", old, new)
    client = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url,
                                                          jwks_refresh_minutes=5)))
    token = sign(old)
    assert (await me(client, token))[0] == 200
    identity = client.app[keys.IDENTITY]
    assert identity.refresh_seconds == 5 * 60
    provider.publish("/jwks", new)
    await identity.refresh_all()  # what the refresh task does every refresh_seconds
    assert (await me(client, token))[0] == 401
    assert (await me(client, sign(new)))[0] == 200


async def test_service_starts_on_its_kept_jwks_while_the_provider_is_down(aiohttp_client, provider, tmp_path,
                                                                        caplog):
    """Property: a restart during an identity-provider outage succeeds on the last good JWKS kept
    in the data directory; the outage is one log line, not a traceback."""
    signer = provider.key("k1")
    url = provider.publish("/jwks", signer)
    first = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url)))
    assert (await me(first, sign(signer)))[0] == 200
    await first.close()
    kept = list(tmp_path.glob("jwks-*.json"))
    assert len(kept) == 1 and "\"d\"" not in kept[0].read_text()  # public keys only

    provider.down = True
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url)))
    assert (await me(second, sign(signer)))[0] == 200
    assert (await second.get("/readyz")).status == 200  # the kept keys serve its users
    lines = [r for r in caplog.records if r.name == "consult.auth" and "JWKS" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert ISSUER in lines[0].getMessage() and "kept" in lines[0].getMessage()


async def test_service_starts_without_any_jwks_when_the_provider_is_unreachable(aiohttp_client, provider,
                                                                              tmp_path, caplog):
    """Property: with nothing kept and the provider unreachable the service still starts (it can
    restart in an outage), says so in one error line, and refuses that issuer's tokens."""
    signer = provider.key("k1")
    url = provider.url("/nothing-published")
    with caplog.at_level(logging.INFO):
        client = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url)))
    assert (await me(client, sign(signer)))[0] == 401
    # Started, but not ready: no user of that provider can sign in on this instance yet.
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["failed"] == ["identity"] and body["checks"]["identity"] == "failed"
    provider.publish("/nothing-published", signer)
    await client.app[keys.IDENTITY].refresh_all()
    assert (await client.get("/readyz")).status == 200 and (await me(client, sign(signer)))[0] == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None and "refused until it answers" in errors[0].getMessage()


async def test_unreachable_host_at_start_up_is_no_traceback(aiohttp_client, tmp_path, caplog):
    """Property: a provider whose host refuses connections does not stop start-up."""
    dead = "http://127.0.0.1:9/jwks"  # discard port: nothing listens
    with caplog.at_level(logging.INFO):
        client = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=dead)))
    assert (await client.get("/api/v1/me")).status == 401
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_redirected_jwks_is_not_followed(provider, tmp_path):
    """Property: the JWKS is read from the configured address only; a redirect (which could lead
    to plain http:// or another host) is not followed."""
    from consult.auth.jwks import IdentityProviders, KeySource
    from consult.auth.tokens import Issuer, TokenVerifier

    signer = provider.key("k1")
    provider.publish("/jwks", signer)
    verifier = TokenVerifier([Issuer(ISSUER, "consult", frozenset({"kela"}))])
    await IdentityProviders(verifier, [KeySource(ISSUER, provider.url("/moved/jwks"), tmp_path)],
                            refresh_seconds=600).load()
    assert provider.hits.get("/jwks") is None and verifier.key_ids(ISSUER) == ()
    with pytest.raises(AuthError):
        verifier.verify(sign(signer))


@pytest.mark.parametrize("jwks", ["http://idp.example/jwks", "ftp://idp.example/jwks",
                                  "http://10.0.0.5/certs"])
def test_jwks_over_plain_http_is_refused_except_on_this_host(jwks):
    """Property: a JWKS read over the network unprotected (anyone on the path could replace the
    keys) is a configuration error; http:// is allowed only to localhost."""
    with pytest.raises(ConfigError, match="CONSULT_JWKS"):
        load_settings({"CONSULT_JWKS": jwks, "CONSULT_ISSUER": ISSUER})
    assert load_settings({"CONSULT_JWKS": "http://127.0.0.1:8081/jwks", "CONSULT_ISSUER": ISSUER}).jwks
    assert load_settings({"CONSULT_JWKS": "https://idp.example/jwks", "CONSULT_ISSUER": ISSUER}).jwks


# -- several issuers, claim mapping ---------------------------------------------------------------


def _two_issuers_config(tmp_path: Path, keycloak_url: str, entra_url: str) -> Path:
    config = tmp_path / "konsulta.toml"
    config.write_text(f"""
[[issuers]]
issuer = "https://keycloak.example/realms/kela"
jwks = "{keycloak_url}"
orgs = ["kela"]
org_claim = "org"
roles_claim = "realm_access.roles"
[issuers.roles]
konsulta-advisor = "advisor"
konsulta-privacy = "privacy_officer"

[[issuers]]
issuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0"
jwks = "{entra_url}"
audience = "api://konsulta"
orgs = ["vantaa"]
org_claim = ""
[issuers.roles]
"Konsulta.Expert" = "expert"
""")
    return config


async def test_several_issuers_with_their_own_claims_and_organisations(aiohttp_client, provider, tmp_path):
    """Property: each configured issuer is trusted for its own organisations only, with its own
    claim names: Keycloak realm roles (``realm_access.roles``) and Entra-style app roles
    (``Konsulta.Expert``) become Konsulta roles; a token without ``nbf`` is accepted."""
    keycloak = provider.key("kc", issuer="https://keycloak.example/realms/kela")
    entra = provider.key("entra", issuer="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0")
    config = _two_issuers_config(tmp_path, provider.publish("/kc/certs", keycloak),
                                 provider.publish("/entra/keys", entra))
    settings = load_settings({"CONSULT_CONFIG": str(config), "CONSULT_DATA_DIR": str(tmp_path),
                              "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
                              "CONSULT_KEY_FILE": str(tmp_path / "keys.json"),
                              "CONSULT_POLICY_DIR": str(ROOT / "policies")})
    client = await aiohttp_client(create_app(settings))

    kc_token = sign(keycloak, org="kela", roles=None, sub="kela.aino",
                    realm_access={"roles": ["offline_access", "konsulta-advisor", "uma_authorization"]})
    status, body = await me(client, kc_token)
    assert status == 200 and (body["org"], body["roles"]) == ("kela", ["advisor"])

    entra_token = sign(entra, aud="api://konsulta", org=None, sub="vantaa.sanna",
                       roles=["Konsulta.Expert", "Something.Else"])  # no nbf, as Entra may send
    status, body = await me(client, entra_token)
    assert status == 200 and (body["org"], body["roles"]) == ("vantaa", ["expert"])

    # An issuer may not assert an organisation it is not configured for.
    assert (await me(client, sign(keycloak, org="vantaa", realm_access={"roles": ["konsulta-advisor"]})))[0] == 401
    # Each issuer's keys are its own: a token claiming one issuer signed with the other's key.
    forged = jwt.encode(jwt.get_unverified_claims(kc_token), entra._pem.decode(), algorithm="ES256",
                        headers={"kid": entra.jwk["kid"]})
    assert (await me(client, forged))[0] == 401
    # nbf is optional, but checked when present.
    future = int(time.time()) + 3600
    assert (await me(client, sign(entra, aud="api://konsulta", org=None, roles=["Konsulta.Expert"],
                                  nbf=future, exp=future + 600)))[0] == 401


def test_single_issuer_environment_settings_are_the_default_case():
    """Property: today's CONSULT_ISSUER/CONSULT_JWKS/CONSULT_AUDIENCE/CONSULT_ORGS still describe
    one issuer for every organisation, with claims named by CONSULT_ORG_CLAIM and friends."""
    settings = load_settings({"CONSULT_ISSUER": ISSUER, "CONSULT_JWKS": "https://idp.example/certs",
                              "CONSULT_ROLES_CLAIM": "realm_access.roles",
                              "CONSULT_ROLE_MAP": "Konsulta.Advisor=advisor, Konsulta.Expert=expert"})
    [idp] = settings.identity_providers
    assert (idp.issuer, idp.jwks, idp.audience, idp.orgs, idp.org_claim, idp.roles_claim) == (
        ISSUER, "https://idp.example/certs", "consult", ("kela", "vantaa"), "org", "realm_access.roles")
    assert dict(idp.role_map) == {"Konsulta.Advisor": "advisor", "Konsulta.Expert": "expert"}


@pytest.mark.parametrize("env,config,key", [
    ({"CONSULT_ROLE_MAP": "Konsulta.Boss=superuser"}, None, "CONSULT_ROLE_MAP"),
    ({"CONSULT_ROLE_MAP": "no-equals-sign"}, None, "CONSULT_ROLE_MAP"),
    ({"CONSULT_ORG_CLAIM": ""}, None, "CONSULT_ORG_CLAIM"),  # two organisations need an org claim
    ({"CONSULT_JWKS_REFRESH_MINUTES": "0"}, None, "CONSULT_JWKS_REFRESH_MINUTES"),
    ({}, '[[issuers]]\nissuer = "https://a.example"\njwks = "http://a.example/certs"\norgs = ["kela"]\n',
     "issuers\\[0\\].jwks"),
    ({}, '[[issuers]]\nissuer = "https://a.example"\njwks = "https://a.example/c"\norgs = ["espoo"]\n',
     "issuers\\[0\\].orgs"),
    ({}, '[[issuers]]\nissuer = "https://a.example"\norgs = ["kela"]\n', "jwks"),
    ({}, f'[[issuers]]\nissuer = "{ISSUER}"\njwks = "https://a.example/c"\norgs = ["kela"]\n', "twice"),
])
def test_bad_issuer_settings_name_their_key(tmp_path, env, config, key):
    base = {"CONSULT_ISSUER": ISSUER, "CONSULT_JWKS": "https://idp.example/certs"}
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
        base["CONSULT_CONFIG"] = str(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match=key):
        load_settings({**base, **env})


def test_claim_mapping_reads_nested_and_namespaced_claims():
    """A dotted path reaches into nested claims; a claim whose own name has dots (a namespaced
    URL claim) is found by its whole name first."""
    from consult.auth.tokens import ClaimMapping, principal_from_claims

    nested = principal_from_claims({"sub": "a", "org": "kela", "realm_access": {"roles": ["kc-advisor"]}},
                                   frozenset({"kela"}), ClaimMapping(roles_claim="realm_access.roles",
                                                                     role_map={"kc-advisor": "advisor"}))
    assert nested.roles == frozenset({"advisor"})
    namespaced = principal_from_claims({"sub": "a", "https://konsulta.example/org": "kela", "roles": ["expert"]},
                                       frozenset({"kela"}), ClaimMapping(org_claim="https://konsulta.example/org"))
    assert (namespaced.org, namespaced.roles) == ("kela", frozenset({"expert"}))


# -- rejections are logged ----------------------------------------------------------------------


async def test_every_rejected_token_is_logged_with_reason_and_issuer_never_content(aiohttp_client, provider,
                                                                                  tmp_path, caplog):
    """Property: an operator can tell why sign-ins fail (reason, issuer) from the log, and the log
    never holds a token or its claims."""
    signer = provider.key("k1")
    url = provider.publish("/jwks", signer)
    client = await aiohttp_client(create_app(settings_for(tmp_path, issuer=ISSUER, jwks=url)))
    now = int(time.time())
    cases = {
        "expired": sign(signer, iat=now - 7200, exp=now - 3600),
        "wrong audience": sign(signer, aud="someone-else"),
        "other org": sign(signer, org="espoo", sub="espoo.secret-user"),
        "foreign issuer": sign(provider.key("x", issuer="https://evil.example"), sub="kela.secret-user"),
        "garbage": "garbage-header.garbage-payload.garbage-signature",
    }
    for name, token in cases.items():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="consult.auth"):
            assert (await me(client, token))[0] == 401, name
        [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("token rejected")]
        assert "reason=" in line and "issuer=" in line, line
        assert token not in caplog.text and token.split(".")[1] not in caplog.text
        assert "secret-user" not in caplog.text
        if name == "wrong audience":
            assert "audience" in line, line
        if name in ("expired", "wrong audience", "other org"):
            assert f"issuer={ISSUER} " in line, line
        if name == "foreign issuer":
            assert "issuer=https://evil.example " in line and "not trusted" in line, line


# -- the real client behind a proxy -------------------------------------------------------------


async def _audit_source(api, user_headers: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    from tests.synthetic import hetu

    response = await api.client.post("/api/v1/clients", json={"hetu": hetu(7)},
                                     headers={**api.auth("kela.aino"), **user_headers, "X-Request-ID": "proxy-test-1"})
    assert response.status in (200, 201), await response.text()
    page = await api.call("GET", "/api/v1/audit/events", "kela.tuula", expect=200)
    [event] = [e for e in page["items"] if e["request_id"] == "proxy-test-1"]
    return event["source"]


async def _api(aiohttp_client, settings: Settings):  # type: ignore[no-untyped-def]
    from tests.conftest import Api

    return Api(await aiohttp_client(create_app(settings)))


async def test_audit_records_the_client_behind_a_trusted_proxy(aiohttp_client, settings):
    """Property: behind a proxy in CONSULT_TRUSTED_PROXIES the audit log's source is the real
    client (the rightmost address the proxies did not add), not the proxy."""
    api = await _api(aiohttp_client, replace(settings, trusted_proxies=("127.0.0.1/32", "10.0.0.0/8")))
    # The client sent a made-up hop; the outer proxy (10.1.2.3) saw 198.51.100.7 connect.
    xff = {"X-Forwarded-For": "192.0.2.66, 198.51.100.7, 10.1.2.3"}
    assert await _audit_source(api, xff) == "198.51.100.7"


async def test_forwarded_headers_from_anyone_else_are_ignored(aiohttp_client, settings):
    """Property: a client that is not a trusted proxy cannot choose the address it is logged under."""
    api = await _api(aiohttp_client, replace(settings, trusted_proxies=("10.0.0.0/8",)))
    assert await _audit_source(api, {"X-Forwarded-For": "198.51.100.7"}) == "127.0.0.1"


def test_rightmost_untrusted_hop_and_forwarded_proto():
    from consult.http.forwarded import TrustedProxies

    proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"])
    assert proxies.client("127.0.0.1", ["203.0.113.5"], "https", "http") == ("203.0.113.5", "https")
    assert proxies.client("127.0.0.1", ["1.1.1.1, 203.0.113.5", "10.0.0.1"], None, "http") == ("203.0.113.5", "http")
    assert proxies.client("127.0.0.1", ["10.0.0.2, 10.0.0.1"], None, "http") == ("10.0.0.2", "http")
    assert proxies.client("127.0.0.1", ["[2001:db9::1]:4711, 2001:db8::5"], None, "http") == ("2001:db9::1", "http")
    assert proxies.client("127.0.0.1", ["not-an-address"], "https", "http")[0] == "127.0.0.1"
    assert proxies.client("192.0.2.1", ["203.0.113.5"], "https", "http") == ("192.0.2.1", "http")
    assert proxies.client("127.0.0.1", ["203.0.113.5"], "gopher", "http") == ("203.0.113.5", "http")


async def test_throttle_counts_real_clients_and_never_slows_a_valid_token(aiohttp_client, settings):
    """Property: token guessing from one client behind the proxy is cut off with 429, but a valid
    token is never refused by the throttle — not that client's, not anyone else's behind the same
    proxy — and other clients keep their own count."""
    api = await _api(aiohttp_client, replace(settings, trusted_proxies=("127.0.0.1",), auth_failures_per_minute=3))
    guesser, colleague = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [(await api.client.get("/api/v1/me", headers={**bad, **guesser})).status for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert (await api.client.get("/api/v1/me", headers={**api.auth("kela.aino"), **guesser})).status == 200
    assert (await api.client.get("/api/v1/me", headers={**api.auth("kela.eero"), **colleague})).status == 200
    assert (await api.client.get("/api/v1/me", headers={**bad, **colleague})).status == 401
    ws = await api.client.ws_connect("/api/v1/ws", headers=guesser)
    await ws.send_json({"type": "auth", "token": api.token("kela.aino")})
    ready = await ws.receive_json(timeout=5)
    assert ready["type"] == "ready"
    await ws.close()
