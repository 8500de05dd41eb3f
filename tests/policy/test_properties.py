"""Property tests over randomly generated requests: the legal limits hold for every input,
in every shipped profile (today's division and the 2015-16 experiment)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import cache

from hypothesis import given, settings, strategies as st

from consult.policy.consent import consent_failure
from consult.policy.engine import PolicyEngine
from consult.policy.loader import load_policy
from consult.model.vocabulary import CATEGORIES as API_CATEGORIES, PURPOSES as API_PURPOSES
from consult.policy.model import Consent, ItemRequest, Party, Prohibition, Referral

from .support import POLICY_DIR, PROFILES
from tests.conftest import examples

ORGS = {"kela": "benefit_institution", "vantaa": "wellbeing_county", "espoo": "wellbeing_county"}
ROLES = ["advisor", "expert", "social_worker", "privacy_officer", "admin"]
CATEGORIES = sorted(API_CATEGORIES)
PURPOSES = sorted(API_PURPOSES)
COUNTY_DECISIONS = ["decision.content", "decision.supplementary", "decision.preventive"]
#: Purposes under which a bank account may cross between Kela and the county, per profile.
IBAN_ACROSS = {
    "today": {"tt.application_intake", "tt.income_calculation", "tt.forwarding",
              "tt.supplementary_assistance", "tt.preventive_assistance"},
    "experiment-2015": {"tt.application_intake", "tt.income_calculation"},
}
CLIENTS = ["client-a", "client-b"]
BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
_RANK = {"deny": 0, "redact": 1, "permit": 2}


@cache
def policy(profile: str):
    return load_policy(POLICY_DIR, organisations={"espoo": "wellbeing_county"}, profile=profile)


@cache
def engine(profile: str) -> PolicyEngine:
    return PolicyEngine(policy(profile))


in_profiles = st.sampled_from(PROFILES)


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
                      st.sampled_from(["Synthetic.", " "]), st.sampled_from(["Synthetic: unreachable.", " "]))
requests = st.builds(
    ItemRequest, sender=parties, recipient=parties,
    category=st.sampled_from(CATEGORIES + ["unknown.category"]),
    purpose=st.sampled_from(PURPOSES), client_ref=st.none() | st.sampled_from(CLIENTS),
    consent=st.none() | consents, prohibitions=st.lists(prohibitions, max_size=3).map(tuple),
    referral=st.none() | referrals, now=times)

PROPERTY = settings(max_examples=examples(75, 1000), deadline=None)


def covered(req: ItemRequest) -> bool:
    return consent_failure(req.consent, req.client_ref, req.category, req.recipient.org,
                           req.recipient.role, req.recipient.user_id, req.purpose,
                           req.now, req.sender.org) is None


@PROPERTY
@given(requests, in_profiles)
def test_decision_is_deterministic(req, profile):
    first = engine(profile).decide(req)
    assert engine(profile).decide(req) == first
    assert PolicyEngine(policy(profile)).decide(req) == first  # a cold engine agrees with a warm one
    assert first.effect in ("permit", "deny", "redact")


@PROPERTY
@given(requests, in_profiles)
def test_decision_content_never_reaches_kela(req, profile):
    """The wellbeing services county's decision content never reaches Kela."""
    for category in COUNTY_DECISIONS:
        req = replace(req, category=category, recipient=replace(req.recipient, org="kela"))
        assert engine(profile).decide(req).effect == "deny"


@PROPERTY
@given(requests, in_profiles)
def test_child_welfare_never_crosses_organisations(req, profile):
    req = replace(req, category="child_welfare")
    if req.sender.org != req.recipient.org:
        assert engine(profile).decide(req).effect == "deny"


@PROPERTY
@given(requests, st.sampled_from(["health", "social_work.assessment", "debt"]), in_profiles)
def test_consent_categories_across_organisations_need_a_covering_consent(req, category, profile):
    req = replace(req, category=category)
    decision = engine(profile).decide(req)
    if req.sender.org != req.recipient.org and decision.effect == "permit":
        assert covered(req)
        assert decision.basis == f"consent:{req.consent.id}@{req.consent.version}"


@PROPERTY
@given(requests, st.sampled_from(["service_need.referral", "housing.risk"]), in_profiles)
def test_referral_categories_need_consent_or_a_recorded_referral(req, category, profile):
    req = replace(req, category=category)
    decision = engine(profile).decide(req)
    if req.sender.org != req.recipient.org and decision.effect == "permit":
        recorded = req.referral is not None and req.referral.is_recorded
        assert covered(req) or recorded
        assert ("referral_without_consent" in decision.flags) == (not decision.basis.startswith("consent:"))


@PROPERTY
@given(requests, in_profiles)
def test_a_prohibition_is_only_overridden_by_statute(req, profile):
    decision = engine(profile).decide(req)
    if (decision.effect != "deny" and req.sender.org != req.recipient.org
            and engine(profile).prohibition_applies(req)):
        assert decision.basis.startswith("statute:")
        assert "prohibition_overridden" in decision.flags


@PROPERTY
@given(requests, in_profiles)
def test_no_client_data_without_a_client_or_under_the_general_purpose(req, profile):
    if req.client_ref is None or req.purpose == "general":
        assert engine(profile).decide(req).effect == "deny"


@PROPERTY
@given(requests, in_profiles)
def test_permit_always_names_its_basis(req, profile):
    decision = engine(profile).decide(req)
    if decision.effect == "permit":
        kind = decision.basis.split(":")[0]
        same = req.sender.org == req.recipient.org
        assert kind in (("internal", "consent") if same else ("statute", "consent"))
        if decision.basis.startswith("consent:"):
            assert covered(req)
    assert decision.citation and decision.policy_version == policy(profile).version


@PROPERTY
@given(requests, in_profiles)
def test_removing_the_consent_never_discloses_more(req, profile):
    without = replace(req, consent=None)
    assert _RANK[engine(profile).decide(without).effect] <= _RANK[engine(profile).decide(req).effect]


@PROPERTY
@given(requests, prohibitions, in_profiles)
def test_adding_a_prohibition_never_discloses_more(req, prohibition, profile):
    more = replace(req, prohibitions=req.prohibitions + (prohibition,))
    assert _RANK[engine(profile).decide(more).effect] <= _RANK[engine(profile).decide(req).effect]


@PROPERTY
@given(requests, in_profiles)
def test_explain_ends_with_the_decision(req, profile):
    decision = engine(profile).decide(req)
    lines = engine(profile).explain(req)
    assert f"decision: {decision.effect.upper()} by {decision.rule_id} " in "\n".join(lines)


# -- identifiers in free text -------------------------------------------------------------------

identifier_requests = st.builds(
    ItemRequest, sender=parties, recipient=parties,
    category=st.sampled_from(["identifier.iban", "identifier.phone", "identifier.email"]),
    purpose=st.sampled_from(PURPOSES + ["unknown.purpose"]),
    client_ref=st.none() | st.sampled_from(CLIENTS), consent=st.none(),
    prohibitions=st.lists(prohibitions, max_size=3).map(tuple), referral=st.none(), now=times)


def decide_identifier(req: ItemRequest, profile: str):
    return engine(profile).decide_identifier(req.category.removeprefix("identifier."), req.sender,
                                      req.recipient, req.purpose, req.client_ref,
                                      req.prohibitions, req.now)


@PROPERTY
@given(identifier_requests, in_profiles)
def test_identifier_is_permitted_or_redacted_and_cold_agrees_with_warm(req, profile):
    first = decide_identifier(req, profile)
    assert first.effect in ("permit", "redact")
    assert PolicyEngine(policy(profile)).evaluate(req) == first
    assert first.citation and first.policy_version == policy(profile).version
    if first.effect == "permit":
        same = req.sender.org == req.recipient.org
        assert first.basis.split(":")[0] == ("internal" if same else "statute")


@PROPERTY
@given(identifier_requests, in_profiles)
def test_identifier_needs_a_client_link_and_a_client_purpose(req, profile):
    if req.client_ref is None or req.purpose == "general":
        assert decide_identifier(req, profile).effect == "redact"


@PROPERTY
@given(identifier_requests, in_profiles)
def test_identifier_across_organisations_is_stopped_by_a_prohibition(req, profile):
    if req.sender.org != req.recipient.org and engine(profile).prohibition_applies(req):
        assert decide_identifier(req, profile).effect == "redact"


@PROPERTY
@given(identifier_requests, prohibitions, in_profiles)
def test_adding_a_prohibition_never_reveals_an_identifier(req, prohibition, profile):
    more = replace(req, prohibitions=req.prohibitions + (prohibition,))
    assert _RANK[decide_identifier(more, profile).effect] <= _RANK[decide_identifier(req, profile).effect]


@PROPERTY
@given(identifier_requests, in_profiles)
def test_iban_crosses_organisations_only_for_social_assistance(req, profile):
    req = replace(req, category="identifier.iban")
    if req.sender.org != req.recipient.org and decide_identifier(req, profile).effect == "permit":
        assert req.purpose in IBAN_ACROSS[profile]


@PROPERTY
@given(identifier_requests, in_profiles)
def test_explain_an_identifier_ends_with_its_decision(req, profile):
    decision = decide_identifier(req, profile)
    text = "\n".join(engine(profile).explain(req))
    assert f"decision: {decision.effect.upper()} by {decision.rule_id} " in text
