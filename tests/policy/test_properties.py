"""Property tests over randomly generated requests: the legal limits hold for every input."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import cache

from hypothesis import given, settings, strategies as st

from consult.policy.consent import consent_failure
from consult.policy.engine import PolicyEngine
from consult.policy.loader import load_policy
from consult.policy.model import Consent, ItemRequest, Party, Prohibition, Referral

from .support import POLICY_DIR

ORGS = {"kela": "benefit_institution", "vantaa": "municipality", "espoo": "municipality"}
ROLES = ["advisor", "expert", "social_worker", "privacy_officer", "admin"]
CATEGORIES = ["application.status", "decision.period", "decision.content",
              "income.kela_benefit", "income.other", "population_register",
              "application.attachment", "social_work.assessment", "service_need.referral",
              "health", "debt", "housing.risk", "child_welfare", "identity.hetu"]
PURPOSES = ["general", "tt.application_intake", "tt.income_calculation", "tt.service_guidance",
            "sh.referral", "sh.multidisciplinary"]
CLIENTS = ["client-a", "client-b"]
BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
_RANK = {"deny": 0, "redact": 1, "permit": 2}


@cache
def policy():
    return load_policy(POLICY_DIR, organisations={"espoo": "municipality"})


@cache
def engine() -> PolicyEngine:
    return PolicyEngine(policy())


def subset(values):
    return st.frozensets(st.sampled_from(values))


orgs = st.sampled_from(list(ORGS) + ["turku"])
roles = st.sampled_from(ROLES + ["intern"])
parties = st.builds(Party, orgs, roles, st.sampled_from([None, "u-1", "u-2"]))
times = st.integers(-400, 400).map(lambda d: BASE + timedelta(days=d))
consents = st.builds(
    Consent, id=st.sampled_from(["c-1", "c-2"]), version=st.integers(1, 3),
    client_ref=st.sampled_from(CLIENTS),
    status=st.sampled_from(["active", "active", "suspended", "withdrawn", "expired"]),
    categories=subset(CATEGORIES), recipient_orgs=subset(list(ORGS)),
    recipient_roles=subset(ROLES), recipient_users=subset(["u-1", "u-2"]),
    purposes=subset(PURPOSES), valid_from=times, valid_until=st.none() | times,
    disclosing_org=st.none() | orgs)
prohibitions = st.builds(Prohibition, st.sampled_from(CLIENTS),
                         st.none() | st.sampled_from(CATEGORIES),
                         st.none() | st.sampled_from(list(ORGS)))
referrals = st.builds(Referral, st.sampled_from(["unable_to_look_after_self", "child_interest",
                                                 "other"]),
                      st.sampled_from(["Synthetic.", " "]))
requests = st.builds(
    ItemRequest, sender=parties, recipient=parties,
    category=st.sampled_from(CATEGORIES + ["unknown.category"]),
    purpose=st.sampled_from(PURPOSES), client_ref=st.none() | st.sampled_from(CLIENTS),
    consent=st.none() | consents, prohibitions=st.lists(prohibitions, max_size=3).map(tuple),
    referral=st.none() | referrals, now=times)

PROPERTY = settings(max_examples=400, deadline=None)


def covered(req: ItemRequest) -> bool:
    return consent_failure(req.consent, req.client_ref, req.category, req.recipient.org,
                           req.recipient.role, req.recipient.user_id, req.purpose,
                           req.now, req.sender.org) is None


@PROPERTY
@given(requests)
def test_decision_is_deterministic(req):
    first = engine().decide(req)
    assert engine().decide(req) == first
    assert PolicyEngine(policy()).decide(req) == first  # a cold engine agrees with a warm one
    assert first.effect in ("permit", "deny", "redact")


@PROPERTY
@given(requests)
def test_decision_content_never_reaches_kela(req):
    req = replace(req, category="decision.content", recipient=replace(req.recipient, org="kela"))
    assert engine().decide(req).effect == "deny"


@PROPERTY
@given(requests)
def test_child_welfare_never_crosses_organisations(req):
    req = replace(req, category="child_welfare")
    if req.sender.org != req.recipient.org:
        assert engine().decide(req).effect == "deny"


@PROPERTY
@given(requests, st.sampled_from(["health", "social_work.assessment", "debt"]))
def test_consent_categories_across_organisations_need_a_covering_consent(req, category):
    req = replace(req, category=category)
    decision = engine().decide(req)
    if req.sender.org != req.recipient.org and decision.effect == "permit":
        assert covered(req)
        assert decision.basis == f"consent:{req.consent.id}@{req.consent.version}"


@PROPERTY
@given(requests, st.sampled_from(["service_need.referral", "housing.risk"]))
def test_referral_categories_need_consent_or_a_recorded_referral(req, category):
    req = replace(req, category=category)
    decision = engine().decide(req)
    if req.sender.org != req.recipient.org and decision.effect == "permit":
        recorded = req.referral is not None and req.referral.is_recorded
        assert covered(req) or recorded
        assert ("referral_without_consent" in decision.flags) == (not decision.basis.startswith("consent:"))


@PROPERTY
@given(requests)
def test_a_prohibition_is_only_overridden_by_statute(req):
    decision = engine().decide(req)
    if (decision.effect != "deny" and req.sender.org != req.recipient.org
            and engine().prohibition_applies(req)):
        assert decision.basis.startswith("statute:")
        assert "prohibition_overridden" in decision.flags


@PROPERTY
@given(requests)
def test_no_client_data_without_a_client_or_under_the_general_purpose(req):
    if req.client_ref is None or req.purpose == "general":
        assert engine().decide(req).effect == "deny"


@PROPERTY
@given(requests)
def test_permit_always_names_its_basis(req):
    decision = engine().decide(req)
    if decision.effect == "permit":
        assert decision.basis.split(":")[0] in ("statute", "policy", "consent")
        if decision.basis.startswith("consent:"):
            assert covered(req)
    assert decision.citation and decision.policy_version == policy().version


@PROPERTY
@given(requests)
def test_removing_the_consent_never_discloses_more(req):
    without = replace(req, consent=None)
    assert _RANK[engine().decide(without).effect] <= _RANK[engine().decide(req).effect]


@PROPERTY
@given(requests, prohibitions)
def test_adding_a_prohibition_never_discloses_more(req, prohibition):
    more = replace(req, prohibitions=req.prohibitions + (prohibition,))
    assert _RANK[engine().decide(more).effect] <= _RANK[engine().decide(req).effect]


@PROPERTY
@given(requests)
def test_explain_ends_with_the_decision(req):
    decision = engine().decide(req)
    lines = engine().explain(req)
    assert f"decision: {decision.effect.upper()} by {decision.rule_id} " in "\n".join(lines)


# -- identifiers in free text -------------------------------------------------------------------

identifier_requests = st.builds(
    ItemRequest, sender=parties, recipient=parties,
    category=st.sampled_from(["identifier.iban", "identifier.phone", "identifier.email"]),
    purpose=st.sampled_from(PURPOSES + ["unknown.purpose"]),
    client_ref=st.none() | st.sampled_from(CLIENTS), consent=st.none(),
    prohibitions=st.lists(prohibitions, max_size=3).map(tuple), referral=st.none(), now=times)


def decide_identifier(req: ItemRequest):
    return engine().decide_identifier(req.category.removeprefix("identifier."), req.sender,
                                      req.recipient, req.purpose, req.client_ref,
                                      req.prohibitions, req.now)


@PROPERTY
@given(identifier_requests)
def test_identifier_is_permitted_or_redacted_and_cold_agrees_with_warm(req):
    first = decide_identifier(req)
    assert first.effect in ("permit", "redact")
    assert PolicyEngine(policy()).evaluate(req) == first
    assert first.citation and first.policy_version == policy().version
    if first.effect == "permit":
        assert first.basis.split(":")[0] in ("statute", "policy")


@PROPERTY
@given(identifier_requests)
def test_identifier_needs_a_client_link_and_a_client_purpose(req):
    if req.client_ref is None or req.purpose == "general":
        assert decide_identifier(req).effect == "redact"


@PROPERTY
@given(identifier_requests)
def test_identifier_across_organisations_is_stopped_by_a_prohibition(req):
    if req.sender.org != req.recipient.org and engine().prohibition_applies(req):
        assert decide_identifier(req).effect == "redact"


@PROPERTY
@given(identifier_requests, prohibitions)
def test_adding_a_prohibition_never_reveals_an_identifier(req, prohibition):
    more = replace(req, prohibitions=req.prohibitions + (prohibition,))
    assert _RANK[decide_identifier(more).effect] <= _RANK[decide_identifier(req).effect]


@PROPERTY
@given(identifier_requests)
def test_iban_crosses_organisations_only_for_social_assistance(req):
    req = replace(req, category="identifier.iban")
    if req.sender.org != req.recipient.org and decide_identifier(req).effect == "permit":
        assert req.purpose in ("tt.application_intake", "tt.income_calculation")


@PROPERTY
@given(identifier_requests)
def test_explain_an_identifier_ends_with_its_decision(req):
    decision = decide_identifier(req)
    text = "\n".join(engine().explain(req))
    assert f"decision: {decision.effect.upper()} by {decision.rule_id} " in text
