"""The package as an operator gets it: an sdist built from the source tree, a wheel built from that
sdist, installed into a new virtual environment, and the `consult` console script run from a
working directory that has nothing of the repository in it.

Nothing is downloaded: the build uses this environment's setuptools (no build isolation), the
wheel is installed with ``--no-deps --no-index``, and the new environment finds the dependencies
through a ``.pth`` line naming this environment's site-packages (a path line only: the editable
install of the checkout that lives there is not activated, so ``consult`` comes from the wheel).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tarfile
import threading
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

import consult
from consult.auth.dev import DevIssuer
from tests.conftest import ROOT

NOT_SHIPPED = (".git", ".venv", "node_modules", "var", "build", "dist", "*.egg-info", "__pycache__",
               ".pytest_cache", ".hypothesis", ".import_linter_cache", "_bundled", "screenshots")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def _build(source: Path, hook: str, out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))",
         str(out)], cwd=source, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


class Installed:
    def __init__(self, sdist: Path, wheel: Path, venv: Path) -> None:
        self.sdist, self.wheel, self.venv = sdist, wheel, venv
        self.consult = venv / "bin" / "consult"
        self.python = venv / "bin" / "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    dist = work / "dist"
    sdist = _build(source, "build_sdist", dist)
    with tarfile.open(sdist) as tar:
        tar.extractall(work / "unpacked", filter="data")
    wheel = _build(work / "unpacked" / sdist.name.removesuffix(".tar.gz"), "build_wheel", dist)

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--quiet", "--disable-pip-version-check", "--no-deps", "--no-index", str(wheel)],
                          env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "konsulta-test-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    return Installed(sdist, wheel, venv)


def test_the_wheel_carries_the_policies_the_web_app_and_the_licence(installed: Installed) -> None:
    """The installed package needs no checkout: its policies and web app are inside it."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for policy in (ROOT / "policies").glob("*.toml"):
        assert f"consult/_bundled/policies/{policy.name}" in names
    for page in (ROOT / "web").rglob("*"):
        if page.is_file():
            assert f"consult/_bundled/web/{page.relative_to(ROOT / 'web').as_posix()}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.startswith("consult/migrations/versions/0001") for n in names)
    with tarfile.open(installed.sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"LICENSE", "setup.py", "policies/baseline.toml", "web/index.html", "constraints.txt"} <= members


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Api:
    def __init__(self, base: str, issuer: DevIssuer) -> None:
        self.base, self.issuer = base, issuer

    def call(self, method: str, path: str, user: tuple[str, str, str], body: Any = None) -> tuple[int, Any]:
        sub, org, role = user
        token = self.issuer.mint(sub=sub, org=org, roles=[role], name=sub)
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def test_the_installed_service_runs_from_any_directory(installed: Installed, tmp_path: Path) -> None:
    """`consult init`, `consult db upgrade` and `consult serve` of the installed package, run from an
    unrelated working directory with only CONSULT_DATA_DIR set, keep everything in the data
    directory, serve the web app and the API, and carry a consultation from question to close."""
    elsewhere, data = tmp_path / "elsewhere", tmp_path / "data"
    elsewhere.mkdir()
    env = _clean_env(CONSULT_DATA_DIR=str(data), CONSULT_DEV="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed.consult), *args], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300)

    where = subprocess.run([str(installed.python), "-c", "import consult; print(consult.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed.venv)), where
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"konsulta {consult.__version__}"

    check = run("config", "check")
    assert check.returncode == 0, check.stderr
    assert f"CONSULT_DATA_DIR={data}\n" in check.stdout
    assert f"CONSULT_POLICY_DIR={installed.venv}" in check.stdout
    assert f"CONSULT_WEB_DIR={installed.venv}" in check.stdout

    init = run("init")
    assert init.returncode == 0, init.stderr
    created = json.loads(init.stdout)
    assert created["data_dir"] == str(data) and created["database"] == str(data / "konsulta.db")
    assert created["key_file"]["path"] == str(data / "keys.json") and created["key_file"]["created"]
    assert created["audit_key_file"]["path"] == str(data / "audit-signing.key")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    upgrade = run("db", "upgrade")
    assert upgrade.returncode == 0 and upgrade.stdout.startswith("database at revision"), upgrade.stderr
    assert list(elsewhere.iterdir()) == []

    port = _free_port()
    lines: queue.Queue[str] = queue.Queue()
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen([str(installed.consult), "serve", "--port", str(port)], cwd=elsewhere, env=env,
                                  stdout=subprocess.PIPE, stderr=log, text=True)
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        printed = []
        while not printed or not printed[-1].startswith("Konsulta is running"):
            try:
                printed.append(lines.get(timeout=120))
            except queue.Empty:
                pytest.fail(f"no 'running' line; printed {printed}; log {(tmp_path / 'serve.log').read_text()[-3000:]}")
        base = f"http://127.0.0.1:{port}"
        assert printed[-1].strip() == f"Konsulta is running: open {base}/"
        # Announced only once it listens: the first request, made at once, is answered.
        status, page = _get(f"{base}/")
        assert status == 200 and b"<html" in page.lower()
        status, document = _get(f"{base}/api/v1/openapi.json")
        assert status == 200 and "paths" in json.loads(document)
        shown = "".join(printed)
        for path in ("konsulta.db", "keys.json", "audit-signing.key", "audit-checkpoints.jsonl"):
            assert str(data / path) in shown
        assert f"policies: {installed.venv}" in shown and f"web app: {installed.venv}" in shown

        api = Api(base, DevIssuer(data / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult"))
        admin_kela, admin_vantaa = ("kela.admin", "kela", "admin"), ("vantaa.admin", "vantaa", "admin")
        advisor, expert = ("kela.aino", "kela", "advisor"), ("vantaa.sanna", "vantaa", "expert")
        status, _ = api.call("POST", "/api/v1/agreements", admin_kela, {
            "reference": "Install test agreement", "parties": ["kela", "vantaa"], "valid_from": "2020-01-01T00:00:00Z"})
        assert status == 201
        # A pool is created before experts are named to it (a typo never makes a new, empty pool).
        status, _ = api.call("PUT", "/api/v1/pools/vantaa/toimeentulotuki", admin_vantaa, {"max_open_per_expert": 0})
        assert status == 200
        status, _ = api.call("PUT", "/api/v1/experts/vantaa.sanna", admin_vantaa,
                             {"name": "Sanna", "pools": ["toimeentulotuki"], "on_duty": True})
        assert status == 200
        status, asked = api.call("POST", "/api/v1/consultations", advisor, {
            "topic": "application_intake", "urgency": "normal", "question": "Is the rent attachment enough?",
            "purpose": "general", "target_org": "vantaa", "pool": "toimeentulotuki"})
        assert status == 201 and asked["offered_to"] == 1, asked
        cid = asked["id"]
        status, claimed = api.call("POST", f"/api/v1/consultations/{cid}/claim", expert)
        assert status == 200 and claimed["claimed_by"] == "vantaa.sanna"
        status, _ = api.call("POST", f"/api/v1/consultations/{cid}/messages", expert, {"text": "It is enough."})
        assert status == 201
        status, history = api.call("GET", f"/api/v1/consultations/{cid}/messages", advisor)
        assert status == 200 and [m["text"] for m in history["items"]] == ["It is enough."]
        status, closed = api.call("POST", f"/api/v1/consultations/{cid}/close", advisor, {"outcome": "advice_given"})
        assert status == 200 and closed["status"] == "closed"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    assert server.returncode == 0
    assert list(elsewhere.iterdir()) == []
    assert (data / "konsulta.db").is_file() and (data / "audit-checkpoints.jsonl").is_file()
