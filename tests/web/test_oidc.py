"""Production sign-in in a real browser: the OpenID Connect authorization-code flow with PKCE
(S256) against a small stand-in identity provider on loopback, which checks the verifier
against the challenge exactly as RFC 7636 §4.6 says."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from consult.auth.dev import DevIssuer, demo_user
from tests.web.conftest import _require_browser, free_port, start_server, stop_server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityProvider:
    """Discovery, an authorization endpoint that signs the user in at once, and a token endpoint
    that refuses a code without the right code_verifier."""

    def __init__(self, issuer_key: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = DevIssuer(issuer_key, issuer="konsulta-dev", audience="consult")
        self.codes: dict[str, dict[str, str]] = {}
        self.requests: list[dict[str, Any]] = []
        self.exchanged: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": idp.base, "authorization_endpoint": f"{idp.base}/authorize",
                                     "token_endpoint": f"{idp.base}/token",
                                     "code_challenge_methods_supported": ["S256"]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    idp.requests.append(query)
                    code = secrets.token_urlsafe(16)
                    idp.codes[code] = query
                    target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                    self._send(302, headers={"Location": target})
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                asked = idp.codes.pop(form.get("code", ""), None)
                challenge = _b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
                if (asked is None or form.get("grant_type") != "authorization_code"
                        or asked["code_challenge_method"] != "S256" or challenge != asked["code_challenge"]
                        or form.get("redirect_uri") != asked["redirect_uri"] or form.get("client_id") != asked["client_id"]):
                    self._send(400, {"error": "invalid_grant"})
                    return
                idp.exchanged.append(form["code_verifier"])
                user = demo_user("kela.aino")
                id_token = ".".join([_b64url(b'{"alg":"none"}'), _b64url(json.dumps({"nonce": asked["nonce"]}).encode()), ""])
                self._send(200, {"access_token": idp.issuer.mint_for(user), "token_type": "Bearer", "id_token": id_token})

        return Handler

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, IdentityProvider]]:
    _require_browser()
    data = tmp_path_factory.mktemp("konsulta-oidc")
    idp = IdentityProvider(data / "dev-issuer-key.pem")
    process, base = start_server(data, {"CONSULT_OIDC_AUTHORITY": idp.base, "CONSULT_OIDC_CLIENT_ID": "konsulta-web"})
    yield base, idp
    stop_server(process)
    idp.close()


def test_sign_in_with_the_code_flow_and_pkce(browser, oidc_server):
    """Property: the browser does discovery, sends an S256 challenge, exchanges the code with the
    verifier, strips the code from the address bar and keeps the token only in the tab's session."""
    base, idp = oidc_server
    context = browser.new_context(locale="fi-FI")
    page = context.new_page()
    try:
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#signin-oidc ~ button")
        page.wait_for_selector("#nav a")
        page.wait_for_selector("main h1:text('Kysy asiantuntijalta')")
        assert len(idp.exchanged) == 1
        request = idp.requests[0]
        assert request["client_id"] == "konsulta-web" and request["response_type"] == "code"
        assert request["code_challenge_method"] == "S256" and len(request["code_challenge"]) == 43
        assert request["redirect_uri"] == base + "/"
        state = page.evaluate("() => ({ search: location.search, href: location.href, local: Object.keys(localStorage),"
                              " session: Object.keys(sessionStorage) })")
        assert state["search"] == "" and "code=" not in state["href"] and "state=" not in state["href"]
        # Besides the session, the tab keeps only the id of the last live event it processed.
        assert set(state["session"]) - {"konsulta.live.last"} == {"konsulta.session"}
        assert "konsulta.session" not in state["local"]
        assert page.inner_text(".who-name") == "Aino Neuvoja"
    finally:
        context.close()


def test_a_forged_callback_is_refused(browser, oidc_server):
    """A callback whose state this tab did not send is refused and the code never exchanged."""
    base, idp = oidc_server
    context = browser.new_context(locale="fi-FI")
    page = context.new_page()
    try:
        before = len(idp.exchanged)
        page.goto(base + "/?code=stolen&state=forged")
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_selector("main .error")
        assert "code=" not in page.url
        assert len(idp.exchanged) == before
        assert page.evaluate("() => sessionStorage.getItem('konsulta.session')") is None
    finally:
        context.close()
