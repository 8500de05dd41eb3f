"""Bearer-token validation: a JWT → ``Principal``, or one ``AuthError``.

Several issuers may be trusted, each with its own keys, audience, organisations and claim names
(``Issuer``). The algorithm comes from the trusted key (ES256 or RS256), never from the token;
``iss``, ``aud`` and ``exp`` are required, ``nbf`` is checked when present (RFC 7519 §4.1.5 makes
it optional, and many providers leave it out). Every library failure maps to the same error.

The claims become a ``Principal`` only if they are plain text: ``sub`` an identifier, the
organisation one this issuer may assert (and one of ``CONSULT_ORGS``), ``name`` and each role at
most 200 and 64 characters with no control, format, surrogate, private-use or
line/paragraph-separator characters (NUL, newline, bidirectional overrides, ...), at most 32
roles. Anything else is refused like a bad signature: the token names no one we can trust.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from consult.model import Principal, identifiers
from consult.model.vocabulary import ROLES

log = logging.getLogger("consult.auth")

ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256"})
LEEWAY_SECONDS = 30
# Used with fullmatch: "$" alone would let a trailing newline through.
_ID = identifiers.USER_ID  # one grammar: consult/model/identifiers.py
_ORG = identifiers.ORG
NAME_MAX = 200
ROLE_MAX = 64
ROLES_MAX = 32
#: Unicode categories a text claim may not contain: controls (NUL, newline, DEL, C1), format
#: characters (bidirectional overrides, zero-width), surrogates, private use, line and
#: paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


#: An unverified ``iss`` is logged only if it looks like an issuer (never the token's content).
_LOGGABLE_ISSUER = re.compile(r"[A-Za-z0-9:/._~%+-]{1,200}")


class AuthError(Exception):
    """The token is not acceptable. The reason (and the issuer the token claims, when it is a
    configured one or at least looks like an issuer) are for logs only; clients see one message."""

    def __init__(self, reason: str, issuer: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.issuer = issuer


class UnknownKey(AuthError):
    """The token names a key its issuer is not (yet) known to hold: worth one fetch of its JWKS."""


@dataclass(frozen=True)
class TrustedKey:
    kid: str | None
    alg: str
    jwk: dict[str, Any]


def _alg_for(jwk: dict[str, Any]) -> str | None:
    declared = jwk.get("alg")
    if declared is not None:
        return declared if declared in ALLOWED_ALGORITHMS else None
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        return "ES256"
    if jwk.get("kty") == "RSA":
        return "RS256"
    return None


def parse_jwks(document: dict[str, Any]) -> list[TrustedKey]:
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("a JWKS must be an object with a list of keys")
    trusted: list[TrustedKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        alg = _alg_for(jwk)
        if alg is None:
            continue
        public = {k: v for k, v in jwk.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}
        trusted.append(TrustedKey(kid=jwk.get("kid"), alg=alg, jwk=public))
    return trusted


@dataclass(frozen=True)
class ClaimMapping:
    """Where an issuer's tokens carry the organisation and roles. ``org_claim`` empty: the
    issuer's one organisation. ``roles_claim`` is a claim name or a dotted path
    (``realm_access.roles``). ``role_map`` renames the provider's roles to Konsulta's; when it is
    empty the provider's names are taken as they are. Roles neither names are ignored."""

    org_claim: str = "org"
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass
class Issuer:
    """Trust in one issuer: its name (the ``iss`` its tokens carry), audience, the organisations
    it may assert, its claim names and its current keys (``static`` ones, like the development
    issuer's, stay across refreshes)."""

    name: str
    audience: str
    orgs: frozenset[str]
    claims: ClaimMapping = field(default_factory=ClaimMapping)
    keys: list[TrustedKey] = field(default_factory=list)
    static: list[TrustedKey] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Session:
    """What a verified token grants: who, since when (``iat``, else ``nbf``; a token with neither
    counts as issued at the epoch, before any ended session) and until when (``exp`` plus the
    leeway), both as Unix seconds."""

    principal: Principal
    issued_at: float
    expires_at: float


class TokenVerifier:
    """Holds the trusted issuers and their keys and turns a bearer token into a ``Principal``."""

    CACHE_SIZE = 10_000

    def __init__(self, issuers: Sequence[Issuer], *, leeway: int = LEEWAY_SECONDS) -> None:
        self._issuers = {i.name: i for i in issuers}
        self.leeway = leeway
        # A verified token is immutable: remember its principal until it expires, so the
        # signature is checked once per token, not once per request. Emptied whenever a key set
        # changes, so a removed key stops working at once.
        self._verified: OrderedDict[str, Session] = OrderedDict()

    @classmethod
    def single(cls, keys: list[TrustedKey], *, issuer: str, audience: str, orgs: Iterable[str],
               leeway: int = LEEWAY_SECONDS) -> TokenVerifier:
        return cls([Issuer(issuer, audience, frozenset(orgs), keys=list(keys))], leeway=leeway)

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self._issuers)

    def add_issuer(self, issuer: Issuer) -> None:
        self._issuers[issuer.name] = issuer
        self._verified.clear()

    def add_static_keys(self, name: str, keys: list[TrustedKey]) -> None:
        self._issuers[name].static.extend(keys)
        self._verified.clear()

    def set_keys(self, name: str, keys: list[TrustedKey]) -> bool:
        """Replace an issuer's fetched keys; True if they changed."""
        issuer = self._issuers[name]
        if [k.jwk for k in keys] == [k.jwk for k in issuer.keys]:
            return False
        issuer.keys = list(keys)
        self._verified.clear()
        return True

    def issuers_without_keys(self) -> tuple[str, ...]:
        """The issuers none of whose tokens can be verified yet: no key fetched, kept or given."""
        return tuple(name for name, issuer in self._issuers.items() if not (issuer.static or issuer.keys))

    def key_ids(self, name: str) -> tuple[str | None, ...]:
        issuer = self._issuers[name]
        return tuple(k.kid for k in issuer.static + issuer.keys)

    @staticmethod
    def _key_for(issuer: Issuer, header: dict[str, Any]) -> TrustedKey:
        kid = header.get("kid")
        trusted = issuer.static + issuer.keys
        if not trusted:
            raise UnknownKey("no keys of this issuer are known yet", issuer.name)
        if kid is None:
            if len(trusted) == 1:
                return trusted[0]
            raise AuthError("token has no kid and several keys are trusted", issuer.name)
        for key in trusted:
            if key.kid == kid:
                return key
        raise UnknownKey("unknown kid", issuer.name)

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        return self.verify_session(token, now=now).principal

    def verify_session(self, token: str, *, now: float | None = None) -> Session:
        """The session a token grants, or ``AuthError``."""
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise AuthError("missing or oversized token")
        at = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is not None:
            if at <= cached.expires_at:
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        session = self._verify(token, at)
        self._verified[token] = session
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return session

    def issuer_of(self, token: str) -> Issuer:
        """The configured issuer the token claims (not yet verified), or ``AuthError``."""
        try:
            claimed = jwt.get_unverified_claims(token).get("iss")
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AuthError(f"unreadable claims: {type(exc).__name__}") from None
        issuer = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if issuer is None:
            shown = claimed if isinstance(claimed, str) and _LOGGABLE_ISSUER.fullmatch(claimed) else None
            raise AuthError("missing iss" if claimed is None else "issuer not trusted", shown)
        return issuer

    def _verify(self, token: str, now: float) -> Session:
        try:
            header = jwt.get_unverified_header(token)
        except (JOSEError, ValueError, TypeError, KeyError) as exc:
            raise AuthError(f"unreadable header: {type(exc).__name__}") from None
        if not isinstance(header, dict):
            raise AuthError("unreadable header")
        issuer = self.issuer_of(token)
        key = self._key_for(issuer, header)
        if header.get("alg") != key.alg:
            raise AuthError("token algorithm does not match the trusted key", issuer.name)
        try:
            claims = jwt.decode(
                token,
                key.jwk,
                algorithms=[key.alg],
                audience=issuer.audience,
                issuer=issuer.name,
                options={
                    "require_exp": True,
                    "require_nbf": False,  # checked when present (verify_nbf)
                    "require_iss": True,
                    "require_aud": True,
                    "require_sub": True,
                    "leeway": self.leeway,
                },
            )
        except (ExpiredSignatureError, JWTClaimsError) as exc:
            # The library's own fixed texts ("Invalid audience", "Signature has expired.", ...).
            raise AuthError(f"rejected: {str(exc)[:80]}", issuer.name) from None
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AuthError(f"rejected: {type(exc).__name__}", issuer.name) from None
        expires = float(claims.get("exp", 0)) + self.leeway
        if expires < now:
            raise AuthError("expired", issuer.name)
        issued = claims.get("iat", claims.get("nbf", 0))
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise AuthError("bad iat", issuer.name)
        try:
            return Session(principal_from_claims(claims, issuer.orgs, issuer.claims), float(issued), expires)
        except AuthError as exc:
            raise AuthError(exc.reason, issuer.name) from None


def is_plain_text(value: str) -> bool:
    """No character of a category a name or role may not hold (see ``_NOT_TEXT``)."""
    return not any(unicodedata.category(c) in _NOT_TEXT for c in value)


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named ``path``, else the value at its dotted path (``realm_access.roles``).
    The whole name is tried first: namespaced claims may be URLs with dots in them."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def principal_from_claims(claims: dict[str, Any], orgs: frozenset[str],
                          mapping: ClaimMapping = ClaimMapping()) -> Principal:
    """The principal the claims name, or ``AuthError`` if any claim is not acceptable text."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _ID.fullmatch(sub):
        raise AuthError("bad sub")
    if mapping.org_claim:  # noqa: SIM108 -- a nested conditional expression would read worse
        org = claim_at(claims, mapping.org_claim)
    else:
        org = next(iter(orgs)) if len(orgs) == 1 else None
    if not isinstance(org, str) or not _ORG.fullmatch(org):
        raise AuthError("bad org")
    if org not in orgs:
        raise AuthError("org is not one this issuer may assert")
    roles = claim_at(claims, mapping.roles_claim)
    if roles is None:
        roles = []
    if isinstance(roles, str):
        roles = [roles]
    if (not isinstance(roles, list) or len(roles) > ROLES_MAX
            or not all(isinstance(r, str) and 0 < len(r) <= ROLE_MAX and is_plain_text(r) for r in roles)):
        raise AuthError("bad roles")
    if mapping.role_map:
        roles = [mapping.role_map[r] for r in roles if r in mapping.role_map]
    known = frozenset(r for r in roles if r in ROLES)
    name = claims.get("name")
    if name is None:
        name = sub
    if not isinstance(name, str) or len(name) > NAME_MAX or not is_plain_text(name):
        raise AuthError("bad name")
    # An empty name is no name: the user is shown by their id.
    return Principal(user_id=sub, org=org, roles=known, name=name.strip() or sub)


def load_jwks_file(path: Path) -> list[TrustedKey]:
    try:
        return parse_jwks(json.loads(path.read_text()))
    except OSError as exc:
        raise ValueError(f"cannot read JWKS file {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise ValueError(f"JWKS file {path} is not JSON") from None
