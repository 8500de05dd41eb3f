"""The named cases beside each policy file, one pytest test per case and profile, and rule
coverage: every rule and guard of every shipped profile is decided by some case."""

from __future__ import annotations

import pytest

from consult.policy.cases import case_files, run_cases
from consult.policy.engine import PolicyEngine
from consult.policy.loader import profiles

from .support import POLICY_DIR, PROFILES, shipped_policy

_FILES = [(profile, cf) for profile in PROFILES for cf in case_files(POLICY_DIR, shipped_policy(profile))]
_ENGINES = {(profile, cf.name): PolicyEngine(cf.policy) for profile, cf in _FILES}
_CASES = [(profile, cf.name, case) for profile, cf in _FILES for case in cf.cases]


def test_the_shipped_profiles_are_today_and_the_experiment():
    assert profiles(POLICY_DIR) == PROFILES


def test_each_profile_has_its_own_cases():
    files = {(profile, cf.tested_file) for profile, cf in _FILES}
    assert files == {("today", "baseline.toml"), ("today", "vantaa.toml"),
                     ("experiment-2015", "experiment-2015.toml")}


@pytest.mark.parametrize(("profile", "file", "case"), _CASES,
                         ids=[f"{profile}::{file}::{case.name}" for profile, file, case in _CASES])
def test_case(profile, file, case):
    """Each named case gets exactly its expected effect, rule (and basis/flags if given)."""
    decision = case.decide(_ENGINES[(profile, file)])
    assert case.failure(decision) is None, f"{case.file}:{case.line}: {case.failure(decision)}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_rule_and_guard_is_exercised(profile):
    """Like `opa test --coverage`: a rule that no case decides is untested policy."""
    report = run_cases(POLICY_DIR, shipped_policy(profile))
    assert report.unexercised == ()
    assert report.ok


@pytest.mark.parametrize("profile", PROFILES)
def test_every_policy_file_has_a_cases_file(profile):
    tested = {cf.tested_file for p, cf in _FILES if p == profile}
    # The signals file holds no rules; its test is the labelled corpus (test_signals_corpus.py).
    rule_files = {f.name for f in shipped_policy(profile).sources if f.kind not in ("taxonomy", "signals")}
    assert rule_files <= tested


@pytest.mark.parametrize("profile", PROFILES)
def test_readme_documents_every_rule_and_guard(profile):
    """The privacy officers' README stays in step with the rule files."""
    readme = (POLICY_DIR / "README.md").read_text(encoding="utf-8")
    policy = shipped_policy(profile)
    for rule_id in list(policy.rule_ids) + list(policy.guards):
        assert f"`{rule_id}`" in readme, rule_id
