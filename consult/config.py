"""Configuration from the environment (the run contract, docs/capabilities.md), optionally extended by a TOML file.

Every value is typed and checked at start-up; a bad one stops the service naming its key.
Configuration is never logged; the database URL's password is masked in ``repr``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from consult.errors import ConfigError
from consult.model import identifiers
from consult.model.retention import CONSULTATION_CLOSED, RetentionSchedule
from consult.model.vocabulary import DEFAULT_TOPICS, ROLES

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
#: How often each identity provider's JWKS is fetched again (``CONSULT_JWKS_REFRESH_MINUTES``):
#: a key the provider removed is no longer trusted after at most this long.
JWKS_REFRESH_MINUTES = 10
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class IdentityProvider:
    """One trusted token issuer: where its signing keys are, the organisations its tokens may
    name, and which of its claims carry the organisation and the roles.

    ``org_claim`` empty means the issuer serves exactly one organisation (``orgs``) and its tokens
    need not name it (a Microsoft Entra ID tenant). ``roles_claim`` may be a dotted path into the
    claims (``realm_access.roles``). ``role_map`` turns the provider's role names into Konsulta's;
    when it is empty the provider's names are Konsulta's own (``advisor``, ``expert``, ...).
    """

    issuer: str
    jwks: str
    audience: str
    orgs: tuple[str, ...]
    org_claim: str = "org"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _absolute_sqlite_url(url: str) -> str:
    """An SQLite URL naming a relative file, made absolute (``sqlite+aiosqlite:///var/k.db`` ->
    ``sqlite+aiosqlite:////srv/app/var/k.db``); any other URL as it is."""
    scheme, sep, rest = url.partition(":///")
    if not (sep and scheme.startswith("sqlite")) or rest.startswith("/") or rest.split("?")[0] in ("", ":memory:"):
        return url
    return f"{scheme}:///{Path(rest).absolute()}"


#: File names in the data directory (``CONSULT_DATA_DIR``) of the settings that default to it.
DATABASE_FILE = "konsulta.db"
KEY_FILE_NAME = "keys.json"
DEFAULT_DATA_DIR = Path("var")


@dataclass(frozen=True)
class Settings:
    """The effective configuration. Every path is absolute once built: a relative one is taken
    from the working directory at start-up, and the defaults of the database, the key files, the
    checkpoint file and the development issuer's key lie in ``data_dir``. ``None`` in the
    fields marked *derived* means "the default", filled in by ``__post_init__``."""

    database_url: str = field(default=None, repr=False)  # type: ignore[assignment]  # derived
    host: str = "127.0.0.1"
    port: int = 8080
    key_file: Path = None  # type: ignore[assignment]  # derived: data_dir/keys.json
    policy_dir: Path = None  # type: ignore[assignment]  # derived: the policies that ship
    policy_profile: str = "today"
    jwks: str | None = None
    issuer: str | None = None
    audience: str = "consult"
    org_claim: str = "org"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    issuers: tuple[IdentityProvider, ...] = ()
    jwks_refresh_minutes: int = JWKS_REFRESH_MINUTES
    trusted_proxies: tuple[str, ...] = ()
    dev: bool = False
    demo: bool = False
    data_dir: Path = DEFAULT_DATA_DIR
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    web_dir: Path = None  # type: ignore[assignment]  # derived: the web app that ships
    oidc_authority: str | None = None
    oidc_client_id: str | None = None
    oidc_scope: str = "openid profile"
    ws_auth_timeout: float = 10.0
    auth_failures_per_minute: int = 60
    retention_days: int = 730
    retention_interval_hours: int = 24
    event_retention_hours: int = 24
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
    # Clock skew allowed on a token's exp/nbf; a live connection closes this long after exp.
    token_leeway_seconds: int = 30
    # Lifetime of a development-issuer token (POST /api/v1/dev/token and its renewal).
    dev_token_seconds: int = 8 * 3600
    log_format: str = "text"
    log_level: str = "INFO"
    # /metrics answers only a request bearing this secret; unset, /metrics does not exist.
    metrics_token: str | None = field(default=None, repr=False)
    # Several instances on one database (README "Several instances"): the name of this one in the
    # presence and lease rows (default: host name, process id and a random suffix); how long a
    # job's lease and a connection's presence count without renewal (renewed every third of it).
    instance_id: str | None = None
    lease_seconds: int = 30
    presence_seconds: int = 30
    #: Which fields were filled in by default (re-derived when ``with_overrides`` changes the data
    #: directory); not a setting.
    derived: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        from consult.bundled import POLICIES, WEB, bundled_dir

        data_dir = self.data_dir.absolute()
        defaults: dict[str, Callable[[], object]] = {
            "database_url": lambda: f"sqlite+aiosqlite:///{data_dir / DATABASE_FILE}",
            "key_file": lambda: data_dir / KEY_FILE_NAME,
            "policy_dir": lambda: bundled_dir(POLICIES),
            "web_dir": lambda: bundled_dir(WEB),
        }
        derived = {name for name in defaults if getattr(self, name) is None}
        object.__setattr__(self, "data_dir", data_dir)
        for name in derived:
            object.__setattr__(self, name, defaults[name]())
        object.__setattr__(self, "database_url", _absolute_sqlite_url(self.database_url))
        for name in ("key_file", "policy_dir", "web_dir", "audit_key_file", "checkpoint_file"):
            value = getattr(self, name)
            if value is not None and not value.is_absolute():
                object.__setattr__(self, name, value.absolute())
        object.__setattr__(self, "derived", frozenset(derived))

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
    def identity_providers(self) -> tuple[IdentityProvider, ...]:
        """Every trusted issuer: the one of ``CONSULT_ISSUER``/``CONSULT_JWKS`` (for all of
        ``CONSULT_ORGS``, claims named by ``CONSULT_ORG_CLAIM``/``CONSULT_ROLES_CLAIM``/
        ``CONSULT_ROLE_MAP``), then each ``[[issuers]]`` table of the TOML file."""
        single: tuple[IdentityProvider, ...] = ()
        if self.issuer and self.jwks:
            single = (IdentityProvider(issuer=self.issuer, jwks=self.jwks, audience=self.audience, orgs=self.orgs,
                                       org_claim=self.org_claim, roles_claim=self.roles_claim,
                                       role_map=self.role_map),)
        return single + self.issuers

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
        """These values changed; the defaults that were derived are derived again (from a new
        ``data_dir``, say)."""
        rederive = {name: None for name in self.derived if name not in values}
        return replace(self, **rederive, **values, derived=frozenset())  # type: ignore[arg-type]


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
    "CONSULT_ORG_CLAIM": "org_claim",
    "CONSULT_ROLES_CLAIM": "roles_claim",
    "CONSULT_ROLE_MAP": "role_map",
    "CONSULT_JWKS_REFRESH_MINUTES": "jwks_refresh_minutes",
    "CONSULT_TRUSTED_PROXIES": "trusted_proxies",
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
    "CONSULT_EVENT_RETENTION_HOURS": "event_retention_hours",
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
    "CONSULT_TOKEN_LEEWAY_SECONDS": "token_leeway_seconds",
    "CONSULT_DEV_TOKEN_SECONDS": "dev_token_seconds",
    "CONSULT_LOG_FORMAT": "log_format",
    "CONSULT_LOG_LEVEL": "log_level",
    "CONSULT_METRICS_TOKEN": "metrics_token",
    "CONSULT_INSTANCE_ID": "instance_id",
    "CONSULT_LEASE_SECONDS": "lease_seconds",
    "CONSULT_PRESENCE_SECONDS": "presence_seconds",
}
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
METRICS_TOKEN_MIN = 32
_NAME = identifiers.ORG  # organisation ids and pool names (consult/model/identifiers.py)
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


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


def _text(key: str, raw: object) -> str:
    """A text value: a string from the environment or a TOML string (a TOML number, boolean,
    array or table where text is wanted is a mistake, not a text)."""
    if not isinstance(raw, str):
        raise ConfigError(f"{key} must be a text value")
    return raw.strip()


def _to_bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = _text(key, raw).lower() if isinstance(raw, str) else None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{key} must be a boolean (1/0, true/false)")


def _to_int(key: str, raw: object) -> int:
    # ASCII digits only: ``int`` would also read '٣', '+80' and '8_0'; a TOML boolean is no number.
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"[0-9]{1,18}", raw.strip()):
        value = int(raw.strip())
    else:
        raise ConfigError(f"{key} must be an integer")
    if value <= 0:
        raise ConfigError(f"{key} is out of range")
    return value


def _to_float(key: str, raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", raw.strip()):
        value = float(raw.strip())
    else:
        raise ConfigError(f"{key} must be a number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} is out of range")
    return value


def _to_names(key: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, list):
        items = raw
    elif isinstance(raw, str):
        items = raw.split(",")
    else:
        raise ConfigError(f"{key} must be a comma-separated list of lowercase names")
    names = tuple(i.strip() for i in items if isinstance(i, str) and i.strip())
    if not names or len(names) != len([i for i in items if not isinstance(i, str) or i.strip()]) \
            or not all(_NAME.match(n) for n in names):
        raise ConfigError(f"{key} must be a comma-separated list of lowercase names")
    return names


def _to_path(key: str, raw: object) -> Path:
    text = _text(key, raw)
    if not text:
        raise ConfigError(f"{key} must not be empty")
    return Path(text)


def _to_str(key: str, raw: object) -> str:
    text = _text(key, raw)
    if not text:
        raise ConfigError(f"{key} must not be empty")
    return text


def _optional(convert: Callable[[str, object], object]) -> Callable[[str, object], object]:
    """An optional value: empty text means unset."""
    def read(key: str, raw: object) -> object:
        return None if isinstance(raw, str) and not raw.strip() else convert(key, raw)
    return read


#: How a value is read, by the field's declared type: one case per type, so a field of a new
#: type fails loudly (``_convert``) instead of arriving as a string.
_CONVERTERS = {
    "str": _to_str, "str | None": _optional(_to_str),
    "int": _to_int, "float": _to_float, "bool": _to_bool,
    "Path": _to_path, "Path | None": _optional(_to_path),
    "tuple[str, ...]": _to_names,
}
#: A claim name, or a dotted path of names into nested claims (``realm_access.roles``).
_CLAIM = re.compile(r"[A-Za-z0-9_:/.-]{1,200}")


def _role_map(key: str, raw: object) -> Mapping[str, str]:
    """Provider role name -> Konsulta role: a TOML table, or ``name=role,name=role`` text."""
    if isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        pairs = []
        for item in str(raw).split(","):
            if item.strip():
                source, sep, role = item.partition("=")
                if not sep:
                    raise ConfigError(f"{key} must be a comma-separated list of PROVIDER_ROLE=role")
                pairs.append((source.strip(), role.strip()))
    result: dict[str, str] = {}
    for source, role in pairs:
        if not isinstance(source, str) or not source or len(source) > 200 or not isinstance(role, str):
            raise ConfigError(f"{key}: each provider role name must be non-empty text")
        if role not in ROLES:
            raise ConfigError(f"{key}: {role!r} is not a Konsulta role ({', '.join(sorted(ROLES))})")
        result[source] = role
    return MappingProxyType(result)


def _trusted_proxies(key: str, raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not an IP address or CIDR network") from None
    return tuple(networks)


_ISSUER_KEYS = {"issuer", "jwks", "audience", "orgs", "org_claim", "roles_claim", "roles"}


def _issuers(key: str, raw: object, orgs: tuple[str, ...], audience: str) -> tuple[IdentityProvider, ...]:
    """``[[issuers]]`` tables: issuer, jwks, orgs (required); audience, org_claim, roles_claim
    and a ``[issuers.roles]`` table of provider role -> Konsulta role (optional)."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{key} must be an array of tables ([[issuers]])")
    result = []
    for index, table in enumerate(raw):
        where = f"{key}[{index}]"
        unknown = set(table) - _ISSUER_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
        for required in ("issuer", "jwks", "orgs"):
            if required not in table:
                raise ConfigError(f"{where} needs {required!r}")
        texts = {k: table[k] for k in ("issuer", "jwks", "audience", "org_claim", "roles_claim") if k in table}
        if not all(isinstance(v, str) for v in texts.values()):
            raise ConfigError(f"{where}: issuer, jwks, audience, org_claim and roles_claim must be text")
        result.append(IdentityProvider(
            issuer=table["issuer"], jwks=table["jwks"], audience=table.get("audience", audience),
            orgs=_convert(f"{where}.orgs", "orgs", table["orgs"]),  # type: ignore[arg-type]
            org_claim=table.get("org_claim", "org"), roles_claim=table.get("roles_claim", "roles"),
            role_map=_role_map(f"{where}.roles", table.get("roles", {}))))
    return tuple(result)


def _convert(key: str, name: str, raw: object) -> object:
    if name == "controllers":
        return _controllers(key, raw)
    if name == "role_map":
        return _role_map(key, raw)
    if name == "trusted_proxies":
        return _trusted_proxies(key, raw)
    if name == "org_claim":
        return str(raw).strip()  # empty: the issuer's one organisation
    setting = {f.name: f for f in fields(Settings)}[name]
    if setting.default is None and isinstance(raw, str) and not raw.strip():
        return None  # unset: an optional value, or a default derived from the others
    convert = _CONVERTERS.get(str(setting.type))
    if convert is None:
        raise ConfigError(f"{key} cannot be set here")
    value = convert(key, raw)
    if name == "port" and isinstance(value, int) and value > 65535:
        raise ConfigError(f"{key} is out of range")
    return value


def _oidc_authority_ok(url: str) -> bool:
    parts = urlsplit(url)
    local = parts.hostname in _LOOPBACK
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local)) \
        and not parts.query and not parts.fragment and not parts.username


def _jwks_ok(source: str) -> bool:
    """A JWKS is a file path, or fetched over https:// (plain http:// only from this host): a
    key set read off the network unprotected would let anyone on the path sign tokens."""
    if "://" not in source:
        return True
    parts = urlsplit(source)
    local = parts.hostname in _LOOPBACK
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local)) \
        and not parts.fragment and not parts.username


def _witness_url_ok(url: str) -> bool:
    parts = urlsplit(url)
    local = parts.hostname in _LOOPBACK
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and local)) \
        and not parts.fragment


def load_settings(env: Mapping[str, str] | None = None, *, check: bool = True,
                  identity: bool = True) -> Settings:
    """Build settings from ``CONSULT_CONFIG`` (TOML, optional) and then the environment.

    ``check=False`` leaves validation to the caller, who may still apply overrides (CLI flags).
    ``identity=False`` is for commands that verify no token (see ``validate``).
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
        known = {f.name for f in fields(Settings)} - {"derived"}
        for name, raw in data.items():
            if name not in known:
                raise ConfigError(f"CONSULT_CONFIG: unknown setting {name!r} in {config_file}")
            if name == "issuers":
                continue  # needs the organisations and audience, read below
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
    if config_file and "issuers" in data:
        values["issuers"] = _issuers(f"{config_file}:issuers", data["issuers"],
                                     values.get("orgs", Settings.orgs),  # type: ignore[arg-type]
                                     values.get("audience", Settings.audience))  # type: ignore[arg-type]
    settings = Settings(**values)  # type: ignore[arg-type]
    return validate(settings, identity=identity) if check else settings


def validate_database_url(settings: Settings) -> Settings:
    """The one check commands that only touch the database need (``consult db upgrade``)."""
    url = settings.database_url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError(
            "CONSULT_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return settings


def validate(settings: Settings, *, identity: bool = True) -> Settings:
    """Every check of the settings. ``identity=False`` is for the offline commands, which verify no
    token: they run without an identity provider (and without CONSULT_DEV); one that is configured
    is still checked."""
    validate_database_url(settings)
    if not _PROFILE.match(settings.policy_profile or ""):
        raise ConfigError("CONSULT_POLICY_PROFILE must be a policy profile name such as today "
                          "or experiment-2015")
    if identity and settings.demo and not settings.dev:
        raise ConfigError("CONSULT_DEMO needs CONSULT_DEV=1: demo data is for development only")
    if bool(settings.oidc_authority) != bool(settings.oidc_client_id):
        raise ConfigError("CONSULT_OIDC_AUTHORITY and CONSULT_OIDC_CLIENT_ID must be set together")
    if settings.oidc_authority and not _oidc_authority_ok(settings.oidc_authority):
        raise ConfigError("CONSULT_OIDC_AUTHORITY must be an https:// URL (http:// only on localhost)")
    if identity and not settings.dev and not settings.jwks and not settings.issuers:
        raise ConfigError(
            "CONSULT_JWKS is required (a JWKS file path or URL of the identity provider) unless the "
            "CONSULT_CONFIG file lists [[issuers]]; for a local demo set CONSULT_DEV=1 or run `consult serve --demo`"
        )
    if identity and settings.jwks and not settings.issuer and not settings.dev:
        raise ConfigError("CONSULT_ISSUER is required with CONSULT_JWKS unless CONSULT_DEV=1")
    if identity and settings.issuer and not settings.jwks and not settings.dev:
        raise ConfigError("CONSULT_JWKS is required with CONSULT_ISSUER unless CONSULT_DEV=1")
    if not 0 < settings.jwks_refresh_minutes <= 1440:
        raise ConfigError("CONSULT_JWKS_REFRESH_MINUTES must be 1..1440 minutes")
    _validate_issuers(settings)
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
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError("CONSULT_LOG_FORMAT must be text or json")
    if (settings.log_level or "").upper() not in LOG_LEVELS:
        raise ConfigError(f"CONSULT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    if settings.metrics_token is not None and (len(settings.metrics_token) < METRICS_TOKEN_MIN
                                               or not settings.metrics_token.isascii()
                                               or not settings.metrics_token.isprintable()):
        raise ConfigError(f"CONSULT_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} printable ASCII characters")
    if not _range(settings.audit_office_days, 1, 7):
        raise ConfigError("CONSULT_AUDIT_OFFICE_DAYS must be two ISO weekdays FIRST-LAST, e.g. 1-5")
    _validate_live(settings)
    return settings


def _validate_live(settings: Settings) -> None:
    """The timings of tokens, kept live events and this instance among others."""
    if settings.token_leeway_seconds > 300:
        raise ConfigError("CONSULT_TOKEN_LEEWAY_SECONDS must be 1..300 seconds")
    if not 1 <= settings.event_retention_hours <= 24 * 30:
        raise ConfigError("CONSULT_EVENT_RETENTION_HOURS must be 1..720 hours")
    if settings.instance_id is not None and not _INSTANCE.fullmatch(settings.instance_id):
        raise ConfigError("CONSULT_INSTANCE_ID must be 1..64 letters, digits, '.', '_', ':' or '-'")
    for key, seconds in (("CONSULT_LEASE_SECONDS", settings.lease_seconds),
                         ("CONSULT_PRESENCE_SECONDS", settings.presence_seconds)):
        if not 3 <= seconds <= 3600:
            raise ConfigError(f"{key} must be 3..3600 seconds")


def _validate_issuers(settings: Settings) -> None:
    env_names = {"issuer": "CONSULT_ISSUER", "jwks": "CONSULT_JWKS", "orgs": "CONSULT_ORGS",
                 "org_claim": "CONSULT_ORG_CLAIM", "roles_claim": "CONSULT_ROLES_CLAIM"}
    offset = len(settings.identity_providers) - len(settings.issuers)
    seen: set[str] = set()
    for index, idp in enumerate(settings.identity_providers):
        def where(name: str, index: int = index) -> str:
            if index < offset:
                return env_names[name]
            return f"CONSULT_CONFIG: issuers[{index - offset}].{name}"

        if not idp.issuer.strip() or len(idp.issuer) > 500 or any(c.isspace() for c in idp.issuer):
            raise ConfigError(f"{where('issuer')} must be the issuer exactly as its tokens' iss claim says it")
        if idp.issuer in seen:
            raise ConfigError(f"{where('issuer')}: issuer {idp.issuer} is configured twice")
        seen.add(idp.issuer)
        if not _jwks_ok(idp.jwks):
            raise ConfigError(f"{where('jwks')} must be a file path or an https:// URL (http:// only on localhost)")
        strangers = [org for org in idp.orgs if org not in settings.orgs]
        if strangers:
            raise ConfigError(f"{where('orgs')}: {', '.join(strangers)} not in CONSULT_ORGS")
        if idp.org_claim == "" and len(idp.orgs) != 1:
            raise ConfigError(f"{where('org_claim')} may be empty only for an issuer of exactly one organisation")
        if idp.org_claim and not _CLAIM.fullmatch(idp.org_claim):
            raise ConfigError(f"{where('org_claim')} must be a claim name or dotted path")
        if not _CLAIM.fullmatch(idp.roles_claim):
            raise ConfigError(f"{where('roles_claim')} must be a claim name or dotted path such as realm_access.roles")


def _range(text: str, low: int, high: int) -> bool:
    match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text or "")
    return match is not None and low <= int(match[1]) < int(match[2]) <= high


def mask_url_secrets(url: str) -> str:
    """A URL with its password and query string (where tokens travel) hidden."""
    masked = _mask_url(url)
    parts = urlsplit(masked)
    return urlunsplit(parts._replace(query="***")) if parts.query else masked


_DERIVED_PATHS: dict[str, str] = {
    "CONSULT_AUDIT_KEY_FILE": "effective_audit_key_file",
    "CONSULT_CHECKPOINT_FILE": "effective_checkpoint_file",
}


def effective_configuration(settings: Settings, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Every environment setting with the value in force, secrets masked: a field kept out of
    ``repr`` shows a URL without its password or query, anything else as ``***``. An unset value is
    empty and a boolean is 1 or 0, so the lines, masked ones aside, read back as the same settings. For
    ``consult config check``; the service itself never logs its configuration."""
    env = os.environ if env is None else env
    by_name = {f.name: f for f in fields(Settings)}
    rows = [("CONSULT_CONFIG", env.get("CONSULT_CONFIG") or "")]
    for key, name in _ENV_KEYS.items():
        value = getattr(settings, _DERIVED_PATHS.get(key, name))
        if value is None:
            shown = ""
        elif isinstance(value, bool):
            shown = "1" if value else "0"
        elif not by_name[name].repr:
            text = str(value)
            shown = mask_url_secrets(text) if "://" in text else "***"
        elif isinstance(value, tuple):
            shown = ",".join(value)
        else:
            shown = str(value)
        rows.append((key, shown))
    return rows

