"""Engine semantics: precedence, consent scope, referrals, prohibitions, decision contents."""

from __future__ import annotations

import shutil
from dataclasses import FrozenInstanceError
from datetime import timedelta

import pytest

from consult.policy.engine import PolicyEngine
from consult.policy.loader import load_policy
from consult.policy.model import Prohibition, Referral

from .support import CLIENT, NOW, POLICY_DIR, consent, engine, request, shipped_policy

REFERRAL = Referral("unable_to_look_after_self", "Synthetic justification.", "Synthetic: unreachable.")


# -- precedence ----------------------------------------------------------------------------

def test_deny_rule_beats_a_permit_rule_that_also_matches(tmp_path):
    """A deny rule beats any permit: a permit for decision content to Kela changes nothing."""
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    extra = ('\n[[rule]]\nid = "zz-permit-decision-content"\neffect = "permit"\n'
             'statutory = true\ncategories = ["decision.content"]\nreason = "x"\n'
             'gdpr = { articles = ["6(1)(e)"], law = "synthetic act 1/2099" }\n'
             'secrecy = { exception = "statute", citation = "Synthetic act 1/2099 1 §." }\n')
    (tmp_path / "baseline.toml").write_text(
        (tmp_path / "baseline.toml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    eng = PolicyEngine(load_policy(tmp_path))
    req = request("vantaa/expert", "kela/advisor", "decision.content", "tt.income_calculation")
    assert eng.decide(req).rule_id == "kela-never-decision-content"
    same = request("vantaa/expert", "vantaa/expert", "decision.content", "tt.income_calculation")
    assert eng.decide(same).rule_id == "same-org-case-data"  # first matching permit wins


def test_prohibition_beats_consent():
    req = request("vantaa/social_worker", "kela/advisor", "health", "tt.service_guidance",
                  consent=consent(), prohibitions=(Prohibition(CLIENT, "health", None),))
    decision = engine().decide(req)
    assert (decision.effect, decision.rule_id) == ("deny", "client-prohibition")


def test_statutory_rule_overrides_prohibition():
    req = request("kela/advisor", "vantaa/expert", "income.kela_benefit",
                  "tt.income_calculation", prohibitions=(Prohibition(CLIENT),))
    decision = engine().decide(req)
    assert decision.effect == "permit"
    assert decision.basis == "statute:k2m-income-kela-benefit"
    assert "prohibition_overridden" in decision.flags


def test_non_statutory_permit_is_stopped_by_prohibition():
    req = request("vantaa/expert", "kela/advisor", "decision.period", "tt.application_intake",
                  prohibitions=(Prohibition(CLIENT, None, "kela"),))
    assert engine().decide(req).rule_id == "client-prohibition"


def test_referral_overrides_prohibition_and_is_flagged():
    req = request("kela/advisor", "vantaa/social_worker", "service_need.referral",
                  "sh.referral", prohibitions=(Prohibition(CLIENT),), referral=REFERRAL)
    decision = engine().decide(req)
    assert decision.effect == "permit"
    assert decision.flags == {"referral_without_consent", "prohibition_overridden"}
    assert decision.consent_id is None


# -- consent scope -------------------------------------------------------------------------

HEALTH_TO_KELA = ("vantaa/social_worker", "kela/advisor", "health", "tt.service_guidance")


@pytest.mark.parametrize(("overrides", "flag"), [
    ({"client_ref": "client-b"}, "consent_other_client"),
    ({"recipient_orgs": frozenset({"vantaa"})}, "consent_org_out_of_scope"),
    ({"purposes": frozenset({"sh.referral"})}, "consent_purpose_out_of_scope"),
    ({"valid_until": NOW - timedelta(seconds=1)}, "consent_expired"),
    ({"valid_until": NOW}, "consent_expired"),
    ({"status": "expired"}, "consent_expired"),
    ({"status": "withdrawn"}, "consent_withdrawn"),
    ({"status": "suspended"}, "consent_suspended"),
    ({"status": "draft"}, "consent_not_active"),
    ({"valid_from": NOW + timedelta(seconds=1)}, "consent_not_yet_valid"),
    ({"categories": frozenset({"debt"})}, "consent_category_out_of_scope"),
    ({"recipient_roles": frozenset({"expert"})}, "consent_role_out_of_scope"),
    ({"recipient_users": frozenset({"someone-else"})}, "consent_user_out_of_scope"),
    ({"disclosing_org": "kela"}, "consent_discloser_out_of_scope"),
])
def test_consent_that_does_not_cover_the_item_is_not_a_permit(overrides, flag):
    decision = engine().decide(request(*HEALTH_TO_KELA, consent=consent(**overrides)))
    assert (decision.effect, decision.rule_id) == ("deny", "m2k-health-consent")
    assert decision.flags == {flag}
    assert decision.consent_id == "c-1" and decision.consent_version == 1
    assert decision.basis == "default-deny"


def test_consent_naming_no_disclosing_organisation_covers_nothing():
    """Property: a consent recorded before consents named their discloser, where the record
    leaves it open, waives no one's secrecy."""
    from consult.policy.consent import consent_failure

    c = consent()
    assert c.disclosing_org is None
    assert consent_failure(c, CLIENT, "health", "kela", "advisor", None, "tt.service_guidance", NOW,
                           "vantaa") == "consent_discloser_out_of_scope"


def test_covering_consent_permits_and_names_its_version():
    c = consent(version=3, recipient_roles=frozenset({"advisor"}))
    decision = engine().decide(request(*HEALTH_TO_KELA, consent=c))
    assert decision.effect == "permit"
    assert decision.basis == "consent:c-1@3"
    assert (decision.consent_id, decision.consent_version) == ("c-1", 3)
    assert decision.flags == frozenset()


def test_consent_naming_the_user_covers_that_user_only():
    c = consent(recipient_users=frozenset({"adv-1"}))
    ok = request("vantaa/social_worker", "kela/advisor/adv-1", "health", "tt.service_guidance",
                 consent=c)
    anonymous = request(*HEALTH_TO_KELA, consent=c)
    assert engine().decide(ok).effect == "permit"
    assert engine().decide(anonymous).flags == {"consent_user_out_of_scope"}


def test_missing_consent():
    decision = engine().decide(request(*HEALTH_TO_KELA))
    assert decision.flags == {"consent_missing"} and decision.consent_id is None


# -- referrals -----------------------------------------------------------------------------

@pytest.mark.parametrize("condition", ["unable_to_look_after_self", "child_interest"])
def test_both_35_2_conditions_allow_a_referral_without_consent(condition):
    req = request("kela/advisor", "vantaa/social_worker", "service_need.referral", "sh.referral",
                  referral=Referral(condition, "Synthetic.", "Synthetic: unreachable."))
    decision = engine().decide(req)
    assert decision.effect == "permit"
    assert decision.flags == {"referral_without_consent"}
    assert decision.basis == "statute:k2m-referral-without-consent-35-2"


def test_referral_is_not_a_way_round_the_municipality_to_kela_direction():
    req = request("vantaa/social_worker", "kela/advisor", "service_need.referral",
                  "sh.referral", referral=REFERRAL)
    assert engine().decide(req).rule_id == "default-deny"


def test_referral_justification_is_not_in_repr():
    assert "Synthetic" not in repr(REFERRAL)


# -- decisions -----------------------------------------------------------------------------

def test_every_decision_carries_the_policy_version_and_a_citation():
    eng = engine()
    for category in eng.known_categories:
        for purpose in eng.known_purposes:
            for sender, recipient in [("kela/advisor", "vantaa/expert"),
                                      ("vantaa/expert", "kela/advisor"),
                                      ("vantaa/expert", "vantaa/social_worker")]:
                d = eng.decide(request(sender, recipient, category, purpose, consent=consent()))
                assert d.policy_version == shipped_policy().version
                assert d.citation and d.reason and d.rule_id
                assert d.effect in ("permit", "deny", "redact")


def test_decision_is_frozen():
    decision = engine().decide(request(*HEALTH_TO_KELA))
    with pytest.raises(FrozenInstanceError):
        decision.effect = "permit"  # type: ignore[misc]


def test_reason_carries_no_client_reference():
    for c in (None, consent(), consent(status="withdrawn")):
        d = engine().decide(request(*HEALTH_TO_KELA, consent=c))
        assert CLIENT not in d.reason


def test_purpose_helpers():
    eng = engine()
    assert eng.purpose_allows("tt.application_intake", "population_register")
    assert not eng.purpose_allows("general", "application.status")
    assert not eng.purpose_allows("no-such-purpose", "application.status")
    assert "general" in eng.known_purposes and "health" in eng.known_categories


def test_unknown_names_never_raise():
    d = engine().decide(request("mars/advisor", "kela/ghost", "x.y", "z"))
    assert (d.effect, d.rule_id) == ("deny", "unknown-vocabulary")


def test_configured_municipality_gets_the_baseline_by_kind():
    eng = PolicyEngine(load_policy(POLICY_DIR, organisations={"espoo": "wellbeing_county"}))
    d = eng.decide(request("espoo/expert", "kela/advisor", "application.status",
                           "tt.application_intake"))
    assert (d.effect, d.rule_id) == ("permit", "m2k-application-status")
    # Vantaa's own restriction does not reach Espoo.
    c = consent(recipient_orgs=frozenset({"kela"}))
    d = eng.decide(request("espoo/expert", "kela/advisor", "social_work.assessment",
                           "tt.service_guidance", consent=c))
    assert d.rule_id == "m2k-social-work-assessment-consent" and d.effect == "permit"
    d = eng.decide(request("vantaa/expert", "kela/advisor", "social_work.assessment",
                           "tt.service_guidance", consent=c))
    assert d.rule_id == "vantaa-assessment-only-by-social-worker"


def test_explain_lists_every_rule_and_the_decision():
    req = request("kela/advisor", "vantaa/social_worker", "housing.risk", "sh.referral",
                  referral=REFERRAL)
    lines = engine().explain(req)
    text = "\n".join(lines)
    for rule in shipped_policy().rules:
        assert f"rule {rule.id} " in text
    assert "rule k2m-referral-without-consent-35-2 [permit, statutory]" in text
    assert "§ 35(2) referral recorded" in text
    assert "citation: Secrecy exception: Sosiaalihuoltolaki 1301/2014 35 § 2 mom." in text
    assert "decision: PERMIT by k2m-referral-without-consent-35-2" in text
    assert "  GDPR basis: EU GDPR 2016/679 art. 6(1)(c)" in text
    assert ("  exception to secrecy (julkisuuslaki 621/1999 29 § 1 mom.): a statute: "
            "Sosiaalihuoltolaki 1301/2014 35 § 2 mom.") in text
    assert CLIENT not in text and "Synthetic" not in text


def test_unknown_names_are_not_cached():
    """Arbitrary category strings from input must not grow the engine's plan cache."""
    eng = PolicyEngine(shipped_policy())
    for i in range(100):
        eng.decide(request("vantaa/expert", "kela/advisor", f"junk.{i}", "general"))
    assert len(eng._plans) == 0  # noqa: SLF001 - white-box check of the bound
