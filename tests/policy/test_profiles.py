"""Policy profiles: today's division of social assistance by default, the 2015-16 experiment's
arrangement selectable by configuration (CONSULT_POLICY_PROFILE), each loaded from its own
baseline with the taxonomy and the municipal files that apply to it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from itertools import product
from pathlib import Path

import pytest

from consult.config import load_settings
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from consult.model.vocabulary import PURPOSES
from consult.policy.loader import PolicyError, UnknownProfile, load_policy, profiles
from consult.policy.model import Referral

from .support import POLICY_DIR, PROFILES, consent, engine, request, shipped_policy


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_default_profile_is_todays_division():
    policy = load_policy(POLICY_DIR)
    assert policy.profile == "today"
    assert {s.name for s in policy.sources} == {"taxonomy.toml", "baseline.toml", "vantaa.toml", "signals.toml"}
    assert "k2m-forward-basic-decision" in policy.rule_ids


def test_experiment_profile_loads_its_own_baseline_and_names():
    policy = load_policy(POLICY_DIR, profile="experiment-2015")
    assert policy.profile == "experiment-2015"
    assert {s.name for s in policy.sources} == {"taxonomy.toml", "experiment-2015.toml", "signals.toml"}
    assert "k2m-forward-basic-decision" not in policy.rule_ids
    assert "k2m-application-attachment" in policy.rule_ids
    assert "Vantaan kaupunki" in policy.organisation_names["vantaa"]
    assert policy.version != load_policy(POLICY_DIR).version


def test_the_profiles_differ_where_the_law_changed():
    """Kela forwards its own basic-assistance decision today; the experiment had none."""
    forward = ("kela/advisor", "vantaa/expert", "decision.basic", "tt.forwarding")
    assert engine("today").decide(request(*forward)).effect == "permit"
    assert engine("experiment-2015").decide(request(*forward)).rule_id == "default-deny"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_countys_decision_content_never_reaches_kela(profile):
    """Property: in every profile, for every decision category whose content the wellbeing
    services county issues, no sender, Kela role, purpose, consent or referral gets it to Kela."""
    policy = shipped_policy(profile)
    county = [name for name, c in policy.categories.items()
              if c.decision and c.decision.issuer == "wellbeing_county"
              and c.decision.part == "content"]
    assert set(county) == {"decision.content", "decision.supplementary", "decision.preventive"}
    everything = consent(categories=frozenset(policy.categories),
                         recipient_orgs=frozenset({"kela"}), purposes=frozenset(PURPOSES))
    for category, sender, role, purpose in product(
            county, ("vantaa/expert", "vantaa/social_worker", "kela/advisor"),
            sorted(policy.roles), sorted(PURPOSES)):
        for extra in ({}, {"consent": everything},
                      {"referral": Referral("child_interest", "Synthetic.", "Synthetic: unreachable.")}):
            d = engine(profile).decide(request(sender, f"kela/{role}", category, purpose, **extra))
            assert d.effect == "deny", (category, sender, role, purpose, extra)


def test_unknown_profile_names_the_profiles_there_are(policy_dir):
    with pytest.raises(UnknownProfile) as info:
        load_policy(policy_dir, profile="experiment-1999")
    assert "no baseline for policy profile 'experiment-1999'" in str(info.value)
    assert "today" in str(info.value) and "experiment-2015" in str(info.value)


def test_profiles_lists_the_default_first(policy_dir):
    assert profiles(policy_dir) == ("today", "experiment-2015")


def test_two_baselines_of_one_profile_are_rejected(policy_dir):
    text = (policy_dir / "experiment-2015.toml").read_text(encoding="utf-8")
    (policy_dir / "experiment-2015.toml").write_text(
        text.replace('profile = "experiment-2015"', 'profile = "today"'), encoding="utf-8")
    with pytest.raises(PolicyError, match="exactly one baseline file is required for profile 'today'"):
        load_policy(policy_dir)


def test_a_municipal_file_applies_to_its_profiles_only(policy_dir):
    """vantaa.toml is the county's own decision: loaded with today's profile, not the experiment's."""
    assert "vantaa-assessment-only-by-social-worker" in load_policy(policy_dir).rule_ids
    experiment = load_policy(policy_dir, profile="experiment-2015")
    assert "vantaa-assessment-only-by-social-worker" not in experiment.rule_ids


def test_a_municipal_file_for_an_unknown_profile_is_rejected(policy_dir):
    vantaa = policy_dir / "vantaa.toml"
    vantaa.write_text(vantaa.read_text(encoding="utf-8").replace(
        'profiles = ["today"]', 'profiles = ["tomorrow"]'), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(policy_dir)
    assert info.value.file == "vantaa.toml" and "no baseline for profile 'tomorrow'" in str(info.value)


def test_a_municipal_file_without_profiles_applies_to_every_profile(policy_dir):
    vantaa = policy_dir / "vantaa.toml"
    vantaa.write_text(vantaa.read_text(encoding="utf-8").replace('profiles = ["today"]\n', ""),
                      encoding="utf-8")
    experiment = load_policy(policy_dir, profile="experiment-2015")
    assert "vantaa-assessment-only-by-social-worker" in experiment.rule_ids


def test_a_baseline_may_rename_only_known_organisations(policy_dir):
    path = policy_dir / "experiment-2015.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "organisation_names = { vantaa =", "organisation_names = { helsinki ="), encoding="utf-8")
    with pytest.raises(PolicyError, match="organisation_names: unknown organisation 'helsinki'"):
        load_policy(policy_dir, profile="experiment-2015")


# -- selected by configuration -------------------------------------------------------------

def test_profile_comes_from_the_environment():
    assert load_settings({"CONSULT_DEV": "1"}).policy_profile == "today"
    chosen = load_settings({"CONSULT_DEV": "1", "CONSULT_POLICY_PROFILE": "experiment-2015"})
    assert chosen.policy_profile == "experiment-2015"


@pytest.mark.parametrize("bad", ["Experiment", "today!", "../today", ""])
def test_a_malformed_profile_stops_start_up_naming_the_key(bad):
    with pytest.raises(ConfigError, match="CONSULT_POLICY_PROFILE"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_POLICY_PROFILE": bad})


async def test_the_service_runs_the_configured_profile(aiohttp_client, settings):
    client = await aiohttp_client(create_app(replace(settings, policy_profile="experiment-2015")))
    policy = client.app[keys.POLICY].policy
    assert policy.profile == "experiment-2015"
    body = await (await client.get("/readyz")).json()
    assert body["status"] == "ready"


async def test_an_unknown_profile_stops_start_up_naming_the_key(aiohttp_client, settings):
    with pytest.raises(ConfigError, match="^CONSULT_POLICY_PROFILE: .*no baseline for policy profile"):
        await aiohttp_client(create_app(replace(settings, policy_profile="experiment-1999")))
