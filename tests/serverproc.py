"""A real `consult serve` in a subprocess on a real SQLite file, and `consult ...` commands beside it:
for tests of what happens between processes (locks, SIGKILL, backups)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from consult.auth.dev import DEMO_USERS, DevIssuer
from tests.conftest import ROOT


class ServerProcess:
    """`consult serve --demo` on ``tmp/<name>``; every command and restart uses the same settings."""

    def __init__(self, tmp: Path, name: str = "konsulta.db", **env: str) -> None:
        self.tmp = tmp
        self.db_path = tmp / name
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        self.env.update({"CONSULT_DATA_DIR": str(tmp), "CONSULT_KEY_FILE": str(tmp / "keys.json"),
                         "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
                         "CONSULT_POLICY_DIR": str(ROOT / "policies"), "PYTHONPATH": str(ROOT), **env})
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    # -- the server -----------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # The log goes to a file: a pipe nobody reads fills up and blocks the server mid-request.
        with (self.tmp / "server.log").open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consult", "serve", "--demo", "--port", str(self.port)],
                cwd=self.tmp, env=self.env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.tmp / 'server.log').read_text()[-4000:]}")
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or checkpointed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- HTTP -----------------------------------------------------------------------------------

    def token(self, user_id: str) -> str:
        issuer = DevIssuer(self.tmp / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
        return issuer.mint_for(next(u for u in DEMO_USERS if u.user_id == user_id))

    def call(self, method: str, path: str, user: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def consultation(self, question: str = "Is the rent attachment enough?", user: str = "kela.aino") -> str:
        """Open a consultation; return its id once the server acknowledged it (201)."""
        status, body = self.call("POST", "/api/v1/consultations", user, {
            "topic": "application_intake", "urgency": "normal", "question": question,
            "purpose": "general", "target_org": "vantaa"})
        assert status == 201, (status, body)
        return str(body["id"])

    # -- the command line and the file ----------------------------------------------------------

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "consult", *args], cwd=self.tmp, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the file from this (other) process, as the `sqlite3` shell would."""
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return list(conn.execute(sql, params))
        finally:
            conn.close()


class BackgroundWriter:
    """Acknowledged writes from a thread while a command runs beside the server."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.acked: list[str] = []
        self.failures: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = self.server.call("POST", "/api/v1/consultations", "kela.aino", {
                "topic": "application_intake", "urgency": "normal", "question": "Written during a command",
                "purpose": "general", "target_org": "vantaa"})
            if status == 201:
                self.acked.append(body["id"])
            else:
                self.failures.append(status)

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
