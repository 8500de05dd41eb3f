"""`consult policy test` and `consult policy explain` as functions: output and exit codes."""

from __future__ import annotations

import io
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consult.policy.cli import explain, run_policy_tests

from .support import POLICY_DIR

FIXED = datetime(2025, 1, 15, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def run(directory: Path) -> tuple[int, str]:
    out = io.StringIO()
    return run_policy_tests(directory, out), out.getvalue()


def test_shipped_policy_passes_in_every_profile():
    code, out = run(POLICY_DIR)
    assert code == 0
    for profile in ("today", "experiment-2015"):
        assert re.search(rf"^profile {profile}: \d+ passed, 0 failed, 0 rules not exercised",
                         out, re.MULTILINE), profile


def test_one_profile_can_be_tested_alone():
    out = io.StringIO()
    assert run_policy_tests(POLICY_DIR, out, "experiment-2015") == 0
    assert "profile experiment-2015:" in out.getvalue() and "profile today" not in out.getvalue()


def test_an_unexercised_rule_of_the_experiment_profile_fails_the_run(policy_dir):
    path = policy_dir / "experiment-2015.toml"
    path.write_text(path.read_text(encoding="utf-8") +
                    '\n[[rule]]\nid = "untested-rule"\neffect = "deny"\n'
                    'categories = ["debt"]\nrelation = "same_org"\n'
                    'sender = { roles = ["admin"] }\nreason = "x"\ncitation = "y"\n',
                    encoding="utf-8")
    code, out = run(policy_dir)
    assert code == 1
    assert "not exercised by any case: experiment-2015.toml:untested-rule" in out


def test_failing_case_exits_1_and_is_named(policy_dir):
    cases = policy_dir / "baseline.cases.toml"
    text = cases.read_text(encoding="utf-8")
    marker = 'name = "decision period to the Kela advisor"'
    head, tail = text.split(marker)
    cases.write_text(head + marker + tail.replace('expect = "permit"', 'expect = "deny"', 1),
                     encoding="utf-8")
    code, out = run(policy_dir)
    assert code == 1
    assert "FAIL decision period to the Kela advisor" in out
    assert "expected deny by m2k-decision-period, got permit by m2k-decision-period" in out


def test_unexercised_rule_exits_1_and_is_named(policy_dir):
    baseline = policy_dir / "baseline.toml"
    baseline.write_text(baseline.read_text(encoding="utf-8") +
                        '\n[[rule]]\nid = "untested-rule"\neffect = "deny"\n'
                        'categories = ["debt"]\nrelation = "same_org"\n'
                        'sender = { roles = ["admin"] }\nreason = "x"\ncitation = "y"\n',
                        encoding="utf-8")
    code, out = run(policy_dir)
    assert code == 1
    assert "not exercised by any case: baseline.toml:untested-rule" in out


def test_load_error_exits_2(policy_dir):
    (policy_dir / "taxonomy.toml").write_text("[meta\n", encoding="utf-8")
    code, out = run(policy_dir)
    assert code == 2
    assert out.startswith("error: taxonomy.toml:1: invalid TOML")


def test_a_broken_profile_exits_2(policy_dir):
    (policy_dir / "experiment-2015.toml").write_text(
        '[meta]\nkind = "baseline"\nprofile = "experiment-2015"\n\n[[rule]]\nid = "x"\n'
        'effect = "permit"\ncategories = ["debt"]\nreason = "x"\ncitation = "y"\n',
        encoding="utf-8")
    code, out = run(policy_dir)
    assert code == 2 and "profile today: " in out
    assert "error: experiment-2015.toml:6: rule x: a permit that can apply across organisations" in out


def test_explain_prints_rules_and_decision():
    out = io.StringIO()
    code = explain(POLICY_DIR, "vantaa", "expert", "kela", "advisor", "decision.content",
                   "tt.income_calculation", True, out, now=FIXED)
    text = out.getvalue()
    assert code == 0
    assert "rule kela-never-decision-content [deny] (baseline.toml:" in text
    assert "decision: DENY by kela-never-decision-content" in text
    assert "[needs checking against Finlex]" in text


@pytest.mark.parametrize(("with_consent", "expected"), [
    (True, "decision: PERMIT by m2k-health-consent (basis consent:example-consent@1)"),
    (False, "decision: DENY by m2k-health-consent (basis default-deny)"),
])
def test_explain_with_and_without_consent(with_consent, expected):
    out = io.StringIO()
    explain(POLICY_DIR, "vantaa", "social_worker", "kela", "advisor", "health",
            "tt.service_guidance", with_consent, out, now=FIXED)
    assert expected in out.getvalue()


def test_explain_unknown_name_exits_2():
    out = io.StringIO()
    code = explain(POLICY_DIR, "vantaa", "expert", "kela", "advisor", "salary",
                   "tt.income_calculation", False, out)
    assert code == 2 and "unknown category 'salary'" in out.getvalue()


def test_explain_an_identifier_in_text():
    out = io.StringIO()
    code = explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "identifier.iban",
                   "tt.income_calculation", False, out, now=FIXED)
    text = out.getvalue()
    assert code == 0
    assert "identifier in free text" in text
    assert "decision: PERMIT by k2m-identifier-iban (basis statute:k2m-identifier-iban)" in text


def test_explain_shows_both_bases_of_a_disclosure():
    """Property: explain names the GDPR basis and the exception to secrecy of a disclosure."""
    out = io.StringIO()
    explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "decision.basic",
            "tt.forwarding", False, out, now=FIXED)
    text = out.getvalue()
    assert "decision: PERMIT by k2m-forward-basic-decision (basis statute:" in text
    assert "bases of this disclosure:" in text
    assert "  GDPR basis: EU GDPR 2016/679 art. 6(1)(e); the task laid down in" in text
    assert ("  exception to secrecy (julkisuuslaki 621/1999 29 § 1 mom.): a statute: "
            "Laki toimeentulotuesta 1412/1997") in text
    assert "category decision.basic: the content of a decision issued by Kela" in text


def test_explain_shows_the_consent_as_the_exception_to_secrecy():
    out = io.StringIO()
    explain(POLICY_DIR, "vantaa", "social_worker", "kela", "advisor", "health",
            "tt.service_guidance", True, out, now=FIXED)
    text = out.getvalue()
    assert "art. 6(1)(e) and 9(2)(b), 9(2)(h) with tietosuojalaki 1050/2018 6 §" in text
    assert ("exception to secrecy (julkisuuslaki 621/1999 29 § 1 mom.): the client's consent "
            "example-consent@1:") in text


def test_explain_within_one_organisation_needs_no_bases():
    out = io.StringIO()
    explain(POLICY_DIR, "vantaa", "expert", "vantaa", "social_worker", "debt",
            "tt.income_calculation", False, out, now=FIXED)
    assert "bases: no disclosure to another organisation" in out.getvalue()


def test_explain_names_the_county_in_finnish_and_the_profile():
    out = io.StringIO()
    explain(POLICY_DIR, "vantaa", "expert", "kela", "advisor", "decision.supplementary",
            "tt.supplementary_assistance", False, out, now=FIXED)
    text = out.getvalue()
    assert "vantaa = Vantaan ja Keravan hyvinvointialue" in text
    assert "issued by hyvinvointialue" in text
    assert "policy profile: today;" in text
    assert "decision: DENY by kela-never-decision-content" in text
    assert "kunta" not in text.lower()


def test_explain_under_the_experiment_profile():
    out = io.StringIO()
    code = explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "application.attachment",
                   "tt.application_intake", False, out, now=FIXED, profile="experiment-2015")
    text = out.getvalue()
    assert code == 0 and "policy profile: experiment-2015;" in text
    assert "vantaa = Vantaan kaupunki" in text
    assert "decision: PERMIT by k2m-application-attachment" in text
    assert "1350/2014" in text and "223/2007" in text


def test_explain_unknown_profile_exits_2():
    out = io.StringIO()
    code = explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "debt",
                   "tt.service_guidance", False, out, profile="experiment-1999")
    assert code == 2 and "no baseline for policy profile 'experiment-1999'" in out.getvalue()


def test_explain_an_identifier_ignores_the_consent():
    out = io.StringIO()
    explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "identifier.iban",
            "tt.service_guidance", True, out, now=FIXED)
    text = out.getvalue()
    assert "--with-consent is ignored" in text
    assert "decision: REDACT by default-deny" in text


def test_explain_unknown_identifier_exits_2():
    out = io.StringIO()
    code = explain(POLICY_DIR, "kela", "advisor", "vantaa", "expert", "identifier.fax",
                   "tt.service_guidance", False, out)
    assert code == 2 and "unknown category 'identifier.fax'" in out.getvalue()


# -- the command line ------------------------------------------------------------------------

EXPLAIN = ["policy", "explain", "--dir", str(POLICY_DIR), "--sender-org", "kela",
           "--sender-role", "advisor", "--recipient-org", "vantaa", "--recipient-role", "expert",
           "--category", "application.attachment", "--purpose", "tt.application_intake"]


@pytest.mark.parametrize(("args", "env", "profile"), [
    ([], {}, "today"),
    ([], {"CONSULT_POLICY_PROFILE": "experiment-2015"}, "experiment-2015"),
    (["--profile", "experiment-2015"], {}, "experiment-2015"),
])
def test_consult_policy_explain_takes_the_configured_profile(monkeypatch, capsys, args, env,
                                                              profile):
    from consult.cli import main

    monkeypatch.delenv("CONSULT_POLICY_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(EXPLAIN + args) == 0
    assert f"policy profile: {profile};" in capsys.readouterr().out


def test_consult_policy_test_runs_both_profiles(capsys):
    from consult.cli import main

    assert main(["policy", "test", "--dir", str(POLICY_DIR)]) == 0
    out = capsys.readouterr().out
    assert "profile today:" in out and "profile experiment-2015:" in out
