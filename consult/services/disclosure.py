"""The policy enforcement point: asks the pure engine, per data item and per reader.

Services never decide what crosses an organisational border themselves; they call this,
at send time for every recipient and at read time for every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from consult.model import Clock, Principal
from consult.policy.engine import PolicyEngine
from consult.policy.model import Consent, Decision, ItemRequest, Party, Prohibition, Referral

PARTICIPANT_ROLES = ("social_worker", "expert", "advisor")


def party_of(user_id: str | None, org: str, roles: Sequence[str] | frozenset[str]) -> Party:
    """The role a user acts in within a consultation: the most specific of their roles."""
    role = next((r for r in PARTICIPANT_ROLES if r in roles), next(iter(sorted(roles)), "none"))
    return Party(org=org, role=role, user_id=user_id)


def party_of_principal(p: Principal) -> Party:
    return party_of(p.user_id, p.org, p.roles)


@dataclass(frozen=True)
class ItemContext:
    """What the engine needs to know about the consultation an item travels in."""

    purpose: str
    client_ref: str | None
    consent: Consent | None = None
    prohibitions: tuple[Prohibition, ...] = ()
    referral: Referral | None = None


class Disclosure:
    def __init__(self, engine: PolicyEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    @property
    def version(self) -> str:
        return self.engine.version

    def decide(self, sender: Party, recipient: Party, category: str, ctx: ItemContext) -> Decision:
        return self.engine.decide(
            ItemRequest(
                sender=sender,
                recipient=recipient,
                category=category,
                purpose=ctx.purpose,
                client_ref=ctx.client_ref,
                consent=ctx.consent,
                prohibitions=ctx.prohibitions,
                referral=ctx.referral,
                now=self.clock.now(),
            )
        )

    def withheld_view(self, category: str, decision: Decision) -> dict[str, Any]:
        return {
            "category": category,
            "withheld": True,
            "reason": decision.reason,
            "rule": decision.rule_id,
            "citation": decision.citation,
        }
