"""A sign-in through the organisation's OpenID Provider (the npm package oidc-provider, run by node
on loopback, with access tokens of a few seconds) is renewed by the web app with the refresh token
of its code exchange: the tab stays signed in past the first token's expiry, its one WebSocket is
re-authenticated (never closed with 4401) and a live event sent after that expiry arrives."""

from __future__ import annotations

import re
import urllib.parse

from collections.abc import Iterator
from pathlib import Path

import pytest
from jose import jwt

from tests.web.conftest import _require_browser, free_port, start_server, stop_server
from tests.web.test_oidc_provider import _require_provider, _start_provider

ACCESS_TOKEN_SECONDS = 6


@pytest.fixture(scope="module")
def short_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    _require_browser()
    _require_provider()
    data = tmp_path_factory.mktemp("konsulta-op-renewal")
    op_port, app_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    provider = _start_provider(op_port, f"http://127.0.0.1:{app_port}/", data / "provider.log",
                               str(ACCESS_TOKEN_SECONDS), "refresh")
    try:
        process, base = start_server(data, {
            "CONSULT_OIDC_AUTHORITY": issuer, "CONSULT_OIDC_CLIENT_ID": "konsulta-web",
            "CONSULT_ISSUER": issuer, "CONSULT_JWKS": f"{issuer}/jwks",
            "CONSULT_ROLES_CLAIM": "realm_access.roles",
            "CONSULT_ROLE_MAP": "konsulta-advisor=advisor,konsulta-expert=expert",
            "CONSULT_TOKEN_LEEWAY_SECONDS": "1",
        }, port=app_port)
        yield base, data
        stop_server(process)
    finally:
        provider.terminate()
        provider.wait(timeout=15)


def _sign_in(page, base: str, user: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#signin-oidc ~ button")
    page.wait_for_selector("input[name=login]")  # the provider's own login page
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_selector("#nav a")


def _session_token(page) -> str:
    return page.evaluate("() => JSON.parse(sessionStorage.getItem('konsulta.session')).token")


def test_a_provider_sign_in_is_renewed_and_the_socket_keeps_delivering(browser, short_provider):
    """Property: with 6-second access tokens from the provider, the expert's tab renews through the
    refresh_token grant (the provider rotates the refresh token at each use, so a second renewal
    proves the rotated one is used) and sends each new token on its one socket: past the first
    token's expiry it is still signed in and live, its REST calls carry the new token, no socket
    was closed, and an offer made then reaches it. The refresh token is in no storage."""
    base, data = short_provider
    context = browser.new_context(locale="fi-FI")
    page = context.new_page()
    sockets: list = []
    closed: list[str] = []

    def on_socket(ws) -> None:
        sockets.append(ws)
        ws.on("close", lambda _ws: closed.append(ws.url))

    page.on("websocket", on_socket)
    refresh_tokens: list[str] = []  # as each renewal sent it to the provider
    unauthorised: list[str] = []

    def on_request(request) -> None:
        form = urllib.parse.parse_qs(request.post_data or "") if request.method == "POST" else {}
        if form.get("grant_type") == ["refresh_token"]:
            refresh_tokens.append(form["refresh_token"][0])

    page.on("request", on_request)
    page.on("response", lambda r: unauthorised.append(r.url) if r.status == 401 else None)
    try:
        _sign_in(page, base, "vantaa.sanna")
        page.wait_for_selector("#live-status.live-live")
        first = _session_token(page)
        claims = jwt.get_unverified_claims(first)
        assert jwt.get_unverified_header(first)["kid"] == "op-key-1"
        assert claims["exp"] - claims["iat"] == ACCESS_TOKEN_SECONDS
        # Barrier: two renewals (the second with the rotated refresh token) and the first token,
        # with the server's leeway, is over.
        page.wait_for_function("""([first, exp]) => {
            const now = JSON.parse(sessionStorage.getItem('konsulta.session')).token;
            const payload = JSON.parse(atob(now.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
            return payload.exp >= exp + 6 && Date.now() > exp * 1000 + 2000;
        }""", arg=[first, claims["exp"]], timeout=40000)
        renewed = _session_token(page)
        assert jwt.get_unverified_header(renewed)["kid"] == "op-key-1"
        assert jwt.get_unverified_claims(renewed)["sub"] == "vantaa.sanna"

        # An advisor of Kela, signed in through the same provider in another browser, asks now.
        advisor = browser.new_context(locale="fi-FI")
        try:
            asking = advisor.new_page()
            _sign_in(asking, base, "kela.aino")
            created = asking.evaluate("""async (body) => {
                const token = JSON.parse(sessionStorage.getItem('konsulta.session')).token;
                const r = await fetch('/api/v1/consultations', {method: 'POST', body: JSON.stringify(body),
                    headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'}});
                return {http: r.status, body: await r.json()};
            }""", {"topic": "application_intake", "urgency": "immediate", "pool": "toimeentulotuki",
                   "question": "Riittääkö vuokrasopimuksen kopio?", "purpose": "general", "target_org": "vantaa"})
        finally:
            advisor.close()
        assert created["http"] == 201, created
        created = created["body"]
        page.wait_for_selector(f".notice-urgent[data-consultation='{created['id']}']", timeout=15000)
        assert page.get_attribute("#live-status", "class") == "live live-live"
        assert len(sockets) == 1 and not closed, (len(sockets), closed)
        # REST with the renewed token: the queue loads with the offer, no request was refused.
        page.evaluate("() => { location.hash = '#/advisor-none'; }")
        page.wait_for_selector("main h1")
        page.click(f".notice-urgent[data-consultation='{created['id']}'] button")
        page.wait_for_selector(f"button.claim[data-consultation='{created['id']}']", timeout=15000)
        assert not page.url.endswith("#/signin")
        assert not unauthorised, unauthorised
        # Each renewal used the refresh token the previous answer rotated in.
        assert len(refresh_tokens) >= 2 and len(set(refresh_tokens)) == len(refresh_tokens)
        # The refresh token is held in memory only: in no storage of the tab.
        stored = page.evaluate("() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")
        assert not any(value in stored for value in refresh_tokens)
    finally:
        context.close()
    log = (data / "server.log").read_text()
    assert "token rejected" not in log


@pytest.mark.parametrize("failure", ["refused", "unreachable"])
def test_a_failed_renewal_falls_back_to_sign_in_at_expiry(browser, short_provider, failure):
    """Property: when the provider refuses the refresh token (400 invalid_grant) or cannot be
    reached, the tab is sent to the sign-in page when its token runs out (the socket's 4401), its
    session is gone, and the next sign-in returns to the view the user was in."""
    base, _ = short_provider
    context = browser.new_context(locale="fi-FI")
    page = context.new_page()
    attempts: list[str] = []

    def provider_token_endpoint(route) -> None:
        form = urllib.parse.parse_qs(route.request.post_data or "")
        if form.get("grant_type") != ["refresh_token"]:
            route.continue_()
            return
        attempts.append(failure)
        if failure == "refused":
            route.fulfill(status=400, content_type="application/json",
                          body='{"error":"invalid_grant","error_description":"grant request is invalid"}')
        else:
            route.abort("connectionrefused")

    try:
        page.route(re.compile(r".*/token$"), provider_token_endpoint)
        _sign_in(page, base, "kela.aino")
        page.evaluate("() => { location.hash = '#/consents'; }")
        page.wait_for_selector("main h1")
        page.wait_for_url(re.compile(r".*#/signin$"), timeout=(ACCESS_TOKEN_SECONDS + 10) * 1000)
        assert attempts, "no renewal was tried"
        if failure == "refused":
            assert len(attempts) == 1  # a refusal is final
        assert page.evaluate("() => sessionStorage.getItem('konsulta.session')") is None
        page.wait_for_selector("body[data-ready=true]")
        page.click("#signin-oidc ~ button")
        # The provider may remember its own session and skip its login page.
        page.wait_for_url(re.compile(r".*(/interaction/|#/consents$)"))
        if "/interaction/" in page.url:
            page.fill("input[name=login]", "kela.aino")
            page.fill("input[name=password]", "any")
            page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*#/consents$"), timeout=15000)
        page.wait_for_selector("#nav a")
    finally:
        context.close()
