"""A server killed with SIGKILL under load (the security floor, docs/capabilities.md): no
acknowledged act is missing its audit record, no record exists without its act, the log
verifies, and it still verifies after a restart and a graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from consult.auth.dev import DEMO_USERS, DevIssuer
from tests.conftest import ROOT


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_DATA_DIR": str(tmp), "CONSULT_KEY_FILE": str(tmp / "keys.json"),
                "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'crash.db'}",
                "CONSULT_POLICY_DIR": str(ROOT / "policies"), "CONSULT_AUDIT_CHECKPOINT_SECONDS": "1"})
    return env


def _start(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--demo", "--port", str(port)],
                            cwd=tmp, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


def _verify(tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consult", "audit", "verify"], cwd=tmp, env=_env(tmp),
                          capture_output=True, text=True, timeout=120)


async def _load(port: int, token: str, acked: list[str], stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"topic": "application_intake", "urgency": "normal", "question": "Is the attachment enough?",
            "purpose": "general", "target_org": "vantaa"}
    async with aiohttp.ClientSession() as session:
        async def sender() -> None:
            while not stop.is_set():
                try:
                    async with session.post(f"http://127.0.0.1:{port}/api/v1/consultations", json=body,
                                            headers=headers) as r:
                        if r.status == 201:
                            acked.append((await r.json())["id"])
                except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                    return  # the server is gone

        await asyncio.gather(*(sender() for _ in range(16)))


async def test_sigkill_under_load_leaves_log_and_data_consistent(tmp_path):
    proc, port = _start(tmp_path)
    issuer = DevIssuer(tmp_path / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
    token = issuer.mint_for(next(u for u in DEMO_USERS if u.user_id == "kela.aino"))
    acked: list[str] = []
    stop = asyncio.Event()
    load = asyncio.create_task(_load(port, token, acked, stop))
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 150 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(acked) >= 20, "the server took no load"
        proc.send_signal(signal.SIGKILL)  # in the middle of writes
        proc.wait(timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(load, 30)

    result = _verify(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    con = sqlite3.connect(tmp_path / "crash.db")
    stored = {r[0] for r in con.execute("SELECT id FROM consultations")}
    recorded = {r[0] for r in con.execute(
        "SELECT consultation_id FROM audit_events WHERE action = 'consultation.create'")}
    indices = [r[0] for r in con.execute("SELECT leaf_index FROM audit_events ORDER BY leaf_index")]
    con.close()
    assert set(acked) <= stored  # every acknowledged act survived ...
    assert stored == recorded  # ... with its record, and no record without its act
    assert indices == list(range(len(indices)))

    # Restart, write a little, stop gracefully: the shutdown signs a checkpoint over everything.
    proc, port = _start(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/api/v1/consultations",
                                   headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    result = _verify(tmp_path)
    assert result.returncode == 0 and "intact" in result.stdout, result.stdout + result.stderr
