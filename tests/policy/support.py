"""Shared test helpers: the shipped policy, request builders and synthetic identity codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from consult.policy.engine import PolicyEngine
from consult.policy.loader import load_policy
from consult.policy.model import Consent, ItemRequest, Party, Prohibition, Referral
from consult.policy.rules import DEFAULT_PROFILE, Policy

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
#: The shipped profiles: today's division (the default) and the 2015-16 experiment.
PROFILES = ("today", "experiment-2015")
NOW = datetime(2025, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=2)))
CLIENT = "client-a"

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY_SIGNS = {1800: "+", 1900: "-YXWVU", 2000: "ABCDEF"}


def synthetic_hetu(day: int, month: int, year: int, individual: int, sign: str | None = None
                   ) -> str:
    """A synthetic identity code with a correct check character, computed here
    independently of the validator under test (mod 31 over ddmmyynnn)."""
    signs = CENTURY_SIGNS[year // 100 * 100]
    sign = sign or signs[0]
    assert sign in signs
    digits = f"{day:02d}{month:02d}{year % 100:02d}{individual:03d}"
    return f"{digits[:6]}{sign}{digits[6:]}{_CHECK[int(digits) % 31]}"


def wrong_check(hetu: str) -> str:
    """The same code with a different, wrong check character."""
    right = hetu[-1]
    return hetu[:-1] + next(c for c in _CHECK if c != right)


@cache
def shipped_policy(profile: str = DEFAULT_PROFILE) -> Policy:
    return load_policy(POLICY_DIR, profile=profile)


@cache
def engine(profile: str = DEFAULT_PROFILE) -> PolicyEngine:
    return PolicyEngine(shipped_policy(profile))


def party(text: str) -> Party:
    return Party(*text.split("/"))


def consent(**overrides) -> Consent:
    values = dict(
        id="c-1", version=1, client_ref=CLIENT, status="active",
        categories=frozenset({"health", "debt", "social_work.assessment", "income.other",
                              "housing.risk", "service_need.referral"}),
        recipient_orgs=frozenset({"kela", "vantaa"}), recipient_roles=frozenset(),
        recipient_users=frozenset(),
        purposes=frozenset({"tt.application_intake", "tt.income_calculation",
                            "tt.service_guidance", "sh.referral", "sh.multidisciplinary"}),
        valid_from=NOW - timedelta(days=30), valid_until=NOW + timedelta(days=30))
    values.update(overrides)
    return Consent(**values)


def request(sender: str, recipient: str, category: str, purpose: str, *,
            client: str | None = CLIENT, consent: Consent | None = None,
            prohibitions: tuple[Prohibition, ...] = (), referral: Referral | None = None,
            now: datetime = NOW) -> ItemRequest:
    """A consent that names no disclosing organisation is taken as given for the sender's."""
    if consent is not None and consent.disclosing_org is None:
        consent = replace(consent, disclosing_org=party(sender).org)
    return ItemRequest(party(sender), party(recipient), category, purpose, client, consent,
                       prohibitions, referral, now)
