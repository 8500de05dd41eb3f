"""deploy/nginx/konsulta.conf, as shipped, in Debian's nginx in front of a real Konsulta process.

nginx runs unprivileged in the foreground with its own prefix in a temporary directory (as the
user nobody when the tests run as root), on free ports of 127.0.0.2, with a self-signed
certificate made here. Only the listen addresses, the certificate paths and the upstream port of
the site file are replaced — each replacement must match exactly, so a changed file fails here
instead of being tested half.

The client connects from 127.0.0.3 (its socket is bound there); nginx reaches Konsulta from
127.0.0.1, the one proxy Konsulta trusts (CONSULT_TRUSTED_PROXIES=127.0.0.1/32). So the audit
log's source is 127.0.0.3 only if the forwarded address is used, and a forged X-Forwarded-For
sent through nginx or straight to Konsulta from an untrusted address is not believed.

Skips without nginx on a developer's machine; fails in CI (CI set), where .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.wsutil import next_event
from tests.conftest import ROOT
from tests.serverproc import ServerProcess

SITE = ROOT / "deploy" / "nginx" / "konsulta.conf"
NAME = "konsulta.example.org"
EDGE = "127.0.0.2"  # where nginx listens
CLIENT = "127.0.0.3"  # where the client connects from
OUTSIDER = "127.0.0.4"  # a client that goes straight to Konsulta, around the proxy
PROXY = "127.0.0.1"  # where nginx connects to Konsulta from
FORGED = "203.0.113.9"  # what a client claims in X-Forwarded-For


def _nginx() -> str:
    found = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        message = "the nginx test needs Debian's nginx (apt-get install nginx-light)"
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must install it (.ci/run)", pytrace=False)
        pytest.skip(message)
    return found


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(NAME), x509.IPAddress(ipaddress.ip_address(EDGE))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


ACCESS_LOG = "/var/log/nginx/konsulta.access.log"


def site_for_test(text: str, *, http_port: int, tls_port: int, upstream_port: int | Sequence[int], cert: Path,
                  key: Path, access_log: Path | None = None) -> str:
    """The shipped site with only its addresses, ports, certificate and log paths replaced (several
    upstream ports: one ``server`` line each, as an operator lists several instances)."""
    # The access log is named in both server blocks (the redirect's and the service's).
    assert text.count(ACCESS_LOG) == 2, f"{SITE.name}: expected {ACCESS_LOG!r} twice"
    if access_log is not None:
        text = text.replace(ACCESS_LOG, str(access_log))
    ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
    servers = "\n    ".join(f"server {PROXY}:{port};" for port in ports)
    replacements = [
        ("    listen [::]:80;\n", ""),
        ("    listen [::]:443 ssl;\n", ""),
        ("listen 80;", f"listen {EDGE}:{http_port};"),
        ("listen 443 ssl;", f"listen {EDGE}:{tls_port} ssl;"),
        ("server 127.0.0.1:8080;", servers),
        ("/etc/ssl/konsulta/fullchain.pem", str(cert)),
        ("/etc/ssl/konsulta/privkey.pem", str(key)),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, f"{SITE.name}: expected {old!r} exactly once"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx -p <temporary prefix> in the foreground, unprivileged, with the site included."""

    def __init__(self, binary: str, upstream_port: int | Sequence[int]) -> None:
        self.binary = binary
        self.prefix = Path(tempfile.mkdtemp(prefix="konsulta-nginx-"))
        self.http_port, self.tls_port = _free_port(EDGE), _free_port(EDGE)
        self.cert, key = _self_signed(self.prefix)
        self.access_log = self.prefix / "konsulta.access.log"
        site = site_for_test(SITE.read_text(), http_port=self.http_port, tls_port=self.tls_port,
                             upstream_port=upstream_port, cert=self.cert, key=key, access_log=self.access_log)
        (self.prefix / "konsulta.conf").write_text(site)
        (self.prefix / "tmp").mkdir()
        p = self.prefix
        (p / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    include {p}/konsulta.conf;
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        drop: dict[str, object] = {}
        if os.geteuid() == 0:  # never run the proxy as root: the site must work without it
            nobody = pwd.getpwnam("nobody")
            for path in [self.prefix, *self.prefix.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            drop = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        command = [self.binary, "-p", f"{self.prefix}/", "-c", str(self.prefix / "nginx.conf"),
                   "-e", str(self.prefix / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, **drop)  # type: ignore[call-overload]
        assert check.returncode == 0, f"nginx -t:\n{check.stderr}"
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **drop)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((EDGE, self.tls_port), timeout=1).close()
                break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited:\n{self.log()}")
            assert time.monotonic() < deadline, f"nginx did not listen:\n{self.log()}"
            time.sleep(0.1)
        uid = next(line.split()[1] for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:"))
        assert uid != "0", "nginx runs as root"
        return self

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight, then exit
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)

    @property
    def base(self) -> str:
        return f"https://{EDGE}:{self.tls_port}"


@pytest.fixture(scope="module")
def konsulta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("konsulta"), CONSULT_TRUSTED_PROXIES=f"{PROXY}/32").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def edge(konsulta: ServerProcess) -> Iterator[Nginx]:
    proxy = Nginx(_nginx(), konsulta.port)
    try:
        yield proxy.start()
    finally:
        proxy.stop()


def _session(edge: Nginx, local: str) -> aiohttp.ClientSession:
    """A client bound to ``local`` that trusts only the test's certificate, and checks it."""
    tls = ssl.create_default_context(cafile=str(edge.cert))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, local_addr=(local, 0)))


def _headers(server: ServerProcess, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(user)}", "X-Forwarded-For": FORGED}


CONSULTATION = {"topic": "application_intake", "urgency": "normal", "purpose": "general", "target_org": "vantaa"}


async def test_plain_http_only_redirects_to_https(edge: Nginx) -> None:
    async with _session(edge, CLIENT) as http:
        async with http.get(f"http://{EDGE}:{edge.http_port}/api/v1/consultations?page=2",
                            allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"] == f"https://{EDGE}/api/v1/consultations?page=2"


async def test_rest_and_websocket_through_nginx_over_tls(konsulta: ServerProcess, edge: Nginx) -> None:
    async with _session(edge, CLIENT) as https:
        async with https.get(f"{edge.base}/readyz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"
            assert r.headers["Strict-Transport-Security"] == "max-age=63072000"
            assert "Content-Security-Policy" in r.headers  # Konsulta's own headers pass through

        async with https.post(f"{edge.base}/api/v1/consultations", headers=_headers(konsulta, "kela.aino"),
                              json={**CONSULTATION, "question": "Through the proxy?"}) as r:
            assert r.status == 201, await r.text()
            cid = (await r.json())["id"]

        # The live channel: upgrade through nginx, the auth frame, ready, then a live event.
        ws = await https.ws_connect(f"wss://{EDGE}:{edge.tls_port}/api/v1/ws")
        try:
            await ws.send_json({"type": "auth", "token": konsulta.token("kela.aino")})
            ready = await ws.receive_json(timeout=10)
            assert ready["type"] == "ready" and ready["user"]["id"] == "kela.aino", ready

            async with https.post(f"{edge.base}/api/v1/consultations/{cid}/claim",
                                  headers=_headers(konsulta, "vantaa.sanna")) as r:
                assert r.status == 200, await r.text()
            async with https.post(f"{edge.base}/api/v1/consultations/{cid}/messages",
                                  headers=_headers(konsulta, "vantaa.sanna"),
                                  json={"text": "Answered through the proxy."}) as r:
                assert r.status == 201, await r.text()
                mid = (await r.json())["id"]
            live = await next_event(ws, "message.created", timeout=10)
            assert live["message"]["id"] == mid
            assert live["message"]["text"] == "Answered through the proxy."
        finally:
            await ws.close()


async def test_audit_records_the_clients_address_not_the_proxys(konsulta: ServerProcess, edge: Nginx) -> None:
    async with _session(edge, CLIENT) as https:
        async with https.post(f"{edge.base}/api/v1/consultations", headers=_headers(konsulta, "kela.aino"),
                              json={**CONSULTATION, "question": "Which address is recorded?"}) as r:
            assert r.status == 201, await r.text()
            proxied = (await r.json())["id"]
    # Around the proxy, from an address Konsulta does not trust: its X-Forwarded-For is ignored.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(OUTSIDER, 0))) as http:
        async with http.post(f"{konsulta.base}/api/v1/consultations", headers=_headers(konsulta, "kela.aino"),
                             json={**CONSULTATION, "question": "And without the proxy?"}) as r:
            assert r.status == 201, await r.text()
            direct = (await r.json())["id"]

    def sources(cid: str) -> set[str]:
        rows = konsulta.query("SELECT source FROM audit_events WHERE consultation_id = ?", cid)
        assert rows, f"no audit record of {cid}"
        return {row[0] for row in rows}

    assert sources(proxied) == {CLIENT}  # not PROXY (nginx's own address), not FORGED
    assert sources(direct) == {OUTSIDER}


async def test_the_access_log_holds_no_query_string(konsulta: ServerProcess, edge: Nginx) -> None:
    """A query string may carry what a user typed (the knowledge base's search words, a filter):
    nginx's access log names the path only (README "Deployment"). The search of one's
    consultations does not rely on this: its words travel in a request body."""
    async with _session(edge, CLIENT) as https, https.get(
            f"{edge.base}/api/v1/consultations?status=open&limit=7&revontulisana=1",
            headers=_headers(konsulta, "kela.aino")) as r:
        assert r.status == 200, await r.text()
    # nginx writes the line in its log phase, just after the answer: wait for it to be there.
    deadline = time.monotonic() + 10
    while "GET /api/v1/consultations HTTP/1.1" not in (logged := edge.access_log.read_text()):
        assert time.monotonic() < deadline, f"no access-log line: {logged!r}"
        await asyncio.sleep(0.05)
    assert "revontulisana" not in logged and "status=" not in logged and "limit=" not in logged
