"""The policy enforcement point: asks the pure engine, per data item and per reader.

Services never decide what crosses an organisational border themselves; they call this,
at send time for every recipient and at read time for every reader and every live event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consult.model import Clock, iso
from consult.policy.engine import PolicyEngine
from consult.policy.model import Consent, Decision, ItemRequest, Party, Prohibition, Referral
from consult.policy.signals import SignalDetector
from consult.services.consents import as_policy_consent, effective_status
from consult.services.freetext import render


@dataclass(frozen=True)
class View:
    """What the policy needs to know about a consultation at one moment."""

    purpose: str
    client_ref: str | None
    now: datetime
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> current version row
    prohibitions: tuple[Prohibition, ...] = ()

    def consent(self, consent_id: str | None) -> Consent | None:
        row = self.consents.get(consent_id) if consent_id else None
        return as_policy_consent(row, self.now) if row else None


class Disclosure:
    def __init__(self, engine: PolicyEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    @property
    def version(self) -> str:
        return self.engine.version

    @property
    def item_categories(self) -> frozenset[str]:
        return self.engine.item_categories

    @property
    def signals(self) -> SignalDetector:
        """The detector of sensitive categories in free text (policies/signals.toml)."""
        return self.engine.signals

    def decide(
        self,
        sender: Party,
        recipient: Party,
        category: str,
        view: View,
        *,
        consent_id: str | None = None,
        referral: Referral | None = None,
    ) -> Decision:
        return self.engine.decide(
            ItemRequest(
                sender=sender,
                recipient=recipient,
                category=category,
                purpose=view.purpose,
                client_ref=view.client_ref,
                consent=view.consent(consent_id),
                prohibitions=view.prohibitions,
                referral=referral,
                now=view.now,
            )
        )

    def decide_identifier(self, kind: str, sender: Party, recipient: Party, view: View) -> Decision:
        return self.engine.decide_identifier(
            kind, sender, recipient, view.purpose, view.client_ref, view.prohibitions, view.now
        )

    def render_text(self, text: str, spans: list[dict[str, Any]] | None, author: Party, reader: Party,
                    view: View) -> str:
        """Free text as ``reader`` may see it; the author sees what they wrote."""
        if reader.user_id is not None and reader.user_id == author.user_id:
            return text
        return render(text, spans, lambda kind: self.decide_identifier(kind, author, reader, view))

    def withheld_view(self, category: str, decision: Decision, view: View,
                      consent_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "category": category,
            "withheld": True,
            "reason": decision.reason,
            "rule": decision.rule_id,
            "citation": decision.citation,
        }
        row = view.consents.get(consent_id) if consent_id else None
        if row is not None:
            status = effective_status(row, view.now)
            if status != "active":
                changed = row["valid_until"] if status == "expired" else row["status_changed_at"]
                body["consent"] = {"id": row["id"], "status": status,
                                   "since": iso(changed)}
        return body
