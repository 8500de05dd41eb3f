"""The development token issuer and the demo users. Off unless ``CONSULT_DEV=1`` or ``--demo``.

The issuer signs ES256 tokens with a key kept in the data directory, so ``consult token`` and a
running demo server agree. Demo users are synthetic staff of the two demo organisations: Kela
and the Vantaa and Kerava wellbeing services county (org id ``vantaa``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from jose import jwt

from consult.auth.tokens import TrustedKey
from consult.crypto.issuer_keys import load_or_create_p256_pem, public_jwk


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    org: str
    roles: tuple[str, ...]
    name: str
    topics: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("fi",)


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("kela.aino", "kela", ("advisor",), "Aino Neuvoja"),
    DemoUser("kela.eero", "kela", ("advisor",), "Eero Neuvoja"),
    DemoUser(
        "vantaa.sanna", "vantaa", ("expert",), "Sanna Asiantuntija",
        ("application_intake", "attachments", "urgent_assistance", "other"), ("toimeentulotuki",), ("fi", "sv"),
    ),
    DemoUser(
        "vantaa.mikko", "vantaa", ("expert",), "Mikko Asiantuntija",
        ("application_intake", "primary_benefits", "other"), ("toimeentulotuki",), ("fi", "en"),
    ),
    DemoUser(
        "vantaa.liisa", "vantaa", ("expert",), "Liisa Varahenkilö",
        ("application_intake", "urgent_assistance", "other"), ("backup",), ("fi",),
    ),
    # The county's intakes of statutory contacts: social workers only (consult/model/intake.py).
    DemoUser("vantaa.paula", "vantaa", ("social_worker",), "Paula Sosiaalityöntekijä", ("other",),
             ("social_work_intake",), ("fi", "sv")),
    DemoUser("vantaa.kaisa", "vantaa", ("social_worker",), "Kaisa Lastensuojelu", ("other",),
             ("child_welfare_intake",), ("fi",)),
    DemoUser("kela.tuula", "kela", ("privacy_officer",), "Tuula Tietosuoja"),
    DemoUser("vantaa.ville", "vantaa", ("privacy_officer",), "Ville Tietosuoja"),
    DemoUser("kela.admin", "kela", ("admin",), "Kelan pääkäyttäjä"),
    DemoUser("vantaa.admin", "vantaa", ("admin",), "Hyvinvointialueen pääkäyttäjä"),
)


class DevIssuer:
    """Mints tokens for local development and tests; its public key joins the trusted keys."""

    def __init__(self, key_file: Path, *, issuer: str, audience: str) -> None:
        self._pem = load_or_create_p256_pem(key_file)
        self.jwk = public_jwk(self._pem)
        self.issuer = issuer
        self.audience = audience

    @property
    def trusted_key(self) -> TrustedKey:
        return TrustedKey(kid=self.jwk["kid"], alg="ES256", jwk=self.jwk)

    def mint(
        self,
        *,
        sub: str,
        org: str,
        roles: list[str] | tuple[str, ...],
        name: str | None = None,
        ttl: int = 8 * 3600,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "org": org,
            "roles": list(roles),
            "name": name or sub,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._pem.decode(), algorithm="ES256", headers={"kid": self.jwk["kid"]})

    def mint_for(self, user: DemoUser, *, ttl: int = 8 * 3600) -> str:
        return self.mint(sub=user.user_id, org=user.org, roles=user.roles, name=user.name, ttl=ttl)


def demo_user(user_id: str) -> DemoUser | None:
    return next((u for u in DEMO_USERS if u.user_id == user_id), None)
