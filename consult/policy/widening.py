"""Decides whether a rule added on top of the baseline could ever disclose more than the
baseline alone, by checking every request shape the rule can match. The domain is small
(organisations x roles x categories x purposes), so the check is exhaustive. Identifier
pseudo-categories are checked when the rule names them (a rule for any category never
matches an identifier)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from itertools import product

from consult.model.identifiers import ClientRef
from consult.policy.engine import PolicyEngine
from consult.policy.model import Consent, ItemRequest, Party, Prohibition, Referral
from consult.policy.rules import Policy, Rule, frozen_mapping

_RANK = {"deny": 0, "redact": 1, "permit": 2}
_NOW = datetime(2025, 1, 1, tzinfo=UTC)
_CLIENT = ClientRef("probe-client")


def first_widening(baseline: Policy, rule: Rule) -> str | None:
    """A description of the first request for which ``baseline`` + ``rule`` decides more
    permissively than ``baseline`` alone, or None if there is none."""
    # One extra organisation per kind stands for the organisations not named in the
    # taxonomy, so that kind-scoped rules are checked across two orgs of the same kind.
    orgs = dict(baseline.organisations)
    orgs.update({f"~other-{kind}": kind for kind in baseline.org_kinds})
    base = replace(baseline, organisations=frozen_mapping(orgs), version="check")
    before = PolicyEngine(base)
    after = PolicyEngine(replace(base, rules=(*baseline.rules, rule)))
    senders = [o for o, k in orgs.items() if rule.sender.matches_org(o, k)]
    recipients = [o for o, k in orgs.items() if rule.recipient.matches_org(o, k)]
    roles = sorted(baseline.roles)
    shapes = product(senders, sorted(rule.sender.roles or roles), recipients,
                     sorted(rule.recipient.roles or roles),
                     sorted(rule.categories or baseline.categories),
                     sorted(rule.purposes or baseline.purposes))
    for s_org, s_role, r_org, r_role, category, purpose in shapes:
        if rule.involves_org and rule.involves_org not in (s_org, r_org):
            continue
        for req in _contexts(orgs, baseline, Party(s_org, s_role), Party(r_org, r_role),
                             category, purpose):
            if _RANK[after.evaluate(req).effect] > _RANK[before.evaluate(req).effect]:
                return (f"{s_org}/{s_role} -> {r_org}/{r_role}, {category}, {purpose}"
                        f"{' with consent' if req.consent else ''}"
                        f"{' with referral' if req.referral else ''}"
                        f"{' despite a prohibition' if req.prohibitions else ''}")
    return None


def _contexts(orgs: dict[str, str], policy: Policy, sender: Party, recipient: Party,
              category: str, purpose: str) -> list[ItemRequest]:
    consent = Consent("probe", 1, _CLIENT, "active", frozenset(policy.categories),
                      frozenset(orgs), frozenset(), frozenset(), frozenset(policy.purposes),
                      _NOW.replace(year=2000), None, disclosing_org=sender.org)
    referral = Referral("unable_to_look_after_self", "probe", "probe")
    prohibition = (Prohibition(_CLIENT),)
    return [ItemRequest(sender, recipient, category, purpose, _CLIENT, c, p, r, _NOW)
            for c, r, p in product((None, consent), (None, referral), ((), prohibition))]
