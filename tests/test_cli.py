"""The command line: `consult token` mints what the server trusts; `consult db upgrade` migrates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from consult.auth.dev import DevIssuer
from consult.auth.tokens import TokenVerifier

ROOT = Path(__file__).resolve().parent.parent


def _run(args, env_extra, cwd):
    env = {**os.environ, **env_extra}
    env.pop("CONSULT_DEV", None) if "CONSULT_DEV" not in env_extra else None
    return subprocess.run([sys.executable, "-m", "consult", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_token_is_accepted_by_the_dev_verifier(tmp_path):
    result = _run(["token", "--sub", "kela.aino", "--org", "kela", "--role", "advisor", "--name", "Aino"],
                  {"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 0, result.stderr
    issuer = DevIssuer(tmp_path / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
    principal = TokenVerifier.single([issuer.trusted_key], issuer="konsulta-dev", audience="consult",
                                     orgs=("kela", "vantaa")).verify(
        result.stdout.strip())
    assert (principal.user_id, principal.org, principal.roles) == ("kela.aino", "kela", frozenset({"advisor"}))


def test_token_refuses_without_dev(tmp_path):
    result = _run(["token", "--sub", "x", "--org", "kela", "--role", "advisor"],
                  {"CONSULT_DEV": "0", "CONSULT_DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 2 and "CONSULT_DEV" in result.stderr


def test_db_upgrade(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = _run(["db", "upgrade"], {"CONSULT_DEV": "1", "CONSULT_DATABASE_URL": url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout


def test_bad_config_is_a_clear_usage_error(tmp_path):
    result = _run(["db", "upgrade"], {"CONSULT_DEV": "1", "CONSULT_PORT": "nope"}, tmp_path)
    assert result.returncode == 2 and "CONSULT_PORT" in result.stderr


def test_demo_server_starts_and_answers(tmp_path):
    """The README's first command: `consult serve --demo` serves, prints the address, shuts down on SIGTERM."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_DATA_DIR": str(tmp_path), "CONSULT_KEY_FILE": str(tmp_path / "keys.json"),
                "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
                "CONSULT_POLICY_DIR": str(ROOT / "policies")})
    proc = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--demo", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "demo server did not come up"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/dev/users", timeout=2) as r:
            assert b"kela.aino" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out and "kela.aino" in out
    assert proc.returncode == 0, err


def test_keys_and_retention_commands(tmp_path):
    env = {"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(tmp_path), "CONSULT_KEY_FILE": str(tmp_path / "k" / "keys.json"),
           "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"}
    import json

    assert _run(["init"], env, tmp_path).returncode == 0
    status = _run(["keys", "status"], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["current"] == 1
    rotated = _run(["keys", "rotate"], env, tmp_path)
    assert rotated.returncode == 0 and json.loads(rotated.stdout)["new_version"] == 2
    refused = _run(["keys", "retire", "2"], env, tmp_path)
    assert refused.returncode == 1 and "refused" in refused.stderr
    assert _run(["keys", "retire", "1"], env, tmp_path).returncode == 0
    removed = _run(["keys", "remove", "1"], env, tmp_path)
    assert removed.returncode == 0 and [v["version"] for v in json.loads(removed.stdout)["versions"]] == [2]
    retention = _run(["retention", "run"], env, tmp_path)
    assert retention.returncode == 0 and json.loads(retention.stdout)["shredded"] == 0
    os.chmod(tmp_path / "k" / "keys.json", 0o644)
    too_open = _run(["keys", "status"], env, tmp_path)
    assert too_open.returncode == 2 and "CONSULT_KEY_FILE" in too_open.stderr


def test_settle_heap_freezes_the_start_up_heap_and_collects_young_objects_less_often():
    """What the running server does once it listens: start-up objects leave the collector's
    generations, and the young generation waits for more allocations before a collection."""
    import gc

    from consult.cli import GC_YOUNG_THRESHOLD, settle_heap

    before = gc.get_threshold()
    kept = [[]]  # a container the collector tracks
    assert any(o is kept for o in gc.get_objects())
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
        assert not any(o is kept for o in gc.get_objects())
        assert before[0] < GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
