"""The web app renews its token before it expires and re-authenticates its open WebSocket, so a
signed-in expert keeps one connection and loses no live event; an ended session signs the tab out."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import Tab, _require_browser, start_server, stop_server

TOKEN_SECONDS = 4


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    process, base = start_server(tmp_path_factory.mktemp("konsulta-renewal"), {
        "CONSULT_DEV_TOKEN_SECONDS": str(TOKEN_SECONDS), "CONSULT_TOKEN_LEEWAY_SECONDS": "1"})
    yield base
    stop_server(process)


def _post(base: str, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _token(base: str, user: str) -> str:
    return _post(base, "/api/v1/dev/token", {"user_id": user})[1]["token"]


def test_token_is_renewed_and_the_socket_keeps_delivering(browser, short_server):
    """Signed in with a 4-second token, the expert's tab renews it and sends it on the same socket:
    well past the first token's expiry the tab has opened one WebSocket only, is still live, and
    an offer made then reaches it."""
    tab = Tab(browser, short_server)
    sockets: list[str] = []
    tab.page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        page = tab.sign_in("vantaa.sanna")
        first = page.evaluate("() => JSON.parse(sessionStorage.getItem('konsulta.session')).token")
        first_exp = page.evaluate("""(t) => JSON.parse(atob(t.split('.')[1].replace(/-/g, '+')
            .replace(/_/g, '/'))).exp * 1000""", first)
        # Barrier: the tab has renewed more than once and the first token (plus leeway) is over.
        page.wait_for_function("""([first, exp]) => {
            const now = JSON.parse(sessionStorage.getItem('konsulta.session')).token;
            return now !== first && Date.now() > exp + 2000;
        }""", arg=[first, first_exp], timeout=30000)
        status, created = _post(short_server, "/api/v1/consultations", {
            "topic": "application_intake", "urgency": "immediate", "pool": "toimeentulotuki",
            "question": "Riittääkö vuokrasopimuksen kopio?", "purpose": "general", "target_org": "vantaa"},
            _token(short_server, "kela.aino"))
        assert status == 201, created
        page.wait_for_selector(f".notice-urgent[data-consultation='{created['id']}']", timeout=15000)
        assert page.get_attribute("#live-status", "class") == "live live-live"
        assert len(sockets) == 1, sockets
        # The API keeps working with the renewed token.
        page.wait_for_selector("#nav a")
    finally:
        unexpected = [e for e in tab.errors if not re.search(r"status of (401|403|404|409|413|422)", e)]
        tab.close()
    assert not unexpected, unexpected


def test_an_ended_session_signs_the_tab_out(browser, short_server):
    """An admin ends the expert's sessions: the tab's socket is closed (4403) and it returns to sign-in."""
    tab = Tab(browser, short_server)
    try:
        page = tab.sign_in("vantaa.mikko")
        status, _ = _post(short_server, "/api/v1/sessions/end", {"user_id": "vantaa.mikko"},
                          _token(short_server, "vantaa.admin"))
        assert status == 200
        page.wait_for_url(re.compile(r".*#/signin$"), timeout=15000)
        page.wait_for_selector("button[data-user='vantaa.mikko']")
        assert page.evaluate("() => sessionStorage.getItem('konsulta.session')") is None
    finally:
        tab.close()


def test_a_token_that_runs_out_mid_conversation_keeps_the_draft(browser, short_server):
    """The advisor is writing an answer when renewals stop reaching the server (the network drops
    them) and the 4-second token runs out: the tab goes to sign-in; the same user's next sign-in
    returns to the same consultation with the text being written still there."""
    aino = _token(short_server, "kela.aino")
    status, created = _post(short_server, "/api/v1/consultations", {
        "topic": "application_intake", "urgency": "normal", "pool": "toimeentulotuki",
        "question": "Riittääkö vuokrasopimuksen kopio?", "purpose": "general", "target_org": "vantaa"}, aino)
    assert status == 201, created
    cid = created["id"]
    assert _post(short_server, f"/api/v1/consultations/{cid}/claim", {}, _token(short_server, "vantaa.sanna"))[0] == 200
    tab = Tab(browser, short_server)
    try:
        page = tab.sign_in("kela.aino")
        tab.go(f"#/c/{cid}", ".composer textarea[name=text]")
        draft = "Kiitos, toimitan kopion vielä tänään"
        page.fill(".composer textarea[name=text]", draft)
        page.route(re.compile(r".*/api/v1/dev/token/renew$"), lambda route: route.abort())
        page.wait_for_url(re.compile(r".*#/signin$"), timeout=30000)
        page.click("button[data-user='kela.aino']")
        page.wait_for_url(re.compile(rf".*#/c/{cid}$"))
        page.wait_for_function("(d) => document.querySelector('.composer textarea[name=text]')?.value === d", arg=draft)
        assert page.evaluate("() => sessionStorage.getItem('konsulta.after')") is None
    finally:
        tab.close()
