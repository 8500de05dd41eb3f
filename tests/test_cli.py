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
    principal = TokenVerifier([issuer.trusted_key], issuer="konsulta-dev", audience="consult").verify(
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
