"""One data directory anchors every default path, and nothing depends on the working directory:
a service started from another directory (systemd's default is ``/``) finds the same database, keys
and checkpoints, and the policies and web app that ship with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from consult.config import Settings, load_settings


def test_every_default_file_lies_in_the_data_directory(tmp_path: Path) -> None:
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(tmp_path / "data")})
    data = tmp_path / "data"
    assert s.data_dir == data
    assert s.database_url == f"sqlite+aiosqlite:///{data / 'konsulta.db'}"
    assert s.key_file == data / "keys.json"
    assert s.effective_audit_key_file == data / "audit-signing.key"
    assert s.effective_checkpoint_file == data / "audit-checkpoints.jsonl"
    assert s.dev_key_file == data / "dev-issuer-key.pem"


def test_the_working_directory_only_resolves_relative_settings_once(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative values are made absolute at load time; the defaults never move with a later chdir."""
    monkeypatch.chdir(tmp_path)
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_DATA_DIR": "state", "CONSULT_KEY_FILE": "secret/keys.json"})
    named = load_settings({"CONSULT_DEV": "1", "CONSULT_DATABASE_URL": "sqlite+aiosqlite:///db/k.db?cache=shared"})
    monkeypatch.chdir("/")
    assert named.database_url == f"sqlite+aiosqlite:///{tmp_path}/db/k.db?cache=shared"
    assert s.data_dir == tmp_path / "state" and s.key_file == tmp_path / "secret" / "keys.json"
    assert s.database_url.endswith(f"{tmp_path}/state/konsulta.db")
    # A key file set on its own keeps the audit key beside it, as before.
    assert s.effective_audit_key_file == tmp_path / "secret" / "audit-signing.key"
    assert s.effective_checkpoint_file == tmp_path / "state" / "audit-checkpoints.jsonl"


def test_explicit_paths_win_over_the_data_directory(tmp_path: Path) -> None:
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(tmp_path),
                       "CONSULT_DATABASE_URL": "postgresql+asyncpg://db/k",
                       "CONSULT_CHECKPOINT_FILE": str(tmp_path / "elsewhere.jsonl")})
    assert s.database_url == "postgresql+asyncpg://db/k"
    assert s.effective_checkpoint_file == tmp_path / "elsewhere.jsonl"
    assert s.key_file == tmp_path / "keys.json"


def test_an_override_of_the_data_directory_moves_only_the_defaults(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "a", key_file=tmp_path / "kept.json").with_overrides(data_dir=tmp_path / "b")
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'b' / 'konsulta.db'}"
    assert s.key_file == tmp_path / "kept.json"


def test_the_policies_and_web_app_that_ship_are_found_from_any_directory(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({"CONSULT_DEV": "1"})
    assert s.policy_dir.is_absolute() and (s.policy_dir / "baseline.toml").is_file()
    assert s.web_dir.is_absolute() and (s.web_dir / "index.html").is_file()


def test_the_policy_and_web_directories_can_be_overridden(tmp_path: Path) -> None:
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_POLICY_DIR": str(tmp_path / "p"),
                       "CONSULT_WEB_DIR": str(tmp_path / "w")})
    assert (s.policy_dir, s.web_dir) == (tmp_path / "p", tmp_path / "w")


def test_derived_is_no_setting_of_the_toml_file(tmp_path: Path) -> None:
    from consult.errors import ConfigError

    (tmp_path / "c.toml").write_text('derived = ["database_url"]\n')
    with pytest.raises(ConfigError, match="unknown setting 'derived'"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_CONFIG": str(tmp_path / "c.toml")})
