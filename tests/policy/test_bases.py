"""Two bases for every disclosure across organisations: a GDPR basis and an exception to
secrecy (julkisuuslaki 621/1999 § 29(1): a statute or the client's consent). The loader refuses
a permit that lacks either, naming the file, the line and the rule; the shipped profiles carry
both on every such permit, and the citation corrections stay made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from consult.policy.cases import case_files
from consult.policy.engine import PolicyEngine
from consult.policy.loader import PolicyError, load_policy
from consult.policy.model import Prohibition, Referral

from .support import CLIENT, POLICY_DIR, PROFILES, consent, engine, request, shipped_policy


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def rule_block(text: str, rule_id: str) -> tuple[int, int]:
    """Start and end offsets of one ``[[rule]]`` block."""
    start = text.index(f'id = "{rule_id}"')
    end = text.find("[[rule]]", start)
    return start, len(text) if end < 0 else end


def edit_rule(path: Path, rule_id: str, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = rule_block(text, rule_id)
    block = text[start:end]
    assert old in block, (rule_id, old)
    path.write_text(text[:start] + block.replace(old, new, 1) + text[end:], encoding="utf-8")


def drop_line(path: Path, rule_id: str, key: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = rule_block(text, rule_id)
    at = text.index(f"\n{key} = ", start)
    assert at < end
    stop = text.index("\n", at + 1)
    path.write_text(text[:at] + text[stop:], encoding="utf-8")


def load_error(directory: Path) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy(directory)
    return info.value


def rule_line(path: Path, rule_id: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(f'id = "{rule_id}"')) + 1


# -- the loader refuses a disclosure without both bases ------------------------------------

@pytest.mark.parametrize(("key", "missing"), [
    ("secrecy", "missing a secrecy exception (secrecy)"),
    ("gdpr", "missing a GDPR basis (gdpr)"),
])
def test_cross_org_permit_without_a_basis_is_refused_naming_the_rule(policy_dir, key, missing):
    """Property: no permit across organisations loads without a GDPR basis and a secrecy
    exception; the error names the file, the rule's line and the rule."""
    baseline = policy_dir / "baseline.toml"
    drop_line(baseline, "m2k-decision-period", key)
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("baseline.toml", rule_line(baseline, "m2k-decision-period"))
    assert "rule m2k-decision-period: a permit that can apply across organisations" in err.message
    assert missing in err.message


def test_consent_permit_without_bases_is_refused(policy_dir):
    baseline = policy_dir / "baseline.toml"
    drop_line(baseline, "k2m-debt-consent", "gdpr")
    drop_line(baseline, "k2m-debt-consent", "secrecy")
    err = load_error(policy_dir)
    assert "rule k2m-debt-consent" in err.message
    assert "missing a GDPR basis (gdpr) and a secrecy exception (secrecy)" in err.message


def test_a_policy_basis_is_no_exception_to_secrecy(policy_dir):
    """621/1999 § 29(1) knows a statute or a consent; a "policy" is neither."""
    edit_rule(policy_dir / "baseline.toml", "m2k-decision-period", 'exception = "statute"',
              'exception = "policy"')
    err = load_error(policy_dir)
    assert "rule m2k-decision-period: secrecy exception must be statute or consent" in err.message


@pytest.mark.parametrize("article", ["6(1)(a)", "9(2)(a)"])
def test_consent_is_not_an_authoritys_gdpr_basis(policy_dir, article):
    edit_rule(policy_dir / "baseline.toml", "m2k-health-consent", '"9(2)(b)"', f'"{article}"')
    err = load_error(policy_dir)
    assert f"GDPR art. {article} (consent) is not an authority's basis" in err.message
    assert "rule m2k-health-consent" in err.message


def test_an_art_9_exception_does_not_replace_an_art_6_basis(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "m2k-health-consent", '"6(1)(e)", ', "")
    assert "need 6(1)(c) or 6(1)(e)" in load_error(policy_dir).message


def test_health_needs_an_art_9_exception(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "k2m-health-consent",
              '["6(1)(e)", "9(2)(b)", "9(2)(h)"]', '["6(1)(e)"]')
    err = load_error(policy_dir)
    assert "health is a special category (GDPR art. 9(1))" in err.message
    assert "rule k2m-health-consent" in err.message


def test_a_consent_rule_rests_on_the_consent(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "k2m-debt-consent", 'exception = "consent"',
              'exception = "statute"')
    assert 'its secrecy exception must be "consent"' in load_error(policy_dir).message


def test_a_plain_permit_cannot_rest_on_a_consent_it_never_checks(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "m2k-decision-period", 'exception = "statute"',
              'exception = "consent"')
    assert 'must be "statute"; use effect permit_with_consent' in load_error(policy_dir).message


def test_a_statute_exception_cites_an_act_by_number(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "k2m-referral-without-consent-35-2",
              "Sosiaalihuoltolaki 1301/2014 35 § 2 mom.", "Sosiaalihuoltolaki 35 § 2 mom.")
    assert "cites the act by its number" in load_error(policy_dir).message


def test_a_statute_exception_names_its_section_or_is_marked_for_checking(policy_dir):
    baseline = policy_dir / "baseline.toml"
    edit_rule(baseline, "m2k-decision-period", ", needs_check = true }", " }")
    load_policy(policy_dir)  # still loads: the citation names 29 §
    edit_rule(baseline, "m2k-decision-period", "29 § 1 mom. 1 k.", "29 pykälä 1 mom. 1 k.")
    assert "names its section (§), or is marked needs_check" in load_error(policy_dir).message


def test_a_rule_with_bases_takes_its_citation_from_them(policy_dir):
    edit_rule(policy_dir / "baseline.toml", "m2k-decision-period", "gdpr = {",
              'citation = "Something else."\ngdpr = {')
    assert "takes its citation from them; remove citation" in load_error(policy_dir).message


def test_within_one_organisation_no_bases_are_needed():
    rule = shipped_policy().rule("same-org-case-data")
    assert rule.gdpr is None and rule.secrecy is None and rule.citation


# -- the shipped profiles ----------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_every_shipped_disclosure_across_organisations_names_both_bases(profile):
    permits = [r for r in shipped_policy(profile).rules
               if r.effect in ("permit", "permit_with_consent") and r.relation != "same_org"]
    assert permits
    for rule in permits:
        assert rule.gdpr is not None and rule.secrecy is not None, rule.id
        expected = "consent" if rule.effect == "permit_with_consent" else "statute"
        assert rule.secrecy.exception == expected, rule.id
        assert rule.secrecy.citation in rule.citation and rule.gdpr.citation in rule.citation


def _citations(profile: str) -> dict[str, str]:
    policy = shipped_policy(profile)
    texts = {r.id: r.citation for r in policy.rules}
    texts.update({g.id: g.citation for g in policy.guards.values()})
    return texts


@pytest.mark.parametrize("profile", PROFILES)
def test_the_corrected_citations_stay_corrected(profile):
    """Each correction of the legal review, as a check on every citation of the profile."""
    for rid, text in _citations(profile).items():
        assert "6(1)(a)" not in text and "9(2)(a)" not in text, rid  # consent is no GDPR basis
        assert "661/2009" not in text, rid  # the population-data agency's own disclosures
        # Lastensuojelulaki is not a source of secrecy; its 25 § is cited only as the duty to notify.
        assert ("417/2007" not in text and "astensuojelulaki" not in text) or (
            rid == "k2m-child-welfare-notification" and "417/2007 25 §" in text), rid
        assert "41 §" not in text, rid  # a duty to cooperate, not a disclosure basis
        assert "1412/1997 17 §" not in text or "not this" in text, rid  # applicant's duty
        if "HE 117/2014" in text:  # the bill: cited only beside the act it became
            assert "1350/2014" in text, rid
    prohibition = shipped_policy(profile).guards["client-prohibition"].citation
    assert "Local policy" in prohibition and "Kanta" in prohibition


def test_today_does_not_rest_on_the_expired_experiment():
    for rid, text in _citations("today").items():
        assert "1350/2014" not in text and "HE 117/2014" not in text, rid


def test_the_experiment_cites_its_act_and_the_joint_service_act():
    texts = " ".join(_citations("experiment-2015").values())
    assert "1350/2014" in texts and "223/2007" in texts


# -- decisions name their basis kind: statute, consent or internal, never "policy" ----------

@pytest.mark.parametrize("profile", PROFILES)
def test_no_decision_rests_on_a_policy_basis(profile):
    """Property: every permit of every shipped case names a statute, a consent, or use within
    one organisation as its basis."""
    policy = shipped_policy(profile)
    for cf in case_files(POLICY_DIR, policy):
        eng = PolicyEngine(cf.policy)
        for case in cf.cases:
            decision = case.decide(eng)
            if decision.effect == "permit":
                kind = decision.basis.split(":", 1)[0]
                same = case.request.sender.org == case.request.recipient.org
                assert kind in (("internal", "consent") if same else ("statute", "consent")), \
                    (case.name, decision.basis)


def test_a_statute_permit_across_organisations_records_statute():
    d = engine().decide(request("kela/advisor", "vantaa/expert", "decision.basic", "tt.forwarding"))
    assert (d.effect, d.basis) == ("permit", "statute:k2m-forward-basic-decision")


def test_use_within_one_organisation_records_internal():
    d = engine().decide(request("vantaa/expert", "vantaa/social_worker", "debt",
                                "tt.income_calculation"))
    assert (d.effect, d.basis) == ("permit", "internal:same-org-case-data")


def test_a_consent_permit_records_the_consent_and_its_citation_names_both_bases():
    d = engine().decide(request("vantaa/social_worker", "kela/advisor", "health",
                                "tt.service_guidance", consent=consent()))
    assert d.basis == "consent:c-1@1"
    assert "29 § 1 mom. 2 k." in d.citation and "9(2)(h)" in d.citation


def test_a_35_2_contact_rests_on_the_statute():
    d = engine().decide(request("kela/advisor", "vantaa/social_worker", "service_need.referral",
                                "sh.referral", prohibitions=(Prohibition(CLIENT),),
                                referral=Referral("child_interest", "Synthetic.", "Synthetic: unreachable.")))
    assert d.basis == "statute:k2m-referral-without-consent-35-2"
    assert "35 § 2 mom." in d.citation and "6(1)(c)" in d.citation
