"""Human-readable trace of one decision: every guard and rule in evaluation order, whether
it matched and why, and the final decision with both bases of a disclosure across
organisations (the GDPR basis and the exception to secrecy). Works for a data item and for
an identifier in free text (pseudo-category ``identifier.<kind>``). Carries no personal data
(the client is only said to be linked or not)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from consult.policy.consent import CONSENT_FAILURE_TEXT, consent_failure
from consult.policy.model import Decision, ItemRequest
from consult.policy.rules import Policy, Rule

_CHECK = "  [needs checking against Finlex]"

if TYPE_CHECKING:
    from consult.policy.engine import PolicyEngine


def explain_lines(engine: PolicyEngine, req: ItemRequest) -> list[str]:
    policy = engine.policy
    s, r = req.sender, req.recipient
    same = s.org == r.org
    identifier = req.category in policy.identifiers
    if identifier:
        # Nothing can cover an identifier in text but a rule that names it.
        req = replace(req, consent=None, referral=None)
    lines = [
        f"request: {s.org}/{s.role} -> {r.org}/{r.role}, category {req.category}, "
        f"purpose {req.purpose}, {'within one organisation' if same else 'across organisations'}",
        f"organisations: {_org(policy, s.org)}; {_org(policy, r.org)}",
    ]
    about = _decision_of(policy, req.category)
    if about:
        lines.append(f"category {req.category}: {about}")
    lines += [
        f"context: client linked {'yes' if req.client_ref else 'no'}; "
        f"consent {_consent_summary(req)}; "
        f"prohibitions for this client {_prohibition_count(req)}; "
        f"referral {_referral_summary(req)}",
        f"policy profile: {policy.profile}; version: {policy.version}",
    ]
    if identifier:
        lines.append("identifier in free text: decided like a data item, but withholding it "
                     "means redacting the span for this reader (a deny becomes a redact); no "
                     "consent or referral covers it")
    lines.append(f"guard unknown-vocabulary: {_vocabulary(engine, req) or 'passed'}")
    prohibited = not same and engine.prohibition_applies(req)
    for rule in policy.rules:
        why = engine.mismatch(rule, req)
        head = f"rule {rule.id} [{rule.effect}{', statutory' if rule.statutory else ''}] " \
               f"({rule.source}:{rule.line})"
        if why is not None:
            lines.append(f"{head}: no match - {why}")
        else:
            lines.append(f"{head}: MATCHES{_usability(rule, req, prohibited)}{_bases_tag(rule)}")
    client_data = identifier or (req.category in policy.categories
                                 and policy.categories[req.category].client_data)
    binding = ("passed" if engine.purpose_allows(req.purpose, req.category)
               else f"purpose {req.purpose} does not carry {req.category}")
    lines.append(f"guard purpose-binding: {binding}")
    if client_data:
        lines.append("guard no-client-link: "
                     + ("passed" if req.client_ref else "client data without a linked client"))
    lines.append("guard client-prohibition: "
                 + ("a prohibition of this client applies" if prohibited else "none applies"))
    decision = engine.evaluate(req)
    lines.append(f"decision: {decision.effect.upper()} by {decision.rule_id} "
                 f"(basis {decision.basis})")
    lines.append(f"reason: {decision.reason}")
    lines.append(f"citation: {decision.citation}{_needs_check(engine, decision.rule_id)}")
    lines += _bases(policy, decision)
    if decision.flags:
        lines.append("flags: " + ", ".join(sorted(decision.flags)))
    return lines


def _org(policy: Policy, org: str) -> str:
    kind = policy.organisations.get(org)
    if kind is None:
        return f"{org} (unknown)"
    return (f"{org} = {policy.organisation_names.get(org, org)} "
            f"[{kind}: {policy.org_kind_labels.get(kind, kind)}]")


def _decision_of(policy: Policy, category: str) -> str:
    spec = policy.categories.get(category)
    if spec is None or spec.decision is None:
        return ""
    d = spec.decision
    kind = "any kind" if d.kind == "any" else f"{d.kind} assistance"
    issuer = policy.org_kind_labels.get(d.issuer, d.issuer)
    return f"the {d.part} of a decision issued by {issuer} [{d.issuer}], {kind}"


def _bases_tag(rule: Rule) -> str:
    if rule.gdpr is None or rule.secrecy is None:
        return ""
    return f" [GDPR art. {', '.join(rule.gdpr.articles)}; secrecy exception: {rule.secrecy.exception}]"


def _bases(policy: Policy, decision: Decision) -> list[str]:
    """Both bases of the decision's disclosure, or why there is no disclosure."""
    rule = next((r for r in policy.rules if r.id == decision.rule_id), None)
    if decision.basis.startswith("internal:"):
        return ["bases: no disclosure to another organisation; use within the controller "
                "according to the employee's tasks, so no GDPR disclosure basis or secrecy "
                "exception is needed"]
    if rule is None or rule.gdpr is None or rule.secrecy is None:
        return ["bases: nothing is disclosed" if decision.effect != "permit" else "bases: none"]
    head = ("bases of this disclosure:" if decision.effect == "permit"
            else "bases: nothing is disclosed; with its condition met this rule would rest on:")
    if rule.secrecy.exception == "consent":
        consent = (f"the client's consent {decision.consent_id}@{decision.consent_version}"
                   if decision.consent_id and decision.effect == "permit"
                   else "the client's consent")
        secrecy = f"{consent}: {rule.secrecy.citation}"
    else:
        secrecy = f"a statute: {rule.secrecy.citation}"
    return [
        head,
        f"  GDPR basis: {rule.gdpr.citation}{_CHECK if rule.gdpr.needs_check else ''}",
        "  exception to secrecy (julkisuuslaki 621/1999 29 § 1 mom.): "
        f"{secrecy}{_CHECK if rule.secrecy.needs_check else ''}",
    ]


def _usability(rule: Rule, req: ItemRequest, prohibited: bool) -> str:
    notes = []
    if rule.effect == "permit_with_consent":
        failure = consent_failure(req.consent, req.client_ref, req.category, req.recipient.org,
                                  req.recipient.role, req.recipient.user_id, req.purpose,
                                  req.now, req.sender.org)
        notes.append("consent covers it" if failure is None
                     else f"consent: {CONSENT_FAILURE_TEXT[failure]}")
    if rule.requires_referral:
        recorded = req.referral is not None and req.referral.is_recorded
        notes.append("§ 35(2) referral recorded" if recorded else "no recorded § 35(2) referral")
    if prohibited and rule.effect != "deny":
        notes.append("statutory: overrides the prohibition" if rule.statutory
                     else "blocked by the client's prohibition")
    return (" - " + "; ".join(notes)) if notes else ""


def _vocabulary(engine: PolicyEngine, req: ItemRequest) -> str:
    p = engine.policy
    unknown = [f"org {o}" for o in (req.sender.org, req.recipient.org) if o not in p.organisations]
    unknown += [f"role {x}" for x in (req.sender.role, req.recipient.role) if x not in p.roles]
    if req.category not in p.categories and req.category not in p.identifiers:
        unknown.append(f"category {req.category}")
    if req.purpose not in p.purposes:
        unknown.append(f"purpose {req.purpose}")
    return ("unknown " + ", ".join(unknown)) if unknown else ""


def _consent_summary(req: ItemRequest) -> str:
    c = req.consent
    return "none" if c is None else f"{c.id}@{c.version} ({c.status})"


def _prohibition_count(req: ItemRequest) -> int:
    return sum(1 for p in req.prohibitions if p.client_ref == req.client_ref)


def _referral_summary(req: ItemRequest) -> str:
    ref = req.referral
    if ref is None:
        return "none"
    return f"{ref.condition} ({'recorded' if ref.is_recorded else 'incomplete'})"


def _needs_check(engine: PolicyEngine, rule_id: str) -> str:
    try:
        rule = engine.policy.rule(rule_id)
    except KeyError:
        return ""
    return _CHECK if rule.needs_check else ""
