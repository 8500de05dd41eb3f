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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from consult.policy.consent import CONSENT_FAILURE_TEXT, consent_failure
from consult.policy.explain import explain_lines
from consult.policy.model import Consent, Decision, ItemRequest
from consult.policy.rules import Category, Guard, Policy, Rule

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


class PolicyEngine:
    """Decides items against one loaded ``Policy``. Pure: the same request always gets
    the same decision. Decision plans are compiled per request shape on first use and
    kept in a dict keyed by organisation class (named org or org kind), roles, relation,
    category and purpose, so the cache stays small however many organisations there are."""

    def __init__(self, policy: Policy) -> None:
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
        self._guards: dict[str, Decision] = {
            gid: self._guard_decision(guard) for gid, guard in policy.guards.items()
        }
        self._plans: dict[tuple, _Plan] = {}

    # -- vocabulary helpers -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def version(self) -> str:
        return self._version

    @property
    def known_categories(self) -> frozenset[str]:
        return frozenset(self._policy.categories)

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
        """The final decision for one item to one recipient."""
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
                                      req.recipient.user_id, req.purpose, req.now)
            if failure is None:
                return self._consent_permit(rule, req.consent, prohibited)  # type: ignore[arg-type]
            if consent_fail is None:
                consent_fail = (rule, failure)
        if blocked:
            return self._guards["client-prohibition"]
        if referral_fail is not None:
            return Decision(
                "deny", referral_fail.id, referral_fail.citation, self._version, "default-deny",
                "A referral without consent needs a recorded § 35(2) condition and its "
                "justification.", flags=frozenset({"referral_incomplete"}))
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
        for p in req.prohibitions:
            if (p.client_ref == req.client_ref
                    and (p.category is None or p.category == req.category)
                    and (p.org is None or p.org == req.recipient.org)):
                return True
        return False

    # -- compiling ----------------------------------------------------------------------

    def _compile(self, req: ItemRequest) -> _Plan:
        policy = self._policy
        if self._unknown(req):
            return _Plan(fixed=self._guards["unknown-vocabulary"])
        matching = [r for r in self._by_category[req.category] if self.mismatch(r, req) is None]
        for rule in matching:
            if rule.effect == "deny":
                return _Plan(fixed=Decision("deny", rule.id, rule.citation, self._version,
                                            "rule:" + rule.id, rule.reason))
        if not self.purpose_allows(req.purpose, req.category):
            return _Plan(fixed=self._guards["purpose-binding"])
        redact = next((r for r in matching if r.effect == "redact"), None)
        candidates = sorted((self._candidate(r) for r in matching
                             if r.effect in ("permit", "permit_with_consent")),
                            key=lambda c: c.kind)
        return _Plan(client_data=policy.categories[req.category].client_data,
                     cross_org=req.sender.org != req.recipient.org,
                     redact=redact, candidates=tuple(candidates))

    def _candidate(self, rule: Rule) -> _Candidate:
        if rule.effect == "permit_with_consent":
            return _Candidate(_CONSENT, rule)
        basis = ("statute:" if rule.statutory else "policy:") + rule.id
        flags = frozenset({"referral_without_consent"}) if rule.requires_referral else frozenset()
        kind = _REFERRAL if rule.requires_referral else _PLAIN
        plain = Decision("permit", rule.id, rule.citation, self._version, basis, rule.reason,
                         flags=flags)
        overriding = Decision("permit", rule.id, rule.citation, self._version, basis,
                              rule.reason, flags=flags | {"prohibition_overridden"})
        return _Candidate(kind, rule, plain, overriding)

    def _unknown(self, req: ItemRequest) -> bool:
        p = self._policy
        return (req.sender.org not in p.organisations or req.recipient.org not in p.organisations
                or req.sender.role not in p.roles or req.recipient.role not in p.roles
                or req.category not in p.categories or req.purpose not in p.purposes)

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
