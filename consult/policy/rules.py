"""The loaded policy as typed, immutable data: vocabulary (categories, organisations,
roles, purposes), built-in guards and the ordered rules, each with its citation and, for a
disclosure across organisations, its two bases: a GDPR basis and a secrecy exception."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from consult.policy.signals import SignalSet

#: A policy without a signals file recognises no sensitive categories in free text.
NO_SIGNALS: Final = SignalSet(categories=())

SENSITIVITIES: Final = ("low", "medium", "high", "very_high")
#: Identifier pseudo-categories are named ``identifier.<kind>``.
IDENTIFIER_PREFIX: Final = "identifier."
RELATIONS: Final = frozenset({"same_org", "cross_org"})
#: The profile loaded when none is named: the division of social assistance in force today.
DEFAULT_PROFILE: Final = "today"

#: GDPR bases an authority may rest a disclosure on (art. 6(1)(c) legal obligation, (e)
#: public task) and, for special categories, the art. 9(2) exceptions that Finnish law
#: (tietosuojalaki 1050/2018 § 6) makes available to it. Consent (6(1)(a), 9(2)(a)) is not
#: among them: for an authority a consent works as the waiver of secrecy, not as the GDPR
#: basis.
GDPR_ARTICLES: Final = ("6(1)(c)", "6(1)(e)", "9(2)(b)", "9(2)(h)")
GDPR_SPECIAL_ARTICLES: Final = frozenset({"9(2)(b)", "9(2)(h)"})
#: The two exceptions to secrecy of julkisuuslaki 621/1999 § 29(1): a statute (1 k.) or the
#: data subject's consent (2 k.; for social-welfare client data also the consent provisions of
#: 703/2023).
SECRECY_EXCEPTIONS: Final = ("statute", "consent")
#: Decisions on social assistance: who issues them and of which kind (since 2017 Kela decides
#: basic assistance; the wellbeing services county supplementary and preventive assistance).
DECISION_KINDS: Final = ("basic", "supplementary", "preventive", "any")
DECISION_PARTS: Final = ("content", "period")

#: Built-in guards. Their citations and reasons are data (taxonomy.toml, ``[guards]``);
#: their place in the order of evaluation is fixed by the engine.
GUARD_IDS: Final = (
    "unknown-vocabulary",
    "purpose-binding",
    "no-client-link",
    "client-prohibition",
    "default-deny",
)


@dataclass(frozen=True, slots=True)
class DecisionOf:
    """What a decision category is about: the kind of organisation that issues the decision
    (``benefit_institution`` for Kela, ``wellbeing_county``), its kind (``basic``,
    ``supplementary``, ``preventive`` or ``any``) and which part of it the category carries
    (``content`` or only its ``period``)."""

    issuer: str
    kind: str
    part: str


@dataclass(frozen=True, slots=True)
class Category:
    """``special`` marks a special category of GDPR art. 9(1) (health): a disclosure of it
    needs an art. 9(2) basis besides the art. 6 one. ``decision`` is set for the categories
    that carry a decision or its period."""

    name: str
    description: str
    sensitivity: str
    client_data: bool
    special: bool = False
    decision: DecisionOf | None = None


@dataclass(frozen=True, slots=True)
class Identifier:
    """A kind of identifier found in free text (IBAN, phone, e-mail), decided per reader
    like a category under the pseudo-category ``name`` (``identifier.<kind>``). It is never
    a structured data item: the API's data-item categories are ``Policy.categories``."""

    name: str
    kind: str
    description: str
    sensitivity: str


@dataclass(frozen=True, slots=True)
class Purpose:
    """``categories`` are the data-item categories and identifier pseudo-categories the
    purpose may carry at all."""

    name: str
    description: str
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class Guard:
    id: str
    citation: str
    reason: str
    needs_check: bool


@dataclass(frozen=True, slots=True)
class PartyScope:
    """Which parties a rule side matches. Organisation kinds and ids are alternatives
    (a party matches if its org's kind is listed *or* its org id is); both empty means
    any organisation. Empty ``roles`` means any role."""

    org_kinds: frozenset[str] = frozenset()
    orgs: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def matches_org(self, org: str, kind: str | None) -> bool:
        if not self.org_kinds and not self.orgs:
            return True
        return org in self.orgs or (kind is not None and kind in self.org_kinds)

    def matches_role(self, role: str) -> bool:
        return not self.roles or role in self.roles

    def describe(self) -> str:
        parts = []
        if self.org_kinds or self.orgs:
            parts.append("org " + "|".join(sorted(self.org_kinds) + sorted(self.orgs)))
        else:
            parts.append("any org")
        parts.append("role " + "|".join(sorted(self.roles)) if self.roles else "any role")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class GdprBasis:
    """The GDPR basis of a disclosure: the articles (``GDPR_ARTICLES``) and the law that lays
    down the legal obligation or public task (art. 6(3))."""

    articles: tuple[str, ...]
    law: str
    needs_check: bool = False

    @property
    def citation(self) -> str:
        general = [a for a in self.articles if a not in GDPR_SPECIAL_ARTICLES]
        special = [a for a in self.articles if a in GDPR_SPECIAL_ARTICLES]
        text = f"EU GDPR 2016/679 art. {', '.join(general)}"
        if special:
            text += f" and {', '.join(special)} with tietosuojalaki 1050/2018 6 §"
        return f"{text}; the task laid down in {self.law}"


@dataclass(frozen=True, slots=True)
class SecrecyException:
    """The exception to secrecy (julkisuuslaki 621/1999 § 29(1)) a disclosure rests on:
    ``statute`` (a section of an act) or ``consent`` (the client's consent), with the
    citation."""

    exception: str
    citation: str
    needs_check: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a policy file. ``categories``/``purposes`` None mean any; ``categories``
    None means any data-item category, never an identifier (identifier rules name theirs).

    ``requires_referral`` makes a permit conditional on a recorded § 35(2) referral.
    ``statutory`` marks a permit whose statute applies notwithstanding secrecy and so
    overrides a client's disclosure prohibition. ``gdpr`` and ``secrecy`` are the two bases
    of a disclosure between organisations; the loader requires both on every permit that can
    apply across organisations, and composes ``citation`` from them. ``involves_org`` is set
    for rules of a municipal file: such a rule only applies to traffic where that
    organisation is the sender or the recipient.
    """

    id: str
    effect: str
    sender: PartyScope
    recipient: PartyScope
    categories: frozenset[str] | None
    purposes: frozenset[str] | None
    relation: str | None
    requires_referral: bool
    statutory: bool
    citation: str
    needs_check: bool
    reason: str
    source: str
    line: int
    involves_org: str | None = None
    gdpr: GdprBasis | None = None
    secrecy: SecrecyException | None = None


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    kind: str  # "taxonomy" | "baseline" | "municipal" | "signals"
    org: str | None
    canonical: str  # canonical JSON of the parsed contents, input to the version hash


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the engine needs, validated. Build it with ``loader.load_policy``."""

    version: str
    categories: Mapping[str, Category]  # data-item categories (policies/taxonomy.toml) only
    identifiers: Mapping[str, Identifier]  # identifier pseudo-category -> identifier
    org_kinds: frozenset[str]
    organisations: Mapping[str, str]  # org id -> org kind
    roles: frozenset[str]
    purposes: Mapping[str, Purpose]
    guards: Mapping[str, Guard]
    rules: tuple[Rule, ...]
    sources: tuple[SourceFile, ...]
    #: Signals of sensitive categories in free text (``signals.toml``).
    signals: SignalSet = NO_SIGNALS
    profile: str = DEFAULT_PROFILE
    organisation_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    org_kind_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def rule(self, rule_id: str) -> Rule | Guard:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return self.guards[rule_id]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)


def frozen_mapping(data: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(data))
