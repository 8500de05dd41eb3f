"""The policy decision point: a pure function from an ``ItemRequest`` to a frozen
``Decision``, compiled from a loaded ``Policy``.

Order of evaluation (the same for every request, see policies/README.md):

1. ``unknown-vocabulary``: an unknown organisation, role, category or purpose is denied.
2. A matching ``deny`` rule decides at once: a deny rule beats any permit and any consent.
3. ``purpose-binding``: the purpose must carry the category at all (``general`` carries none).
4. ``no-client-link``: client data needs a linked client.
5. A matching ``redact`` rule decides (unless a prohibition applies and it is not statutory).
6. Permitting rules, in order: plain permits, then ``permit_with_consent`` (valid, covering
   consent), then permits conditional on a recorded § 35(2) referral. Across organisations a
   client's disclosure prohibition blocks every rule that is not ``statutory``.
7. Nothing usable: deny, naming the rule whose condition failed, or ``default-deny``.

An identifier found in free text (IBAN, phone, e-mail) is decided by the same steps under its
pseudo-category ``identifier.<kind>`` (``decide_identifier``). Only rules that name the
identifier match it, no consent or referral can cover it, and withholding it always means
redacting the span: every ``deny`` outcome comes back as ``redact`` with the same rule,
citation and basis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from consult.model.identifiers import ClientRef
from consult.policy.consent import CONSENT_FAILURE_TEXT, consent_failure
from consult.policy.explain import explain_lines
from consult.policy.model import (
    CLIENT_LINK_KIND,
    Consent,
    Decision,
    ItemRequest,
    Party,
    Prohibition,
)
from consult.policy.rules import Category, Guard, Policy, Rule
from consult.policy.signals import SignalDetector, SignalSet

_PLAIN: Final = 0
_CONSENT: Final = 1
_REFERRAL: Final = 2

@dataclass(frozen=True, slots=True)
class _Candidate:
    kind: int
    rule: Rule
    decision: Decision | None = None  # prebuilt for plain and referral permits
    overriding: Decision | None = None  # the same, when it overrides a prohibition


@dataclass(slots=True)
class _Plan:
    """What can be decided for one (sender, recipient, category, purpose) shape before
    looking at the client, the consent, the prohibitions and the referral."""

    fixed: Decision | None = None
    client_data: bool = True
    cross_org: bool = True
    redact: Rule | None = None
    candidates: tuple[_Candidate, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class _IdentifierPlan:
    """The whole decision for one identifier shape: with no consent or referral in play it
    depends only on whether a client is linked and whether a prohibition applies."""

    fixed: Decision | None
    cross_org: bool = True
    open: Decision | None = None
    prohibited: Decision | None = None


#: Detectors compiled in this process, by the identity of their (immutable) signal set, which
#: each entry keeps alive; oldest first. A policy loaded again from unchanged files is the same
#: object (``loader.load_policy``), so a new engine over it reuses the compiled detector.
_DETECTORS: dict[int, tuple[SignalSet, SignalDetector]] = {}
_DETECTORS_KEPT: Final = 8


def _detector(signals: SignalSet) -> SignalDetector:
    entry = _DETECTORS.get(id(signals))
    if entry is not None and entry[0] is signals:
        return entry[1]
    detector = SignalDetector(signals)
    while len(_DETECTORS) >= _DETECTORS_KEPT:
        del _DETECTORS[next(iter(_DETECTORS))]
    _DETECTORS[id(signals)] = (signals, detector)
    return detector


class PolicyEngine:
    """Decides items against one loaded ``Policy``. Pure: the same request always gets
    the same decision. Decision plans are compiled per request shape on first use and
    kept in a dict keyed by organisation class (named org or org kind), roles, relation,
    category and purpose, so the cache stays small however many organisations there are."""

    def __init__(self, policy: Policy) -> None:
        self.replace(policy)

    def replace(self, policy: Policy) -> None:
        """Decide by ``policy`` from now on (a reload): every compiled plan is dropped at once."""
        self._policy = policy
        self._version = policy.version
        named = {org for rule in policy.rules for org in rule.sender.orgs | rule.recipient.orgs}
        named |= {rule.involves_org for rule in policy.rules if rule.involves_org}
        self._org_class: dict[str, str] = {
            org: (org if org in named else "kind:" + kind)
            for org, kind in policy.organisations.items()
        }
        self._by_category: dict[str, tuple[Rule, ...]] = {
            name: tuple(r for r in policy.rules if r.categories is None or name in r.categories)
            for name in policy.categories
        }
        # Identifier rules always name their identifiers: "any category" is not one of them.
        self._by_category.update({
            name: tuple(r for r in policy.rules if r.categories and name in r.categories)
            for name in policy.identifiers
        })
        self._identifier_of_kind: dict[str, str] = {
            spec.kind: name for name, spec in policy.identifiers.items()
        }
        self._guards: dict[str, Decision] = {
            gid: self._guard_decision(guard) for gid, guard in policy.guards.items()
        }
        self._redacted_guards: dict[str, Decision] = {
            gid: replace(decision, effect="redact") for gid, decision in self._guards.items()
        }
        self._signals = _detector(policy.signals)
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._identifier_plans: dict[tuple[Any, ...], _IdentifierPlan] = {}

    # -- vocabulary helpers -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def version(self) -> str:
        return self._version

    @property
    def signals(self) -> SignalDetector:
        """The detector of sensitive categories in free text (``signals.toml``)."""
        return self._signals

    @property
    def known_categories(self) -> frozenset[str]:
        """The data-item categories (the same as ``item_categories``)."""
        return frozenset(self._policy.categories)

    @property
    def item_categories(self) -> frozenset[str]:
        """The categories a structured data item may carry (policies/taxonomy.toml), and nothing else."""
        return frozenset(self._policy.categories)

    @property
    def identifier_categories(self) -> frozenset[str]:
        """The identifier pseudo-categories (``identifier.<kind>``). Not data-item
        categories: an item of one of these is unknown vocabulary to ``decide``."""
        return frozenset(self._policy.identifiers)

    @property
    def identifier_kinds(self) -> Mapping[str, str]:
        """Scanner kind (``iban``, ``phone``, ``email``) -> identifier pseudo-category."""
        return dict(self._identifier_of_kind)

    @property
    def known_purposes(self) -> frozenset[str]:
        return frozenset(self._policy.purposes)

    def purpose_allows(self, purpose: str, category: str) -> bool:
        """Whether ``purpose`` may carry ``category`` at all (purpose binding)."""
        spec = self._policy.purposes.get(purpose)
        return spec is not None and category in spec.categories

    def category(self, name: str) -> Category | None:
        return self._policy.categories.get(name)

    # -- deciding -----------------------------------------------------------------------

    def decide(self, req: ItemRequest) -> Decision:
        """The final decision for one structured data item to one recipient. An identifier
        pseudo-category is not a data-item category and is denied as unknown vocabulary."""
        sender, recipient = req.sender, req.recipient
        key = (self._org_class.get(sender.org), sender.role, self._org_class.get(recipient.org),
               recipient.role, sender.org == recipient.org, req.category, req.purpose)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._compile(req)
            if plan.fixed is not self._guards["unknown-vocabulary"]:
                # Only known names are cached, so arbitrary input cannot grow the cache.
                self._plans[key] = plan
        if plan.fixed is not None:
            return plan.fixed
        if plan.client_data and req.client_ref is None:
            return self._guards["no-client-link"]
        prohibited = plan.cross_org and bool(req.prohibitions) and self.prohibition_applies(req)
        if plan.redact is not None:
            return self._redact(plan.redact, prohibited)
        return self._permit(plan, req, prohibited)

    def decide_identifier(self, kind: str, sender: Party, recipient: Party, purpose: str,
                          client_ref: ClientRef | None, prohibitions: tuple[Prohibition, ...],
                          now: datetime) -> Decision:
        """Whether ``recipient`` may see an identifier of ``kind`` (``iban``, ``phone`` or
        ``email``, as found by ``consult.policy.scan``) that ``sender`` wrote in free text:
        effect ``permit``, or ``redact`` (the span is replaced by a marker for this reader).

        A ``hetu`` is not decided here (ValueError): it is always replaced by the client
        link (category ``identity.hetu``); an unknown kind is a ValueError too. Names the
        policy does not know are redacted, never raised. ``now`` is the decision time; no
        identifier rule depends on it today.
        """
        category = self._identifier_of_kind.get(kind)
        if category is None:
            if kind == CLIENT_LINK_KIND:
                raise ValueError("an identity code in text is replaced by the client link "
                                 "(category identity.hetu), not decided as an identifier")
            raise ValueError(f"unknown identifier kind {kind!r}")
        key = (self._org_class.get(sender.org), sender.role, self._org_class.get(recipient.org),
               recipient.role, sender.org == recipient.org, category, purpose)
        plan = self._identifier_plans.get(key)
        if plan is None:
            plan = self._compile_identifier(
                ItemRequest(sender, recipient, category, purpose, None, None, (), None, now))
            if plan.fixed is not self._redacted_guards["unknown-vocabulary"]:
                # Only known names are cached, so arbitrary input cannot grow the cache.
                self._identifier_plans[key] = plan
        if plan.fixed is not None:
            return plan.fixed
        if client_ref is None:
            return self._redacted_guards["no-client-link"]
        if plan.cross_org and prohibitions and _prohibits(prohibitions, client_ref, category,
                                                          recipient.org):
            return plan.prohibited  # type: ignore[return-value]
        return plan.open  # type: ignore[return-value]

    def evaluate(self, req: ItemRequest) -> Decision:
        """``decide`` for a data-item category; ``decide_identifier`` for an identifier
        pseudo-category (whose decision ignores the request's consent and referral). For
        tools that describe both as requests: the case runner, explain, the widening check."""
        spec = self._policy.identifiers.get(req.category)
        if spec is None:
            return self.decide(req)
        return self.decide_identifier(spec.kind, req.sender, req.recipient, req.purpose,
                                      req.client_ref, req.prohibitions, req.now)

    def _redact(self, rule: Rule, prohibited: bool) -> Decision:
        if prohibited and not rule.statutory:
            return self._guards["client-prohibition"]
        flags = frozenset({"prohibition_overridden"}) if prohibited else frozenset()
        return Decision("redact", rule.id, rule.citation, self._version, "rule:" + rule.id,
                        rule.reason, flags=flags)

    def _permit(self, plan: _Plan, req: ItemRequest, prohibited: bool) -> Decision:
        blocked = False
        consent_fail: tuple[Rule, str] | None = None
        referral_fail: Rule | None = None
        for cand in plan.candidates:
            rule = cand.rule
            if cand.kind == _REFERRAL and (req.referral is None or not req.referral.is_recorded):
                if req.referral is not None and referral_fail is None:
                    referral_fail = rule
                continue
            if prohibited and not rule.statutory:
                blocked = True
                continue
            if cand.kind != _CONSENT:
                return cand.overriding if prohibited else cand.decision  # type: ignore[return-value]
            failure = consent_failure(req.consent, req.client_ref, req.category,
                                      req.recipient.org, req.recipient.role,
                                      req.recipient.user_id, req.purpose, req.now, req.sender.org)
            if failure is None:
                return self._consent_permit(rule, req.consent, prohibited)  # type: ignore[arg-type]
            if consent_fail is None:
                consent_fail = (rule, failure)
        if blocked:
            return self._guards["client-prohibition"]
        if referral_fail is not None:
            return Decision(
                "deny", referral_fail.id, referral_fail.citation, self._version, "default-deny",
                "A referral without consent needs a recorded § 35(2) condition, its "
                "justification and why consent could not be obtained.",
                flags=frozenset({"referral_incomplete"}))
        if consent_fail is not None:
            return self._consent_deny(*consent_fail, req.consent)
        return self._guards["default-deny"]

    def _consent_permit(self, rule: Rule, consent: Consent, prohibited: bool) -> Decision:
        flags = frozenset({"prohibition_overridden"}) if prohibited else frozenset()
        return Decision("permit", rule.id, rule.citation, self._version,
                        f"consent:{consent.id}@{consent.version}", rule.reason,
                        consent.id, consent.version, flags)

    def _consent_deny(self, rule: Rule, failure: str, consent: Consent | None) -> Decision:
        reason = f"{rule.reason} Needs a valid consent that covers it: {CONSENT_FAILURE_TEXT[failure]}."
        return Decision("deny", rule.id, rule.citation, self._version, "default-deny", reason,
                        consent.id if consent else None, consent.version if consent else None,
                        frozenset({failure}))

    @staticmethod
    def prohibition_applies(req: ItemRequest) -> bool:
        """Whether one of the client's prohibitions covers this item and recipient."""
        return _prohibits(req.prohibitions, req.client_ref, req.category, req.recipient.org)

    # -- compiling ----------------------------------------------------------------------

    def _compile_identifier(self, req: ItemRequest) -> _IdentifierPlan:
        """The data-item steps run once per shape, with and without a prohibition, under
        the identifier's pseudo-category; every deny becomes a redact."""
        plan = self._compile(req, identifier=True)
        if plan.fixed is not None:
            return _IdentifierPlan(fixed=self._as_redact(plan.fixed))

        def outcome(prohibited: bool) -> Decision:
            if plan.redact is not None:
                return self._as_redact(self._redact(plan.redact, prohibited))
            return self._as_redact(self._permit(plan, req, prohibited))

        return _IdentifierPlan(fixed=None, cross_org=plan.cross_org, open=outcome(False),
                               prohibited=outcome(True))

    def _as_redact(self, decision: Decision) -> Decision:
        if decision.effect != "deny":
            return decision
        if decision is self._guards.get(decision.rule_id):
            return self._redacted_guards[decision.rule_id]
        return replace(decision, effect="redact")

    def _compile(self, req: ItemRequest, identifier: bool = False) -> _Plan:
        policy = self._policy
        if self._unknown(req, identifier):
            return _Plan(fixed=self._guards["unknown-vocabulary"])
        matching = [r for r in self._by_category[req.category] if self.mismatch(r, req) is None]
        for rule in matching:
            if rule.effect == "deny":
                return _Plan(fixed=Decision("deny", rule.id, rule.citation, self._version,
                                            "rule:" + rule.id, rule.reason))
        if not self.purpose_allows(req.purpose, req.category):
            return _Plan(fixed=self._guards["purpose-binding"])
        redact = next((r for r in matching if r.effect == "redact"), None)
        cross_org = req.sender.org != req.recipient.org
        candidates = sorted((self._candidate(r, cross_org) for r in matching
                             if r.effect in ("permit", "permit_with_consent")),
                            key=lambda c: c.kind)
        client_data = identifier or policy.categories[req.category].client_data
        return _Plan(client_data=client_data, cross_org=cross_org,
                     redact=redact, candidates=tuple(candidates))

    def _candidate(self, rule: Rule, cross_org: bool) -> _Candidate:
        if rule.effect == "permit_with_consent":
            return _Candidate(_CONSENT, rule)
        # Across organisations a plain permit rests on a statute (the loader requires its
        # secrecy exception to be one); within one organisation nothing is disclosed to
        # another controller: it is use according to the employee's tasks.
        basis = ("statute:" if cross_org else "internal:") + rule.id
        flags = frozenset({"referral_without_consent"}) if rule.requires_referral else frozenset()
        kind = _REFERRAL if rule.requires_referral else _PLAIN
        plain = Decision("permit", rule.id, rule.citation, self._version, basis, rule.reason,
                         flags=flags)
        overriding = Decision("permit", rule.id, rule.citation, self._version, basis,
                              rule.reason, flags=flags | {"prohibition_overridden"})
        return _Candidate(kind, rule, plain, overriding)

    def _unknown(self, req: ItemRequest, identifier: bool = False) -> bool:
        p = self._policy
        categories = p.identifiers if identifier else p.categories
        return (req.sender.org not in p.organisations or req.recipient.org not in p.organisations
                or req.sender.role not in p.roles or req.recipient.role not in p.roles
                or req.category not in categories or req.purpose not in p.purposes)

    def _guard_decision(self, guard: Guard) -> Decision:
        return Decision("deny", guard.id, guard.citation, self._version,
                        "default-deny" if guard.id == "default-deny" else "rule:" + guard.id,
                        guard.reason)

    def mismatch(self, rule: Rule, req: ItemRequest) -> str | None:
        """Why ``rule`` does not match the shape of ``req`` (None if it matches). Looks at
        parties, relation, category and purpose only, not at consent or referral."""
        orgs = self._policy.organisations
        s, r = req.sender, req.recipient
        if rule.involves_org is not None and rule.involves_org not in (s.org, r.org):
            return f"applies only to traffic involving {rule.involves_org}"
        if rule.categories is None and req.category in self._policy.identifiers:
            return "names no identifier (a rule for identifiers in text names them)"
        if rule.categories is not None and req.category not in rule.categories:
            return f"category {req.category} not in {', '.join(sorted(rule.categories))}"
        if not rule.sender.matches_org(s.org, orgs.get(s.org)):
            return f"sender org {s.org} not in scope ({rule.sender.describe()})"
        if not rule.sender.matches_role(s.role):
            return f"sender role {s.role} not in scope ({rule.sender.describe()})"
        if not rule.recipient.matches_org(r.org, orgs.get(r.org)):
            return f"recipient org {r.org} not in scope ({rule.recipient.describe()})"
        if not rule.recipient.matches_role(r.role):
            return f"recipient role {r.role} not in scope ({rule.recipient.describe()})"
        same = s.org == r.org
        if rule.relation == "same_org" and not same:
            return "applies only within one organisation"
        if rule.relation == "cross_org" and same:
            return "applies only across organisations"
        if rule.purposes is not None and req.purpose not in rule.purposes:
            return f"purpose {req.purpose} not in {', '.join(sorted(rule.purposes))}"
        return None

    # -- explaining ---------------------------------------------------------------------

    def explain(self, req: ItemRequest) -> list[str]:
        """Every rule considered, whether it matched and why, and the final decision."""
        return explain_lines(self, req)


def _prohibits(prohibitions: tuple[Prohibition, ...], client_ref: ClientRef | None, category: str,
               recipient_org: str) -> bool:
    """Whether one of the client's prohibitions covers this category and recipient org."""
    for p in prohibitions:
        if (p.client_ref == client_ref and (p.category is None or p.category == category)
                and (p.org is None or p.org == recipient_org)):
            return True
    return False
