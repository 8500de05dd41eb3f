"""`consult policy test` and `consult policy explain` as functions: output and exit codes."""

from __future__ import annotations

import io
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


def test_shipped_policy_passes():
    code, out = run(POLICY_DIR)
    assert code == 0
    assert "0 failed, 0 rules not exercised" in out


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
    assert "decision: PERMIT by k2m-identifier-iban (basis policy:k2m-identifier-iban)" in text


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
