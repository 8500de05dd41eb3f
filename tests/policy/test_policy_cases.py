"""The named cases beside each policy file, one pytest test per case, and rule coverage."""

from __future__ import annotations

import pytest

from consult.policy.cases import case_files, run_cases
from consult.policy.engine import PolicyEngine

from .support import POLICY_DIR, shipped_policy

_FILES = case_files(POLICY_DIR, shipped_policy())
_ENGINES = {cf.name: PolicyEngine(cf.policy) for cf in _FILES}
_CASES = [(cf.name, case) for cf in _FILES for case in cf.cases]


@pytest.mark.parametrize(("file", "case"), _CASES,
                         ids=[f"{file}::{case.name}" for file, case in _CASES])
def test_case(file, case):
    """Each named case gets exactly its expected effect, rule (and basis/flags if given)."""
    decision = case.decide(_ENGINES[file])
    assert case.failure(decision) is None, f"{case.file}:{case.line}: {case.failure(decision)}"


def test_every_rule_and_guard_is_exercised():
    """Like `opa test --coverage`: a rule that no case decides is untested policy."""
    report = run_cases(POLICY_DIR, shipped_policy())
    assert report.unexercised == ()
    assert report.ok


def test_every_policy_file_has_a_cases_file():
    tested = {cf.tested_file for cf in _FILES}
    # The signals file holds no rules; its test is the labelled corpus (test_signals_corpus.py).
    rule_files = {f.name for f in shipped_policy().sources if f.kind not in ("taxonomy", "signals")}
    assert rule_files <= tested


def test_readme_documents_every_rule_and_guard():
    """The privacy officers' README stays in step with the rule files."""
    readme = (POLICY_DIR / "README.md").read_text(encoding="utf-8")
    policy = shipped_policy()
    for rule_id in list(policy.rule_ids) + list(policy.guards):
        assert f"`{rule_id}`" in readme, rule_id
