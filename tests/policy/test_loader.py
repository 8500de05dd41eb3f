"""Loading and validating policy files: every error names the file and the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from consult.model.vocabulary import CATEGORIES, PURPOSES
from consult.policy.cases import case_files
from consult.policy.loader import PolicyError, load_policy

from .support import POLICY_DIR, PROFILES, shipped_policy

SPEC_CATEGORIES = {
    "application.status", "decision.period", "decision.content", "income.kela_benefit",
    "income.other", "population_register", "application.attachment", "social_work.assessment",
    "service_need.referral", "health", "debt", "housing.risk", "child_welfare", "identity.hetu",
}
SPEC_PURPOSES = {"general", "tt.application_intake", "tt.income_calculation",
                 "tt.service_guidance", "sh.referral", "sh.multidisciplinary"}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


def load_error(directory: Path) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy(directory)
    return info.value


# -- the shipped vocabulary -------------------------------------------------------------------

def test_taxonomy_keeps_the_spec_names_and_is_the_api_vocabulary():
    """The public API's names stay (add freely, never rename); the API's closed lists are the taxonomy's."""
    policy = shipped_policy()
    assert set(policy.categories) >= SPEC_CATEGORIES
    assert set(policy.purposes) >= SPEC_PURPOSES
    assert set(policy.categories) == CATEGORIES
    assert set(policy.purposes) == PURPOSES
    assert policy.roles == {"advisor", "expert", "social_worker", "privacy_officer", "admin"}
    assert dict(policy.organisations) == {"kela": "benefit_institution", "vantaa": "wellbeing_county"}
    assert "hyvinvointialue" in policy.organisation_names["vantaa"]


def test_decisions_carry_their_issuer_and_kind():
    """Kela issues basic assistance; the county supplementary and preventive assistance."""
    cats = shipped_policy().categories
    issued = {name: (c.decision.issuer, c.decision.kind, c.decision.part)
              for name, c in cats.items() if c.decision is not None}
    assert issued == {
        "decision.basic": ("benefit_institution", "basic", "content"),
        "decision.supplementary": ("wellbeing_county", "supplementary", "content"),
        "decision.preventive": ("wellbeing_county", "preventive", "content"),
        "decision.content": ("wellbeing_county", "any", "content"),
        "decision.period": ("wellbeing_county", "any", "period"),
    }
    assert [name for name, c in cats.items() if c.special] == ["health"]


def test_a_decision_of_an_unknown_issuer_is_rejected(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, 'issuer = "benefit_institution", kind = "basic"',
         'issuer = "kela", kind = "basic"')
    err = load_error(policy_dir)
    assert err.file == "taxonomy.toml" and "decision issuer must be one of" in err.message
    assert err.line == line_of(taxonomy, 'issuer = "kela"')


def test_general_purpose_carries_no_client_data():
    assert shipped_policy().purposes["general"].categories == frozenset()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_baseline_rule_has_a_citation_and_a_reason(profile):
    for rule in shipped_policy(profile).rules:
        assert rule.reason
        if rule.involves_org is None:
            assert rule.citation, rule.id


# -- syntax and vocabulary errors ---------------------------------------------------------------

def test_broken_toml_names_file_and_line(policy_dir):
    baseline = policy_dir / "baseline.toml"
    edit(baseline, 'effect = "redact"', 'effect = "redact')
    err = load_error(policy_dir)
    assert err.file == "baseline.toml"
    assert err.line == line_of(baseline, 'effect = "redact')
    assert str(err).startswith(f"baseline.toml:{err.line}: invalid TOML")


def test_unknown_category_in_a_rule_names_file_and_line(policy_dir):
    baseline = policy_dir / "baseline.toml"
    edit(baseline, 'categories = ["decision.period"]', 'categories = ["decision.periods"]')
    err = load_error(policy_dir)
    assert err.line == line_of(baseline, '"decision.periods"')
    assert "unknown category 'decision.periods'" in str(err)
    assert str(err).startswith(f"baseline.toml:{err.line}:")


def test_unknown_category_in_a_purpose_names_file_and_line(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, '"application.status", "service_need.referral"',
         '"application.status", "service_need.referal"')
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("taxonomy.toml", line_of(taxonomy, '"service_need.referal"'))


@pytest.mark.parametrize(("old", "new", "needle", "message"), [
    ('effect = "redact"', 'effect = "allow"', 'effect = "allow"', "unknown effect 'allow'"),
    ('roles = ["social_worker"] }\nrecipient = { roles = ["social_worker"] }',
     'roles = ["social_worker"] }\nrecipient = { roles = ["socialworker"] }',
     '"socialworker"', "unknown role 'socialworker'"),
    ('purposes = ["tt.application_intake"]', 'purposes = ["intake"]', '"intake"',
     "unknown purpose 'intake'"),
    ('org_kinds = ["benefit_institution"] }\ncategories = ["decision.content",',
     'org_kinds = ["benefit"] }\ncategories = ["decision.content",', '"benefit"',
     "unknown org kind 'benefit'"),
    ('relation = "cross_org"', 'relation = "cross"', 'relation = "cross"', "relation must be"),
    ('reason = "Kela may learn', 'reasons = "Kela may learn', "reasons =",
     "unknown key 'reasons'"),
])
def test_semantic_errors_name_file_and_line(policy_dir, old, new, needle, message):
    baseline = policy_dir / "baseline.toml"
    edit(baseline, old, new)
    err = load_error(policy_dir)
    assert message in str(err)
    assert (err.file, err.line) == ("baseline.toml", line_of(baseline, needle))


def test_duplicate_rule_id_is_rejected(policy_dir):
    baseline = policy_dir / "baseline.toml"
    edit(baseline, 'id = "m2k-decision-period"', 'id = "m2k-application-status"')
    err = load_error(policy_dir)
    assert "duplicate rule id" in str(err)
    assert err.line == line_of(baseline, 'id = "m2k-application-status"\neffect = "permit"\n'
                                          'sender = { org_kinds = ["wellbeing_county"], roles = '
                                          '["expert", "social_worker"] }\nrecipient = { '
                                          'org_kinds = ["benefit_institution"], roles = '
                                          '["advisor"] }\ncategories = ["decision.period"]')


def test_baseline_rule_without_citation_is_rejected(policy_dir):
    baseline = policy_dir / "baseline.toml"
    text = baseline.read_text(encoding="utf-8")
    start = text.index('id = "child-welfare-never-crosses"')
    line = text[text.index("citation = ", start):]
    edit(baseline, line[:line.index("\n") + 1], "")
    err = load_error(policy_dir)
    assert "rule child-welfare-never-crosses: citation must be a non-empty string" in err.message


def test_an_unknown_key_in_a_rule_is_rejected(policy_dir):
    edit(policy_dir / "baseline.toml", 'id = "hetu-redact"\n', 'id = "hetu-redact"\nnote2 = "x"\n')
    assert "unknown key 'note2'" in str(load_error(policy_dir))


def test_consent_rule_cannot_be_statutory(policy_dir):
    edit(policy_dir / "baseline.toml", 'id = "k2m-health-consent"\n',
         'id = "k2m-health-consent"\nstatutory = true\n')
    assert "only a permit or redact rule can be statutory" in str(load_error(policy_dir))


def test_referral_condition_only_on_permit(policy_dir):
    edit(policy_dir / "baseline.toml", 'id = "child-welfare-never-crosses"\n',
         'id = "child-welfare-never-crosses"\nrequires_referral = true\n')
    assert "requires_referral only goes with effect permit" in str(load_error(policy_dir))


def test_missing_guard_is_rejected(policy_dir):
    edit(policy_dir / "taxonomy.toml", "[guards.no-client-link]", "[guards.no-client-linkage]")
    err = load_error(policy_dir)
    assert err.file == "taxonomy.toml" and "unknown guard" in str(err)


def test_missing_baseline_is_rejected(policy_dir):
    (policy_dir / "baseline.toml").unlink()
    assert "no baseline for policy profile 'today'" in str(load_error(policy_dir))


def test_empty_directory_is_rejected(tmp_path):
    assert "no policy files" in str(load_error(tmp_path))


# -- municipal files may only restrict ------------------------------------------------------------

MUNICIPAL = '[meta]\nkind = "municipal"\norg = "vantaa"\n\n[[rule]]\nid = "vantaa-local"\n'
BASES = ('gdpr = { articles = ["6(1)(e)"], law = "synthetic act 1/2099" }\n'
         'secrecy = { exception = "statute", citation = "Synthetic act 1/2099 1 §." }\n')


def test_municipal_permit_across_organisations_without_bases_is_rejected(policy_dir):
    path = policy_dir / "vantaa.toml"
    path.write_text(MUNICIPAL + 'effect = "permit"\nsender = { orgs = ["vantaa"] }\n'
                    'recipient = { org_kinds = ["benefit_institution"], roles = ["advisor"] }\n'
                    'categories = ["debt"]\nreason = "Local."\n', encoding="utf-8")
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("vantaa.toml", line_of(path, '"vantaa-local"'))
    assert "rule vantaa-local: a permit that can apply across organisations needs" in err.message


def test_municipal_rule_that_widens_without_citation_is_rejected(policy_dir):
    """Within the county a permit needs no bases, but may not widen the baseline uncited."""
    path = policy_dir / "vantaa.toml"
    path.write_text(MUNICIPAL + 'effect = "permit"\nrelation = "same_org"\n'
                    'sender = { orgs = ["vantaa"], roles = ["expert"] }\n'
                    'recipient = { roles = ["privacy_officer"] }\n'
                    'categories = ["debt"]\nreason = "Local."\n', encoding="utf-8")
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("vantaa.toml", line_of(path, '"vantaa-local"'))
    assert "widens the baseline" in str(err) and "no citation" in str(err)


def test_municipal_statutory_override_without_citation_is_rejected(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        MUNICIPAL + 'effect = "permit"\nstatutory = true\nrelation = "same_org"\n'
        'categories = ["application.status"]\nreason = "Local."\n', encoding="utf-8")
    assert "statutory rule needs a citation" in str(load_error(policy_dir))


def test_municipal_widening_with_both_bases_is_accepted(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        MUNICIPAL + 'effect = "permit"\nsender = { orgs = ["vantaa"] }\n'
        'recipient = { org_kinds = ["benefit_institution"], roles = ["advisor"] }\n'
        'categories = ["debt"]\nreason = "Local."\n' + BASES, encoding="utf-8")
    citation = load_policy(policy_dir).rule("vantaa-local").citation
    assert "Synthetic act 1/2099 1 §." in citation and "art. 6(1)(e)" in citation


def test_municipal_permit_that_repeats_the_baseline_is_not_a_widening(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        MUNICIPAL + 'effect = "permit"\nrelation = "same_org"\n'
        'sender = { orgs = ["vantaa"], roles = ["expert"] }\n'
        'recipient = { roles = ["expert"] }\n'
        'categories = ["application.status"]\nreason = "Local."\n', encoding="utf-8")
    assert "vantaa-local" in load_policy(policy_dir).rule_ids


def test_municipal_rule_that_would_override_a_prohibition_is_a_widening(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        MUNICIPAL + 'effect = "redact"\nsender = { orgs = ["vantaa"] }\n'
        'recipient = { org_kinds = ["benefit_institution"], roles = ["advisor"] }\n'
        'categories = ["health"]\nreason = "Local."\n', encoding="utf-8")
    assert "widens the baseline" in str(load_error(policy_dir))


def test_municipal_restriction_only_touches_its_own_organisation(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        MUNICIPAL + 'effect = "deny"\ncategories = ["application.status"]\n'
        'reason = "Local."\n', encoding="utf-8")
    rule = load_policy(policy_dir).rule("vantaa-local")
    assert rule.involves_org == "vantaa"


def test_municipal_file_for_an_unknown_organisation_is_rejected(policy_dir):
    (policy_dir / "turku.toml").write_text(
        MUNICIPAL.replace('"vantaa"\n', '"turku"\n', 1) + 'effect = "deny"\nreason = "x"\n',
        encoding="utf-8")
    err = load_error(policy_dir)
    assert err.file == "turku.toml" and "known organisation" in str(err)


# -- version ---------------------------------------------------------------------------------------

def test_version_is_sha256_hex_and_stable(policy_dir):
    first, second = load_policy(policy_dir), load_policy(policy_dir)
    assert first.version == second.version
    assert len(first.version) == 64 and int(first.version, 16) >= 0


def test_version_follows_content_not_comments(policy_dir):
    before = load_policy(policy_dir).version
    baseline = policy_dir / "baseline.toml"
    baseline.write_text("# a comment\n" + baseline.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_policy(policy_dir).version == before
    edit(baseline, "not what it decided.", "not what it says.")
    assert load_policy(policy_dir).version != before


def test_configured_organisations_are_part_of_the_version(policy_dir):
    plain = load_policy(policy_dir)
    wider = load_policy(policy_dir, organisations={"espoo": "wellbeing_county"})
    assert wider.organisations["espoo"] == "wellbeing_county"
    assert wider.version != plain.version


def test_configured_organisation_of_unknown_kind_is_rejected(policy_dir):
    with pytest.raises(PolicyError, match="unknown kind"):
        load_policy(policy_dir, organisations={"espoo": "city"})


# -- cases files -----------------------------------------------------------------------------------

def test_case_naming_an_unknown_rule_names_file_and_line(policy_dir):
    cases = policy_dir / "baseline.cases.toml"
    edit(cases, 'rule = "m2k-decision-period"', 'rule = "m2k-decision-periood"')
    with pytest.raises(PolicyError) as info:
        case_files(policy_dir, load_policy(policy_dir))
    name = 'name = "decision period to the Kela advisor"'
    assert info.value.file == "baseline.cases.toml"
    assert info.value.line == line_of(cases, name) - 1  # the [[case]] header
    assert "unknown rule 'm2k-decision-periood'" in str(info.value)


def test_rule_that_is_not_a_table_is_rejected(policy_dir):
    (policy_dir / "vantaa.toml").write_text(
        'rule = [1, 2]\n[meta]\nkind = "municipal"\norg = "vantaa"\n', encoding="utf-8")
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("vantaa.toml", 1) and "[[rule]]" in str(err)


def test_unknown_sensitivity_names_the_category_line(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, 'sensitivity = "very_high"', 'sensitivity = "extreme"')
    err = load_error(policy_dir)
    assert err.file == "taxonomy.toml"
    assert err.line == line_of(taxonomy, 'sensitivity = "extreme"')


def test_category_marked_as_not_client_data(policy_dir):
    edit(policy_dir / "taxonomy.toml", 'sensitivity = "low"\n',
         'sensitivity = "low"\nclient_data = false\n')
    policy = load_policy(policy_dir)
    assert policy.categories["application.status"].client_data is False
    assert policy.categories["decision.period"].client_data is True


# -- identifiers in free text ----------------------------------------------------------------------

def test_shipped_identifiers_are_apart_from_the_categories():
    policy = shipped_policy()
    assert set(policy.identifiers) == {"identifier.iban", "identifier.phone", "identifier.email"}
    assert {spec.kind for spec in policy.identifiers.values()} == {"iban", "phone", "email"}
    assert set(policy.categories).isdisjoint(policy.identifiers)


def test_unknown_identifier_kind_in_a_rule_names_file_and_line(policy_dir):
    baseline = policy_dir / "baseline.toml"
    edit(baseline, 'categories = ["identifier.phone", "identifier.email"]',
         'categories = ["identifier.phone", "identifier.fax"]')
    err = load_error(policy_dir)
    assert "unknown identifier kind 'identifier.fax'" in str(err)
    assert (err.file, err.line) == ("baseline.toml", line_of(baseline, '"identifier.fax"'))
    assert str(err).startswith(f"baseline.toml:{err.line}: rule k2m-identifier-contact")


def test_unknown_identifier_kind_in_a_municipal_rule_names_file_and_line(policy_dir):
    vantaa = policy_dir / "vantaa.toml"
    edit(vantaa, 'categories = ["social_work.assessment"]', 'categories = ["identifier.ibna"]')
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("vantaa.toml", line_of(vantaa, '"identifier.ibna"'))
    assert "unknown identifier kind" in err.message


def test_unknown_identifier_kind_in_a_purpose_names_file_and_line(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, '"identifier.iban", "identifier.phone", "identifier.email",\n]\n\n[purposes."sh.referral"]',
         '"identifier.iban", "identifier.phone", "identifier.mail",\n]\n\n[purposes."sh.referral"]')
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("taxonomy.toml", line_of(taxonomy, '"identifier.mail"'))
    assert "unknown identifier kind 'identifier.mail'" in err.message


def test_identifier_the_scanner_does_not_find_is_rejected(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, '[identifiers."identifier.email"]', '[identifiers."identifier.bic"]')
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("taxonomy.toml", line_of(taxonomy, '"identifier.bic"'))
    assert "unknown identifier kind" in err.message


def test_hetu_is_not_an_identifier_kind(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, '[identifiers."identifier.email"]', '[identifiers."identifier.hetu"]')
    assert "identity.hetu" in load_error(policy_dir).message


def test_every_scanned_identifier_must_be_declared(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    text = taxonomy.read_text(encoding="utf-8")
    start = text.index('[identifiers."identifier.email"]')
    end = text.index("\n\n", start)
    taxonomy.write_text(text[:start] + text[end + 2:], encoding="utf-8")
    err = load_error(policy_dir)
    assert err.file == "taxonomy.toml" and "missing identifiers: identifier.email" in err.message


def test_a_category_cannot_take_an_identifier_name(policy_dir):
    taxonomy = policy_dir / "taxonomy.toml"
    edit(taxonomy, '[categories."debt"]', '[categories."identifier.debt"]')
    err = load_error(policy_dir)
    assert (err.file, err.line) == ("taxonomy.toml", line_of(taxonomy, '"identifier.debt"'))


@pytest.mark.parametrize("extra", ['effect = "permit_with_consent"',
                                   'effect = "permit"\nrequires_referral = true'])
def test_identifier_rule_cannot_need_consent_or_referral(policy_dir, extra):
    baseline = policy_dir / "baseline.toml"
    baseline.write_text(baseline.read_text(encoding="utf-8") +
                        f'\n[[rule]]\nid = "zz-identifier"\n{extra}\n'
                        'categories = ["identifier.phone"]\nreason = "x"\ncitation = "y"\n',
                        encoding="utf-8")
    err = load_error(policy_dir)
    assert err.file == "baseline.toml"
    assert err.line == line_of(baseline, 'categories = ["identifier.phone"]')
    assert "never by consent or referral" in err.message


@pytest.mark.parametrize(("old", "new", "message"), [
    ('expect = "redact"\nrule = "identifier-audit-roles-redact"',
     'expect = "deny"\nrule = "identifier-audit-roles-redact"', "expect must be permit or redact"),
    ('category = "identifier.iban"\npurpose = "tt.forwarding"\nexpect = "permit"',
     'category = "identifier.iban"\npurpose = "tt.forwarding"\nconsent = "c-k2m"\n'
     'expect = "permit"', "no consent or referral"),
])
def test_identifier_case_is_checked(policy_dir, old, new, message):
    cases = policy_dir / "baseline.cases.toml"
    edit(cases, old, new)
    with pytest.raises(PolicyError) as info:
        case_files(policy_dir, load_policy(policy_dir))
    assert info.value.file == "baseline.cases.toml" and message in info.value.message


def test_unchanged_files_give_the_policy_already_built_and_a_changed_file_a_new_one(policy_dir):
    from consult.policy.engine import PolicyEngine

    first = load_policy(policy_dir)
    assert load_policy(policy_dir) is first
    assert PolicyEngine(first).signals is PolicyEngine(first).signals  # compiled once
    assert load_policy(policy_dir, profile="experiment-2015") is not first
    vantaa = policy_dir / "vantaa.toml"
    vantaa.write_text(vantaa.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = load_policy(policy_dir)
    assert changed is not first  # built anew (a comment leaves the version as it was)
    (policy_dir / "taxonomy.toml").write_text("not [ toml", encoding="utf-8")
    with pytest.raises(PolicyError):
        load_policy(policy_dir)
