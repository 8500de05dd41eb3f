"""Policy decisions per second on one core (target, docs/capabilities.md: >= 100,000 data items/s).

Realistic messages: 3-5 data items each, sent to 2-4 recipients, a mix of categories with
and without consents, prohibitions and referrals. Each item x recipient is one decision.
Measured side by side with a reference loop that does one bare dict lookup per decision,
so the ratio says what the policy costs over the cheapest conceivable check. Identifiers in
free text (IBAN, phone, e-mail; 1-3 per message) are decided per reader as well, and
reported on their own line.

Run: python bench/policy_bench.py [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.policy.engine import PolicyEngine  # noqa: E402
from consult.policy.loader import load_policy  # noqa: E402
from consult.policy.model import Consent, ItemRequest, Party, Prohibition, Referral  # noqa: E402

NOW = datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)
KELA_TO_CITY = [("application.status", "tt.application_intake"),
                ("income.kela_benefit", "tt.income_calculation"),
                ("income.other", "tt.income_calculation"),
                ("population_register", "tt.application_intake"),
                ("application.attachment", "tt.application_intake"),
                ("identity.hetu", "tt.application_intake"),
                ("debt", "tt.income_calculation"),
                ("health", "sh.referral"),
                ("housing.risk", "sh.referral"),
                ("service_need.referral", "sh.referral")]
CITY_TO_KELA = [("application.status", "tt.application_intake"),
                ("decision.period", "tt.application_intake"),
                ("decision.content", "tt.income_calculation"),
                ("income.other", "tt.income_calculation"),
                ("social_work.assessment", "tt.service_guidance"),
                ("health", "tt.service_guidance"),
                ("child_welfare", "sh.multidisciplinary"),
                ("identity.hetu", "tt.income_calculation")]


def consent_for(client: str, rng: random.Random) -> Consent:
    return Consent(
        f"c-{client}", rng.randint(1, 3), client, rng.choice(["active"] * 8 + ["withdrawn"]),
        frozenset({"debt", "health", "housing.risk", "service_need.referral", "income.other",
                   "social_work.assessment"}),
        frozenset({"kela", "vantaa"}), frozenset(), frozenset(),
        frozenset({"tt.income_calculation", "tt.service_guidance", "sh.referral"}),
        NOW - timedelta(days=90), NOW + timedelta(days=rng.choice([-1, 90, 365])))


def messages(count: int, seed: int = 7) -> list[list[ItemRequest]]:
    """``count`` messages, each the list of (item x recipient) requests it produces."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        client = f"client-{n % 500}"
        consent = consent_for(client, rng) if rng.random() < 0.6 else None
        prohibitions = (Prohibition(client, "health", None),) if rng.random() < 0.05 else ()
        referral = (Referral("unable_to_look_after_self", "bench") if rng.random() < 0.05
                    else None)
        from_kela = rng.random() < 0.6
        sender = Party("kela", "advisor", "adv-1") if from_kela else Party("vantaa", "expert", "ex-1")
        pool = KELA_TO_CITY if from_kela else CITY_TO_KELA
        others = ([Party("vantaa", "expert", f"ex-{i}") for i in range(2, 5)]
                  + [Party("vantaa", "social_worker", "sw-1")]) if from_kela else \
                 ([Party("kela", "advisor", f"adv-{i}") for i in range(2, 5)]
                  + [Party("vantaa", "social_worker", "sw-1")])
        recipients = rng.sample(others, rng.randint(2, 4))
        items = [rng.choice(pool) for _ in range(rng.randint(3, 5))]
        out.append([ItemRequest(sender, r, cat, purpose, client, consent, prohibitions,
                                referral, NOW)
                    for cat, purpose in items for r in recipients])
    return out


def identifiers(msgs: list[list[ItemRequest]], seed: int = 11) -> list[tuple]:
    """The (kind, sender, reader, purpose, client, prohibitions, now) calls that 1-3
    identifiers found in each message's text produce, one per identifier per reader."""
    rng = random.Random(seed)
    calls = []
    for msg in msgs:
        first = msg[0]
        readers = {r.recipient for r in msg}
        client = first.client_ref if rng.random() < 0.9 else None
        for kind in rng.choices(["iban", "phone", "email"], k=rng.randint(1, 3)):
            calls.extend((kind, first.sender, reader, first.purpose, client,
                          first.prohibitions, NOW) for reader in readers)
    return calls


def measure(label: str, fn, decisions: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    rate = decisions / best
    print(f"{label:<44} {rate:>14,.0f} decisions/s   {best * 1e9 / decisions:8.0f} ns/decision")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    engine = PolicyEngine(load_policy(Path(__file__).resolve().parent.parent / "policies"))
    msgs = messages(args.messages)
    requests = [req for msg in msgs for req in msg]
    n = len(requests)
    print(f"policy version {engine.version[:16]}..., {args.messages:,} messages, {n:,} "
          f"item x recipient decisions, best of {args.rounds} rounds, Python "
          f"{sys.version.split()[0]}")

    table = {(r.category, r.recipient.org): "permit" for r in requests}

    def reference() -> None:
        get = table.get
        for r in requests:
            get((r.category, r.recipient.org))

    def policy() -> None:
        decide = engine.decide
        for r in requests:
            decide(r)

    def policy_building_requests() -> None:
        decide = engine.decide
        for msg in msgs:
            for r in msg:
                decide(ItemRequest(r.sender, r.recipient, r.category, r.purpose, r.client_ref,
                                   r.consent, r.prohibitions, r.referral, r.now))

    calls = identifiers(msgs)

    def policy_identifiers() -> None:
        decide_identifier = engine.decide_identifier
        for call in calls:
            decide_identifier(*call)

    ref = measure("reference: bare dict lookup per decision", reference, n, args.rounds)
    pol = measure("policy engine: decide()", policy, n, args.rounds)
    built = measure("policy engine: build ItemRequest + decide()", policy_building_requests, n,
                    args.rounds)
    ids = measure("policy engine: decide_identifier()", policy_identifiers, len(calls),
                  args.rounds)
    effects: dict[str, int] = {}
    for r in requests:
        effect = engine.decide(r).effect
        effects[effect] = effects.get(effect, 0) + 1
    print(f"decide() costs {ref / pol:.1f}x the reference lookup "
          f"({ref / built:.1f}x including building the request)")
    print(f"target >= 100,000 decisions/s: {'met' if built >= 100_000 else 'NOT met'} "
          f"({built:,.0f}/s including request construction)")
    print("effects: " + ", ".join(f"{k} {v:,}" for k, v in sorted(effects.items())))
    id_effects: dict[str, int] = {}
    for call in calls:
        effect = engine.decide_identifier(*call).effect
        id_effects[effect] = id_effects.get(effect, 0) + 1
    print(f"identifiers in text: {len(calls):,} decisions, {ids:,.0f}/s; effects: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(id_effects.items())))


if __name__ == "__main__":
    main()
