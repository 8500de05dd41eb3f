"""The operator's commands around `consult serve`: `--version`, `config check`, and a start-up
that says it is running only once it listens, and one clear line when the port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import consult
from consult.cli import main
from tests.conftest import ROOT


def _consult(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    return subprocess.run([sys.executable, "-m", "consult", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**base, "PYTHONPATH": str(ROOT), **env})


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"konsulta {consult.__version__}"


def test_version_is_the_packages(tmp_path: Path) -> None:
    from importlib.metadata import version

    assert consult.__version__ == version("konsulta")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("CONSULT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CONSULT_DEV", "1")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_check_prints_the_effective_configuration(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    out, err = capsys.readouterr()
    lines = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("CONSULT_"))
    assert lines["CONSULT_DATA_DIR"] == str(env / "data")
    assert lines["CONSULT_DATABASE_URL"] == f"sqlite+aiosqlite:///{env / 'data' / 'konsulta.db'}"
    assert lines["CONSULT_KEY_FILE"] == str(env / "data" / "keys.json")
    assert lines["CONSULT_AUDIT_KEY_FILE"] == str(env / "data" / "audit-signing.key")
    assert lines["CONSULT_DEV"] == "1" and lines["CONSULT_JWKS"] == ""
    assert (Path(lines["CONSULT_POLICY_DIR"]) / "baseline.toml").is_file()
    assert err.strip().endswith("0 problem(s)")
    assert not (env / "data").exists()  # checking creates nothing


def test_config_check_masks_secrets(env: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The database password and a token in the witness URL's query never reach the output."""
    monkeypatch.setenv("CONSULT_DATABASE_URL", "postgresql+asyncpg://konsulta:hunter2@db.internal/konsulta")
    monkeypatch.setenv("CONSULT_WITNESS_URL", "https://witness.example/add?token=s3cr3t")
    main(["config", "check"])
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err and "s3cr3t" not in out + err
    assert "CONSULT_DATABASE_URL=postgresql+asyncpg://konsulta:***@db.internal/konsulta\n" in out
    assert "CONSULT_WITNESS_URL=https://witness.example/add?***\n" in out


@pytest.mark.parametrize("setting,value,named", [
    ("CONSULT_DEV", "0", "CONSULT_JWKS"),
    ("CONSULT_POLICY_DIR", "{tmp}/empty", "CONSULT_POLICY_DIR"),
    ("CONSULT_WEB_DIR", "{tmp}/empty", "CONSULT_WEB_DIR"),
    ("CONSULT_DATA_DIR", "{tmp}/a-file/data", "CONSULT_DATA_DIR"),
    ("CONSULT_POLICY_PROFILE", "tomorrow", "CONSULT_POLICY"),
])
def test_config_check_fails_on_each_problem(env: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], setting: str, value: str,
                                            named: str) -> None:
    (env / "empty").mkdir()
    (env / "a-file").write_text("not a directory")
    monkeypatch.setenv(setting, value.format(tmp=env))
    assert main(["config", "check"]) == 1
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if line.startswith("problem: ")]
    assert problems and all(named in p for p in problems), err


def test_a_port_another_process_holds_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Tested end to end on the installed package (tests/test_install.py); here, that a port another
    process holds is one line, exit 2, before anything was opened or created."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _consult("serve", "--port", str(port), cwd=tmp_path, CONSULT_DEV="1",
                        CONSULT_DATA_DIR=str(tmp_path / "data"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"configuration error: cannot listen on 127.0.0.1:{port}: the address is already in use by another "
        "process (stop it, or choose another --port / CONSULT_PORT)"]
    assert "Konsulta is running" not in done.stdout
    assert not (tmp_path / "data").exists()


async def test_init_brings_an_empty_postgresql_database_to_the_head(tmp_path: Path) -> None:
    """`consult init` on a database server's new, empty database: schema at the head, then keys; a
    second run is refused and changes nothing."""
    import asyncio
    import uuid

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.storage import migrate
    from tests.test_storage import PG_URL, _pg_available

    if not await _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    name = f"konsulta_init_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = {"CONSULT_DATA_DIR": str(tmp_path / "data"), "CONSULT_DATABASE_URL": url}
        first = await asyncio.to_thread(_consult, "init", cwd=tmp_path, **env)
        assert first.returncode == 0, first.stderr
        assert await asyncio.to_thread(migrate.current, url) == migrate.head()
        assert (tmp_path / "data" / "keys.json").is_file()
        again = await asyncio.to_thread(_consult, "init", cwd=tmp_path, **env)
        assert again.returncode == 1 and again.stderr.startswith("refused: this database already has its keys")
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


def test_config_check_of_an_unreadable_value_is_exit_2(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONSULT_PORT", "eighty")
    assert main(["config", "check"]) == 2
    assert capsys.readouterr().err == "configuration error: CONSULT_PORT must be an integer\n"


def test_config_check_names_a_missing_jwks_file(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONSULT_DEV", "0")
    monkeypatch.setenv("CONSULT_ISSUER", "https://idp.example")
    monkeypatch.setenv("CONSULT_JWKS", str(env / "missing-jwks.json"))
    assert main(["config", "check"]) == 1
    assert f"problem: CONSULT_JWKS: {env / 'missing-jwks.json'} is not a file\n" in capsys.readouterr().err


def test_config_check_names_a_missing_jwks_file_of_a_configured_issuer(
        env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = env / "konsulta.toml"
    config.write_text(
        '[[issuers]]\nissuer = "https://idp.example/realms/kela"\njwks = "https://idp.example/certs"\n'
        'orgs = ["kela"]\n\n'
        f'[[issuers]]\nissuer = "https://idp.example/realms/vantaa"\njwks = "{env / "gone.json"}"\n'
        'orgs = ["vantaa"]\n', encoding="utf-8")
    monkeypatch.setenv("CONSULT_DEV", "0")
    monkeypatch.setenv("CONSULT_CONFIG", str(config))
    assert main(["config", "check"]) == 1
    err = capsys.readouterr().err
    assert f"problem: CONSULT_CONFIG: issuers[1].jwks: {env / 'gone.json'} is not a file\n" in err
    assert "issuers[0]" not in err
