"""The policy enforcement point: asks the pure engine, per data item and per reader.

Services never decide what crosses an organisational border themselves; they call this,
at send time for every recipient and at read time for every reader and every live event.
Within one act (a message posted, a page read) an `Act` holds the decisions made: each item and
identifier kind is decided once per reader, and that decision serves the sender's answer, the
live event and the records of the act alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime

from consult.model import Clock
from consult.model.consents import ConsentVersion
from consult.model.identifiers import ClientRef
from consult.model.messages import ConsentState, Spans, WithheldItem
from consult.policy.engine import PolicyEngine
from consult.policy.model import Consent, Decision, ItemRequest, Party, Prohibition, Referral
from consult.policy.signals import SignalDetector
from consult.services.consents import as_policy_consent, effective_status
from consult.services.freetext import render


@dataclass(frozen=True)
class View:
    """What the policy needs to know about a consultation at one moment."""

    purpose: str
    client_ref: ClientRef | None
    now: datetime
    consents: dict[str, ConsentVersion] = field(default_factory=dict)  # id -> current version
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

    def render_text(self, text: str, spans: Spans, author: Party, reader: Party, view: View) -> str:
        """Free text as ``reader`` may see it; the author sees what they wrote."""
        return self.act(view).render_text(text, spans, author, reader)

    def act(self, view: View) -> Act:
        """The decisions of one act over ``view``, each made once."""
        return Act(self, view)

    def withheld_view(self, category: str, decision: Decision, view: View,
                      consent_id: str | None = None) -> WithheldItem:
        row = view.consents.get(consent_id) if consent_id else None
        consent = None
        if row is not None:
            status = effective_status(row, view.now)
            if status != "active":
                changed = row.valid_until if status == "expired" else row.status_changed_at
                consent = ConsentState(row.id, status, changed)
        return WithheldItem(category, decision.reason, decision.rule_id, decision.citation, consent)


class Act:
    """The decisions of one act over one `View`. An item is named by a key the caller chooses
    (a message's id and the item's index): the item is decided once per sender and reader, so
    the sender's answer, the live event and the records reuse one decision. Identifier kinds and
    free-text categories are decided once per kind and pair of parties."""

    def __init__(self, disclosure: Disclosure, view: View) -> None:
        self.disclosure = disclosure
        self.view = view
        self._items: dict[tuple[Hashable, Party, Party], Decision] = {}
        self._categories: dict[tuple[str, Party, Party], Decision] = {}
        self._identifiers: dict[tuple[str, Party, Party], Decision] = {}

    def item(self, key: Hashable, sender: Party, recipient: Party, category: str, *,
             consent_id: str | None = None, referral: Referral | None = None) -> Decision:
        """The decision for the item named ``key`` (of ``category``) from ``sender`` to ``recipient``."""
        k = (key, sender, recipient)
        decision = self._items.get(k)
        if decision is None:
            decision = self._items[k] = self.disclosure.decide(sender, recipient, category, self.view,
                                                               consent_id=consent_id, referral=referral)
        return decision

    def category(self, category: str, sender: Party, recipient: Party) -> Decision:
        """The decision for ``category`` without consent or referral (a passage of free text)."""
        k = (category, sender, recipient)
        decision = self._categories.get(k)
        if decision is None:
            decision = self._categories[k] = self.disclosure.decide(sender, recipient, category, self.view)
        return decision

    def identifier(self, kind: str, sender: Party, recipient: Party) -> Decision:
        k = (kind, sender, recipient)
        decision = self._identifiers.get(k)
        if decision is None:
            decision = self._identifiers[k] = self.disclosure.decide_identifier(kind, sender, recipient, self.view)
        return decision

    def render_text(self, text: str, spans: Spans, author: Party, reader: Party) -> str:
        """Free text as ``reader`` may see it; the author sees what they wrote."""
        if reader.user_id is not None and reader.user_id == author.user_id:
            return text
        return render(text, spans, lambda kind: self.identifier(kind, author, reader))
