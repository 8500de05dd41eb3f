"""A consultation as the services hold it, its participants and its child-welfare notification,
and the consultation as one reader may see it.

`Consultation` is the stored row (the question and close note sealed) and, once opened
(consult/services/content.py), the same record with both in clear. `ConsultationView` is what one
reader may see of it; it says how it reads on the wire (docs/capabilities.md), and only the edge
writes it there (consult/model/wire.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.model.clock import iso
from consult.model.identifiers import ClientRef
from consult.model.messages import Spans


@dataclass(frozen=True, slots=True)
class Consultation:
    """One consultation, as stored; ``question`` and ``outcome_note`` are None until opened
    (and ``content_destroyed`` is set when retention shredded them)."""

    seq: int  # 0 until stored
    id: str
    topic: str
    urgency: str
    question_sealed: bytes
    question_spans: Spans
    purpose: str
    origin_org: str
    created_by: str
    created_role: str | None
    target_org: str
    pool: str | None
    expert_id: str | None
    client_ref: ClientRef | None
    case_ref: str | None
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    outcome_note_sealed: bytes | None
    outcome_note_spans: Spans
    closed_by: str | None
    closed_org: str | None
    closed_role: str | None
    legal_hold: bool
    shredded_at: datetime | None
    created_at: datetime
    escalated_pool: str | None
    question_flagged: tuple[str, ...]  # categories the question looked like, sent on confirmation
    outcome_flagged: tuple[str, ...]  # the same for the close note
    # In clear once opened:
    question: str | None = None
    outcome_note: str | None = None
    content_destroyed: bool = False


@dataclass(frozen=True, slots=True)
class Participant:
    """A user taking part in a consultation, in the role they take part in."""

    consultation_id: str
    user_id: str
    org: str
    role: str
    added_by: str
    added_at: datetime

    def wire(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "org": self.org, "role": self.role, "added_at": iso(self.added_at)}


@dataclass(frozen=True, slots=True)
class Notification:
    """A child-welfare notification's notifier and the policy decision it was sent under."""

    consultation_id: str
    notifier_id: str
    notifier_name: str
    notifier_org: str
    notifier_role: str
    rule_id: str
    basis: str
    citation: str
    policy_version: str
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        return {
            "notifier": {"user_id": self.notifier_id, "name": self.notifier_name, "org": self.notifier_org,
                         "role": self.notifier_role},
            "rule_id": self.rule_id, "basis": self.basis, "citation": self.citation,
            "policy_version": self.policy_version, "notified_at": iso(self.created_at),
        }


# -- one reader's view ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsultationView:
    """The consultation with ``question`` and ``outcome_note`` as already rendered for one reader;
    ``participants`` only for a reader who may be told who they are."""

    consultation: Consultation
    question: str
    outcome_note: str | None
    participants: tuple[Participant, ...] | None = None

    def wire(self) -> dict[str, Any]:
        c = self.consultation
        body: dict[str, Any] = {
            "id": c.id,
            "topic": c.topic,
            "urgency": c.urgency,
            "question": self.question,
            "purpose": c.purpose,
            "origin_org": c.origin_org,
            "created_by": c.created_by,
            "target_org": c.target_org,
            "pool": c.pool,
            "expert_id": c.expert_id,
            "client_ref": c.client_ref,
            "case_ref": c.case_ref,
            "status": c.status,
            "claimed_by": c.claimed_by,
            "outcome": c.outcome,
            "outcome_note": self.outcome_note,
            "legal_hold": bool(c.legal_hold),
            # Categories the question looked like, sent on the sender's confirmation.
            "flagged_categories": list(c.question_flagged),
            # Categories the close note looked like, sent on the closer's confirmation.
            "outcome_flagged_categories": list(c.outcome_flagged),
            "content_destroyed": bool(c.content_destroyed),
            "created_at": iso(c.created_at),
            "claimed_at": iso(c.claimed_at),
            "first_response_at": iso(c.first_response_at),
            "closed_at": iso(c.closed_at),
            "shredded_at": iso(c.shredded_at),
        }
        if self.participants is not None:
            body["participants"] = [p.wire() for p in self.participants]
        return body


@dataclass(frozen=True, slots=True)
class ConsultationAnswer:
    """The answer to an act on a consultation: the caller's view and what the act adds to it —
    the notification, how many it was offered to, the identifiers found and sensitive passages
    confirmed in its free text, and where the routing stands. None is left out of the answer."""

    consultation: ConsultationView
    notification: Notification | None = None
    offered_to: int | None = None
    identifiers: tuple[dict[str, Any], ...] | None = None
    sensitive: tuple[dict[str, Any], ...] | None = None
    routing: dict[str, Any] | None = None
    with_routing: bool = False  # ``routing`` is answered, even as null (no longer waiting)

    def wire(self) -> dict[str, Any]:
        body = self.consultation.wire()
        if self.notification is not None:
            body["notification"] = self.notification.wire()
        if self.offered_to is not None:
            body["offered_to"] = self.offered_to
        if self.identifiers is not None:
            body["identifiers"] = list(self.identifiers)
        if self.sensitive is not None:
            body["sensitive"] = list(self.sensitive)
        if self.with_routing:
            body["routing"] = self.routing
        return body


@dataclass(frozen=True, slots=True)
class ConsultationPage:
    """One page of the consultations visible to one reader."""

    items: tuple[ConsultationView, ...]
    next: str | None

    def wire(self) -> dict[str, Any]:
        return {"items": [c.wire() for c in self.items], "next": self.next}
