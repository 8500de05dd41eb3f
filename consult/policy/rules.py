"""The loaded policy as typed, immutable data: vocabulary (categories, organisations,
roles, purposes), built-in guards and the ordered rules, each with its citation."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Mapping

from consult.policy.signals import SignalSet

SENSITIVITIES: Final = ("low", "medium", "high", "very_high")
#: Identifier pseudo-categories are named ``identifier.<kind>``.
IDENTIFIER_PREFIX: Final = "identifier."
RELATIONS: Final = frozenset({"same_org", "cross_org"})

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
class Category:
    name: str
    description: str
    sensitivity: str
    client_data: bool


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


ANY_PARTY: Final = PartyScope()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a policy file. ``categories``/``purposes`` None mean any; ``categories``
    None means any data-item category, never an identifier (identifier rules name theirs).

    ``requires_referral`` makes a permit conditional on a recorded § 35(2) referral.
    ``involves_org`` is set for rules of a municipal file: such a rule only applies to
    traffic where that organisation is the sender or the recipient.
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
    categories: Mapping[str, Category]  # data-item categories (SPEC §6) only
    identifiers: Mapping[str, Identifier]  # identifier pseudo-category -> identifier
    org_kinds: frozenset[str]
    organisations: Mapping[str, str]  # org id -> org kind
    roles: frozenset[str]
    purposes: Mapping[str, Purpose]
    guards: Mapping[str, Guard]
    rules: tuple[Rule, ...]
    sources: tuple[SourceFile, ...]
    #: Signals of sensitive categories in free text (``signals.toml``).
    signals: SignalSet = SignalSet(categories=())

    def rule(self, rule_id: str) -> Rule | Guard:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return self.guards[rule_id]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)


def frozen_mapping(data: Mapping) -> Mapping:
    return MappingProxyType(dict(data))
