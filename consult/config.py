"""Configuration from the environment (SPEC §4), optionally extended by a TOML file.

Every value is typed and checked at start-up; a bad one stops the service naming its key.
Configuration is never logged; the database URL's password is masked in ``repr``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from consult.errors import ConfigError
from consult.model import identifiers
from consult.model.retention import CONSULTATION_CLOSED, RetentionSchedule
from consult.model.vocabulary import DEFAULT_TOPICS

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class Controller:
    """A controller (rekisterinpitäjä) as a client's consent receipt names it: its name in
    Finnish, Swedish and English, and where the client reaches it and its data protection officer."""

    name: Mapping[str, str]
    address: str
    phone: str
    privacy_contact: str
    web: str


#: Demo values: the public contact details of Kela and of the Vantaa and Kerava wellbeing
#: services county (org id ``vantaa``), as their privacy notices give them. A deployment sets its
#: own in the TOML file of ``CONSULT_CONFIG`` under ``[controllers.<org>]``.
DEMO_CONTROLLERS: Mapping[str, Controller] = MappingProxyType({
    "kela": Controller(
        name=MappingProxyType({"fi": "Kansaneläkelaitos (Kela)", "sv": "Folkpensionsanstalten (FPA)",
                               "en": "The Social Insurance Institution of Finland (Kela)"}),
        address="PL 450, 00056 KELA", phone="020 634 11", privacy_contact="tietosuoja@kela.fi",
        web="www.kela.fi"),
    "vantaa": Controller(
        name=MappingProxyType({"fi": "Vantaan ja Keravan hyvinvointialue",
                               "sv": "Vanda och Kervo välfärdsområde",
                               "en": "The wellbeing services county of Vantaa and Kerava"}),
        address="PL 1000, 01088 Vantaan ja Keravan hyvinvointialue", phone="09 419 191",
        privacy_contact="tietosuojavastaava@vakehyva.fi", web="vakehyva.fi"),
})
_CONTROLLER_TEXT = ("address", "phone", "privacy_contact", "web")
#: A consent's validity may not exceed this many days (``CONSULT_CONSENT_MAX_DAYS``); see
#: README "Consents" for why one year is the default.
CONSENT_MAX_DAYS = 365
CONSENT_MAX_DAYS_LIMIT = 3650


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default="sqlite+aiosqlite:///var/konsulta.db", repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    key_file: Path = Path("var/keys.json")
    policy_dir: Path = Path("policies")
    policy_profile: str = "today"
    jwks: str | None = None
    issuer: str | None = None
    audience: str = "consult"
    dev: bool = False
    demo: bool = False
    data_dir: Path = Path("var")
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    web_dir: Path | None = None
    oidc_authority: str | None = None
    oidc_client_id: str | None = None
    oidc_scope: str = "openid profile"
    ws_auth_timeout: float = 10.0
    auth_failures_per_minute: int = 60
    retention_days: int = 730
    retention_interval_hours: int = 24
    retention: RetentionSchedule = field(default_factory=RetentionSchedule)
    audit_key_file: Path | None = None
    deployment: str = "local"
    audit_checkpoint_seconds: int = 30
    checkpoint_file: Path | None = None
    witness_url: str | None = field(default=None, repr=False)
    audit_clients_per_hour: int = 30
    audit_office_hours: str = "07-18"
    audit_office_days: str = "1-5"
    orgs: tuple[str, ...] = ("kela", "vantaa")
    topics: tuple[str, ...] = DEFAULT_TOPICS
    consent_max_days: int = CONSENT_MAX_DAYS
    # Statutory contacts go at once to an intake pool of social workers in the receiving county:
    # sosiaalihuoltolaki 1301/2014 35 § contacts to referral_pool, lastensuojelulaki 417/2007
    # 25 § notifications to child_welfare_pool. "Viipymättä" (without delay) is a service level
    # of its own: an unclaimed contact is offered again, or escalated, after this many seconds.
    referral_pool: str = "social_work_intake"
    child_welfare_pool: str = "child_welfare_intake"
    referral_sla_seconds: int = 120
    controllers: Mapping[str, Controller] = field(default_factory=lambda: DEMO_CONTROLLERS)

    def __repr__(self) -> str:  # never print secrets
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr and f.name != "database_url"
        )
        return f"Settings(database_url={_mask_url(self.database_url)!r}, {shown})"

    @property
    def retention_schedule(self) -> RetentionSchedule:
        """The ``[retention]`` table, with CONSULT_RETENTION_DAYS for closed consultations unless the
        table names them."""
        if CONSULTATION_CLOSED in self.retention.days:
            return self.retention
        return self.retention.with_days(CONSULTATION_CLOSED, self.retention_days)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_issuer(self) -> str:
        return self.issuer or DEV_ISSUER

    @property
    def effective_audit_key_file(self) -> Path:
        """The audit log's Ed25519 key: beside the key-encryption keys unless named."""
        return self.audit_key_file or self.key_file.parent / "audit-signing.key"

    @property
    def effective_checkpoint_file(self) -> Path:
        """The audit log's external checkpoints: in the data directory unless named."""
        return self.checkpoint_file or self.data_dir / "audit-checkpoints.jsonl"

    @property
    def audit_origin(self) -> str:
        """The checkpoint origin line and note key name, e.g. ``konsulta.local/audit``."""
        return f"konsulta.{self.deployment}/audit"

    @property
    def intake_pools(self) -> dict[str, str]:
        """Statutory purpose -> its intake pool (``consult.model.intake``)."""
        return {"sh.referral": self.referral_pool, "ls.notification": self.child_welfare_pool}

    @property
    def office_hours(self) -> tuple[int, int]:
        start, _, end = self.audit_office_hours.partition("-")
        return int(start), int(end)

    @property
    def office_days(self) -> tuple[int, int]:
        first, _, last = self.audit_office_days.partition("-")
        return int(first), int(last)

    @property
    def dev_key_file(self) -> Path:
        return self.data_dir / "dev-issuer-key.pem"

    def with_overrides(self, **values: object) -> Settings:
        return replace(self, **values)  # type: ignore[arg-type]


DEV_ISSUER = "konsulta-dev"

_ENV_KEYS: dict[str, str] = {
    "CONSULT_DATABASE_URL": "database_url",
    "CONSULT_HOST": "host",
    "CONSULT_PORT": "port",
    "CONSULT_KEY_FILE": "key_file",
    "CONSULT_POLICY_DIR": "policy_dir",
    "CONSULT_POLICY_PROFILE": "policy_profile",
    "CONSULT_JWKS": "jwks",
    "CONSULT_ISSUER": "issuer",
    "CONSULT_AUDIENCE": "audience",
    "CONSULT_DEV": "dev",
    "CONSULT_DEMO": "demo",
    "CONSULT_DATA_DIR": "data_dir",
    "CONSULT_MAX_BODY_BYTES": "max_body_bytes",
    "CONSULT_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "CONSULT_WEB_DIR": "web_dir",
    "CONSULT_OIDC_AUTHORITY": "oidc_authority",
    "CONSULT_OIDC_CLIENT_ID": "oidc_client_id",
    "CONSULT_OIDC_SCOPE": "oidc_scope",
    "CONSULT_AUTH_FAILURES_PER_MINUTE": "auth_failures_per_minute",
    "CONSULT_RETENTION_DAYS": "retention_days",
    "CONSULT_RETENTION_INTERVAL_HOURS": "retention_interval_hours",
    "CONSULT_AUDIT_KEY_FILE": "audit_key_file",
    "CONSULT_DEPLOYMENT": "deployment",
    "CONSULT_AUDIT_CHECKPOINT_SECONDS": "audit_checkpoint_seconds",
    "CONSULT_CHECKPOINT_FILE": "checkpoint_file",
    "CONSULT_WITNESS_URL": "witness_url",
    "CONSULT_AUDIT_CLIENTS_PER_HOUR": "audit_clients_per_hour",
    "CONSULT_AUDIT_OFFICE_HOURS": "audit_office_hours",
    "CONSULT_AUDIT_OFFICE_DAYS": "audit_office_days",
    "CONSULT_ORGS": "orgs",
    "CONSULT_TOPICS": "topics",
    "CONSULT_CONSENT_MAX_DAYS": "consent_max_days",
    "CONSULT_REFERRAL_POOL": "referral_pool",
    "CONSULT_CHILD_WELFARE_POOL": "child_welfare_pool",
    "CONSULT_REFERRAL_SLA_SECONDS": "referral_sla_seconds",
}
_NAME = identifiers.ORG  # organisation ids and pool names (consult/model/identifiers.py)
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _controllers(key: str, raw: object) -> Mapping[str, Controller]:
    """``[controllers.<org>]`` tables: name_fi, name_sv, name_en, address, phone,
    privacy_contact, web; organisations not named keep their demo values."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{key} must be a table of organisations")
    result = dict(DEMO_CONTROLLERS)
    wanted = {"name_fi", "name_sv", "name_en", *_CONTROLLER_TEXT}
    for org, spec in raw.items():
        if not _NAME.match(str(org)) or not isinstance(spec, dict):
            raise ConfigError(f"{key}.{org} must be a table for a lowercase organisation id")
        if set(spec) != wanted or not all(isinstance(v, str) and v.strip() and "\n" not in v
                                          for v in spec.values()):
            raise ConfigError(f"{key}.{org} needs exactly these one-line texts: {', '.join(sorted(wanted))}")
        result[org] = Controller(
            name=MappingProxyType({lang: spec[f"name_{lang}"] for lang in ("fi", "sv", "en")}),
            **{k: spec[k] for k in _CONTROLLER_TEXT})
    return MappingProxyType(result)


def _convert(key: str, name: str, raw: object) -> object:
    if name == "controllers":
        return _controllers(key, raw)
    kind = {f.name: f.type for f in fields(Settings)}[name]
    text = str(raw).strip() if not isinstance(raw, bool | int) else raw
    if kind == "bool":
        if isinstance(text, bool):
            return text
        lowered = str(text).lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{key} must be a boolean (1/0, true/false)")
    if kind == "int":
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer") from None
        if value <= 0 or (name == "port" and value > 65535):
            raise ConfigError(f"{key} is out of range")
        return value
    if kind == "tuple[str, ...]":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        names = tuple(str(i).strip() for i in items if str(i).strip())
        if not names or not all(_NAME.match(n) for n in names):
            raise ConfigError(f"{key} must be a comma-separated list of lowercase names")
        return names
    if kind in ("Path", "Path | None"):
        return Path(str(text)) if str(text) else None
    return str(text) or None


def _oidc_authority_ok(url: str) -> bool:
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local)) \
        and not parts.query and not parts.fragment and not parts.username


def _witness_url_ok(url: str) -> bool:
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local)) \
        and not parts.fragment


def load_settings(env: Mapping[str, str] | None = None, *, check: bool = True) -> Settings:
    """Build settings from ``CONSULT_CONFIG`` (TOML, optional) and then the environment.

    ``check=False`` leaves validation to the caller, who may still apply overrides (CLI flags).
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    config_file = env.get("CONSULT_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"CONSULT_CONFIG: cannot read {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"CONSULT_CONFIG: {config_file} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(Settings)}
        for name, raw in data.items():
            if name not in known:
                raise ConfigError(f"CONSULT_CONFIG: unknown setting {name!r} in {config_file}")
            if name == "retention":
                try:
                    values[name] = RetentionSchedule.parse(raw, f"{config_file}:[retention]")
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                continue
            values[name] = _convert(f"{config_file}:{name}", name, raw)
    for key, name in _ENV_KEYS.items():
        if key in env:
            values[name] = _convert(key, name, env[key])
    settings = Settings(**values)  # type: ignore[arg-type]
    return validate(settings) if check else settings


def validate_database_url(settings: Settings) -> Settings:
    """The one check commands that only touch the database need (``consult db upgrade``)."""
    url = settings.database_url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError(
            "CONSULT_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return settings


def validate(settings: Settings) -> Settings:
    validate_database_url(settings)
    if not _PROFILE.match(settings.policy_profile or ""):
        raise ConfigError("CONSULT_POLICY_PROFILE must be a policy profile name such as today "
                          "or experiment-2015")
    if settings.demo and not settings.dev:
        raise ConfigError("CONSULT_DEMO needs CONSULT_DEV=1: demo data is for development only")
    if bool(settings.oidc_authority) != bool(settings.oidc_client_id):
        raise ConfigError("CONSULT_OIDC_AUTHORITY and CONSULT_OIDC_CLIENT_ID must be set together")
    if settings.oidc_authority and not _oidc_authority_ok(settings.oidc_authority):
        raise ConfigError("CONSULT_OIDC_AUTHORITY must be an https:// URL (http:// only on localhost)")
    if not settings.dev and not settings.jwks:
        raise ConfigError(
            "CONSULT_JWKS is required (a JWKS file path or URL of the identity provider); "
            "for a local demo set CONSULT_DEV=1 or run `consult serve --demo`"
        )
    if not settings.dev and not settings.issuer:
        raise ConfigError("CONSULT_ISSUER is required unless CONSULT_DEV=1")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,62}", settings.deployment or ""):
        raise ConfigError("CONSULT_DEPLOYMENT must be a lowercase name (letters, digits, '.', '-')")
    if settings.witness_url and not _witness_url_ok(settings.witness_url):
        raise ConfigError("CONSULT_WITNESS_URL must be an https:// URL (http:// only on localhost)")
    if not _range(settings.audit_office_hours, 0, 24):
        raise ConfigError("CONSULT_AUDIT_OFFICE_HOURS must be two hours START-END, e.g. 07-18")
    unnamed = [org for org in settings.orgs if org not in settings.controllers]
    if unnamed:
        raise ConfigError(f"CONSULT_ORGS: {', '.join(unnamed)} need controller details for consent receipts "
                          f"([controllers.<org>] in the CONSULT_CONFIG file)")
    for key, pool in (("CONSULT_REFERRAL_POOL", settings.referral_pool),
                      ("CONSULT_CHILD_WELFARE_POOL", settings.child_welfare_pool)):
        if not _NAME.match(pool or ""):
            raise ConfigError(f"{key} must be a lowercase pool name")
    if settings.referral_pool == settings.child_welfare_pool:
        raise ConfigError("CONSULT_REFERRAL_POOL and CONSULT_CHILD_WELFARE_POOL must be different pools: "
                          "a child-welfare notification reaches only the child-welfare intake")
    if not 0 < settings.consent_max_days <= CONSENT_MAX_DAYS_LIMIT:
        raise ConfigError(f"CONSULT_CONSENT_MAX_DAYS must be 1..{CONSENT_MAX_DAYS_LIMIT} days")
    if not _range(settings.audit_office_days, 1, 7):
        raise ConfigError("CONSULT_AUDIT_OFFICE_DAYS must be two ISO weekdays FIRST-LAST, e.g. 1-5")
    return settings


def _range(text: str, low: int, high: int) -> bool:
    match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text or "")
    return bool(match) and low <= int(match[1]) < int(match[2]) <= high
