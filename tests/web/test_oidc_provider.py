"""The browser sign-in end to end against a real OpenID Provider implementation (the npm package
oidc-provider, run by node on loopback): discovery, its own login page, the code flow with PKCE,
an ES256 JWT access token whose key Konsulta fetches from the provider's JWKS, and Keycloak-style
realm roles mapped to Konsulta's."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from jose import jwt

from tests.web.conftest import ROOT, _require_browser, free_port, start_server, stop_server

PROVIDER = ROOT / "tests" / "web" / "oidc_provider.mjs"


def _require_provider() -> None:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        missing.append("node_modules/oidc-provider (npm install)")
    if missing:
        message = "the OpenID Provider test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must install them (.ci/run)", pytrace=False)
        pytest.skip(message)


def _start_provider(port: int, redirect_uri: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(["node", str(PROVIDER), str(port), redirect_uri, *extra], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "ready" once it listens (or EOF if it died)
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError("oidc-provider did not start:\n" + log.read_text()[-3000:])
    return process


@pytest.fixture(scope="module")
def real_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    _require_browser()
    _require_provider()
    data = tmp_path_factory.mktemp("konsulta-op")
    op_port, app_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    provider = _start_provider(op_port, f"http://127.0.0.1:{app_port}/", data / "provider.log")
    try:
        process, base = start_server(data, {
            "CONSULT_OIDC_AUTHORITY": issuer, "CONSULT_OIDC_CLIENT_ID": "konsulta-web",
            "CONSULT_ISSUER": issuer, "CONSULT_JWKS": f"{issuer}/jwks",
            "CONSULT_ROLES_CLAIM": "realm_access.roles", "CONSULT_ROLE_MAP": "konsulta-advisor=advisor",
        }, port=app_port)
        yield base, data
        stop_server(process)
    finally:
        provider.terminate()
        provider.wait(timeout=15)


def test_sign_in_against_a_real_openid_provider(browser, real_provider):
    """Property: staff sign in through a real provider's login page; the access token it issues
    (signed with a key Konsulta only knows from the provider's JWKS, mapped realm roles, no
    Konsulta-specific role names) authenticates the API and the live channel."""
    base, data = real_provider
    context = browser.new_context(locale="fi-FI")
    page = context.new_page()
    try:
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#signin-oidc ~ button")
        page.wait_for_selector("input[name=login]")  # the provider's own login page
        assert page.url.startswith(base.rsplit(":", 1)[0]) and "/interaction/" in page.url
        page.fill("input[name=login]", "kela.aino")
        page.fill("input[name=password]", "any")
        page.click("button[type=submit]")
        page.wait_for_selector("#nav a")
        page.wait_for_selector("main h1:text('Kysy asiantuntijalta')")
        assert page.inner_text(".who-name") == "Aino Neuvoja"
        token = page.evaluate("() => JSON.parse(sessionStorage.getItem('konsulta.session')).token")
        me = page.evaluate("async (t) => (await fetch('/api/v1/me', {headers: {Authorization: 'Bearer ' + t}})).json()",
                           token)
        assert (me["id"], me["org"], me["roles"]) == ("kela.aino", "kela", ["advisor"])
        # The provider's own key signed it (not the development issuer that --demo also runs),
        # and like many providers it sends no nbf.
        assert jwt.get_unverified_header(token)["kid"] == "op-key-1"
        claims = jwt.get_unverified_claims(token)
        assert claims["aud"] == "consult" and "nbf" not in claims, sorted(claims)
    finally:
        context.close()
    log = (data / "server.log").read_text()
    assert "token rejected" not in log
