"""Configuration: typed, loud on bad values, and never leaks secrets in repr."""

from __future__ import annotations

import pytest

from consult.config import load_settings
from consult.errors import ConfigError


def test_defaults_for_development():
    s = load_settings({"CONSULT_DEV": "1"})
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.audience == "consult" and s.port == 8080


@pytest.mark.parametrize("env,key", [
    ({"CONSULT_DEV": "maybe"}, "CONSULT_DEV"),
    ({"CONSULT_DEV": "1", "CONSULT_PORT": "99999"}, "CONSULT_PORT"),
    ({"CONSULT_DEV": "1", "CONSULT_DATABASE_URL": "mysql://x"}, "CONSULT_DATABASE_URL"),
    ({"CONSULT_JWKS": "/x.json"}, "CONSULT_ISSUER"),
    ({"CONSULT_DEMO": "1"}, "CONSULT_DEMO"),
    ({"CONSULT_DEV": "1", "CONSULT_ORGS": "Kela!"}, "CONSULT_ORGS"),
])
def test_bad_values_name_their_key(env, key):
    with pytest.raises(ConfigError, match=key):
        load_settings(env)


def test_password_is_masked():
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_DATABASE_URL": "postgresql+asyncpg://u:hunter2@db/k"})
    assert "hunter2" not in repr(s) and "***" in repr(s)


def test_toml_file_adds_and_env_wins(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text('port = 9000\naudience = "from-file"\n')
    s = load_settings({"CONSULT_DEV": "1", "CONSULT_CONFIG": str(f), "CONSULT_AUDIENCE": "from-env"})
    assert s.port == 9000 and s.audience == "from-env"
    f.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_CONFIG": str(f)})
