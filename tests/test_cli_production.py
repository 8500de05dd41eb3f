"""The offline commands run as an operator runs them in production: CONSULT_DEV unset and an
identity provider configured (or none at all), and in development. None of them switches on
development mode behind the operator's back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from consult import app as root
from consult.cli import main
from tests.conftest import ROOT

ISSUER = "https://idp.example.test/realms/konsulta"


def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str) -> None:
    for key in [k for k in os.environ if k.startswith("CONSULT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONSULT_POLICY_DIR", str(ROOT / "policies"))
    if mode == "production":
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps({"keys": []}))
        monkeypatch.setenv("CONSULT_ISSUER", ISSUER)
        monkeypatch.setenv("CONSULT_JWKS", str(jwks))
    elif mode == "development":
        monkeypatch.setenv("CONSULT_DEV", "1")
    monkeypatch.chdir(tmp_path)


COMMANDS = [
    ["init"],
    ["db", "upgrade"],
    ["keys", "status"],
    ["retention", "run"],
    ["retention", "export-client-record", "--org", "vantaa", "--out", "record.jsonl"],
    ["clients", "merge-duplicates", "--dry-run"],
    ["stats", "--org", "kela", "--json"],
    ["audit", "export", "--format", "jsonl", "--output", "audit.jsonl"],
    ["audit", "verify"],
    ["backup", "backup.db"],
    ["policy", "test"],
]


@pytest.mark.parametrize("mode", ["production", "no identity provider", "development"])
def test_offline_commands_run_without_development_mode(mode: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _environment(monkeypatch, tmp_path, mode)
    for argv in COMMANDS:
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, out, err)
        assert os.environ.get("CONSULT_DEV") == ("1" if mode == "development" else None), argv
    assert (tmp_path / "backup.db").is_file() and (tmp_path / "audit.jsonl").is_file()


def test_offline_settings_are_not_development_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch, tmp_path, "production")
    settings = root.offline_settings()
    assert settings.dev is False and settings.effective_issuer == ISSUER
    monkeypatch.delenv("CONSULT_ISSUER")
    monkeypatch.delenv("CONSULT_JWKS")
    assert root.offline_settings().dev is False


def test_the_command_line_never_switches_development_mode_on() -> None:
    source = (ROOT / "consult" / "cli.py").read_text()
    assert 'setdefault("CONSULT_DEV"' not in source and "CONSULT_DEV\"] = " not in source
