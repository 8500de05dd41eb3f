"""Bearer-token validation: a JWT → ``Principal``, or one ``AuthError``.

The algorithm comes from the trusted key (ES256 or RS256), never from the token; ``iss``,
``aud``, ``exp`` and ``nbf`` are required. Every library failure maps to the same error.

The claims become a ``Principal`` only if they are plain text: ``sub`` an identifier, ``org`` one
of the organisations this deployment is configured with (``CONSULT_ORGS``), ``name`` and each
role at most 200 and 64 characters with no control, format, surrogate, private-use or
line/paragraph-separator characters (NUL, newline, bidirectional overrides, ...), at most 32
roles. Anything else is refused like a bad signature: the token names no one we can trust.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections.abc import Iterable
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from consult.model import Principal
from consult.model import identifiers
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


class AuthError(Exception):
    """The token is not acceptable. The reason is for logs only; clients see one message."""


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


class TokenVerifier:
    """Holds the trusted keys and turns a bearer token into a ``Principal``."""

    CACHE_SIZE = 10_000

    def __init__(self, keys: list[TrustedKey], *, issuer: str, audience: str, orgs: Iterable[str]) -> None:
        self._keys = list(keys)
        self.issuer = issuer
        self.audience = audience
        self.orgs = frozenset(orgs)
        # A verified token is immutable: remember its principal until it expires, so the
        # signature is checked once per token, not once per request.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def add_keys(self, keys: list[TrustedKey]) -> None:
        self._keys.extend(keys)
        self._verified.clear()

    def _key_for(self, header: dict[str, Any]) -> TrustedKey:
        kid = header.get("kid")
        if kid is None:
            if len(self._keys) == 1:
                return self._keys[0]
            raise AuthError("token has no kid and several keys are trusted")
        for key in self._keys:
            if key.kid == kid:
                return key
        raise AuthError("unknown kid")

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise AuthError("missing or oversized token")
        at = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if at <= expires:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = self._verify(token, at)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str, now: float) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except (JOSEError, ValueError, TypeError, KeyError) as exc:
            raise AuthError(f"unreadable header: {type(exc).__name__}") from None
        if not isinstance(header, dict):
            raise AuthError("unreadable header")
        key = self._key_for(header)
        if header.get("alg") != key.alg:
            raise AuthError("token algorithm does not match the trusted key")
        try:
            claims = jwt.decode(
                token,
                key.jwk,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_nbf": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_sub": True,
                    "leeway": LEEWAY_SECONDS,
                },
            )
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AuthError(f"rejected: {type(exc).__name__}") from None
        expires = float(claims.get("exp", 0)) + LEEWAY_SECONDS
        if expires < now:
            raise AuthError("expired")
        return principal_from_claims(claims, self.orgs), expires


def is_plain_text(value: str) -> bool:
    """No character of a category a name or role may not hold (see ``_NOT_TEXT``)."""
    return not any(unicodedata.category(c) in _NOT_TEXT for c in value)


def principal_from_claims(claims: dict[str, Any], orgs: frozenset[str]) -> Principal:
    """The principal the claims name, or ``AuthError`` if any claim is not acceptable text."""
    sub, org, roles = claims.get("sub"), claims.get("org"), claims.get("roles", [])
    if not isinstance(sub, str) or not _ID.fullmatch(sub):
        raise AuthError("bad sub")
    if not isinstance(org, str) or not _ORG.fullmatch(org):
        raise AuthError("bad org")
    if org not in orgs:
        raise AuthError("org is not a configured organisation")
    if isinstance(roles, str):
        roles = [roles]
    if (not isinstance(roles, list) or len(roles) > ROLES_MAX
            or not all(isinstance(r, str) and 0 < len(r) <= ROLE_MAX and is_plain_text(r) for r in roles)):
        raise AuthError("bad roles")
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


def unix_now() -> float:
    return time.time()
