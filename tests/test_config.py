"""Configuration: typed, loud on bad values, and never leaks secrets in repr."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from consult.config import _ENV_KEYS as ENV_KEYS
from consult.config import Settings, load_settings
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


# -- every field type converts by the field's declared type ---------------------------------------

#: A TOML literal and the value it must arrive as, per declared field type.
SAMPLES: dict[str, tuple[str, object]] = {
    "str": ('"fi-test"', "fi-test"),
    "str | None": ('"fi-test"', "fi-test"),
    "int": ("4242", 4242),
    "float": ("5.5", 5.5),
    "bool": ("true", True),
    "Path": ('"/srv/konsulta/dir"', Path("/srv/konsulta/dir")),
    "Path | None": ('"/srv/konsulta/dir"', Path("/srv/konsulta/dir")),
    "tuple[str, ...]": ('["kela", "oulu"]', ("kela", "oulu")),
}
#: Fields read by their own readers, with their own tests: tables (retention, controllers, issuers,
#: the role map), network lists (trusted proxies) and the record of derived defaults.
TABLES = {"retention", "controllers", "issuers", "role_map", "trusted_proxies", "derived"}


def _env_of(name: str) -> str:
    return next(k for k, n in ENV_KEYS.items() if n == name)


@pytest.mark.parametrize("field", [f for f in fields(Settings) if f.name not in TABLES], ids=lambda f: f.name)
def test_every_setting_round_trips_from_toml_and_the_environment_as_its_type(tmp_path, field):
    """A value arrives with its field's type (``ws_auth_timeout = 5.5`` was the string '5.5')."""
    assert field.type in SAMPLES, f"{field.name}: no conversion tested for {field.type}"
    literal, expected = SAMPLES[field.type]
    f = tmp_path / "k.toml"
    f.write_text(f"{field.name} = {literal}\n")
    value = getattr(load_settings({"CONSULT_CONFIG": str(f)}, check=False), field.name)
    assert value == expected and type(value) is type(expected), (field.name, value)
    if field.name in ENV_KEYS.values():
        env_text = ",".join(expected) if isinstance(expected, tuple) else str(expected).lower() \
            if isinstance(expected, bool) else str(expected)
        value = getattr(load_settings({_env_of(field.name): env_text}, check=False), field.name)
        assert value == expected and type(value) is type(expected), (field.name, value)


def test_a_whole_number_is_a_float_where_a_float_is_wanted(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text("ws_auth_timeout = 5\n")
    value = load_settings({"CONSULT_CONFIG": str(f)}, check=False).ws_auth_timeout
    assert value == 5.0 and type(value) is float


@pytest.mark.parametrize("name,literal", [
    ("ws_auth_timeout", '"fast"'), ("ws_auth_timeout", "nan"), ("ws_auth_timeout", "inf"),
    ("ws_auth_timeout", "-1.0"), ("ws_auth_timeout", "0.0"), ("ws_auth_timeout", "true"),
    ("port", "true"), ("port", "5.5"), ("port", '"\u0663"'), ("port", "[1]"),
    ("dev", "1.0"), ("dev", '"perhaps"'), ("dev", "[true]"),
    ("audience", "[1, 2]"), ("audience", "{ a = 1 }"), ("audience", "true"), ("audience", "5"),
    ("host", '""'), ("key_file", "[1]"), ("orgs", '"Kela!"'), ("orgs", "5"),
])
def test_a_value_of_the_wrong_type_stops_start_up_naming_the_key(tmp_path, name, literal):
    f = tmp_path / "k.toml"
    f.write_text(f"{name} = {literal}\n")
    with pytest.raises(ConfigError, match=name):
        load_settings({"CONSULT_CONFIG": str(f)}, check=False)


@pytest.mark.parametrize("key,text", [
    ("CONSULT_PORT", "\u0663"), ("CONSULT_PORT", "+80"), ("CONSULT_PORT", "8_0"), ("CONSULT_PORT", "80.0"),
    ("CONSULT_MAX_BODY_BYTES", "1e6"), ("CONSULT_DEV", "maybe"),
])
def test_an_environment_value_of_the_wrong_shape_stops_start_up(key, text):
    with pytest.raises(ConfigError, match=key):
        load_settings({key: text}, check=False)


def test_an_empty_value_leaves_a_derived_default_in_place(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text('key_file = ""\n')
    assert load_settings({"CONSULT_CONFIG": str(f)}, check=False).key_file == load_settings({}, check=False).key_file


def test_event_retention_hours_from_env_and_toml(tmp_path):
    assert load_settings({"CONSULT_DEV": "1"}).event_retention_hours == 24
    assert load_settings({"CONSULT_DEV": "1", "CONSULT_EVENT_RETENTION_HOURS": "48"}).event_retention_hours == 48
    f = tmp_path / "k.toml"
    f.write_text("event_retention_hours = 6\n")
    assert load_settings({"CONSULT_DEV": "1", "CONSULT_CONFIG": str(f)}).event_retention_hours == 6
    for bad in ("0", "721", "-1", "1.5", "day"):
        with pytest.raises(ConfigError, match="CONSULT_EVENT_RETENTION_HOURS"):
            load_settings({"CONSULT_DEV": "1", "CONSULT_EVENT_RETENTION_HOURS": bad})
