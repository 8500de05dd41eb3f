"""A message as the services hold it, and as one reader may see it.

`Message` and `MessageItem` are the opened (decrypted) records; `MessageView` is the message
after the policy has decided each item and identifier for one reader, with `ShownItem` and
`WithheldItem` in its data. Each view says how it reads on the wire (docs/capabilities.md), and only the edge
writes it there (consult/model/wire.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.model.clock import iso

#: Positions of identifiers in a text (consult/services/freetext.py), decided per reader.
Spans = list[dict[str, Any]] | None

DESTROYED_REASON = "Destroyed at the end of the retention period."


@dataclass(frozen=True, slots=True)
class MessageItem:
    """A structured data item of a message, in clear (``value`` None once destroyed)."""

    idx: int
    category: str
    value: str | None
    value_spans: Spans = None
    consent_id: str | None = None
    attachment_id: str | None = None
    referral_condition: str | None = None
    referral_justification: str | None = None
    referral_why_no_consent: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A message in clear (``text`` empty once retention destroyed the content)."""

    id: str
    consultation_id: str
    seq: int
    author_id: str
    author_org: str
    author_role: str
    author_name: str
    text: str
    text_spans: Spans
    flagged_categories: tuple[str, ...]
    created_at: datetime
    items: tuple[MessageItem, ...]
    destroyed: bool = False
    #: What the policy withheld from whom when it was sent, as its author was told
    #: (``{"version", "withheld"}``); None for messages sent before it was kept.
    sent_policy: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ReadMarker:
    """How far one participant has read a consultation."""

    user_id: str
    message_seq: int
    read_at: datetime


# -- one reader's view ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownItem:
    """An item the reader may see (its value with identifiers decided for the reader)."""

    category: str
    value: str | None
    consent_id: str | None = None
    attachment_id: str | None = None
    referral_condition: str | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"category": self.category, "value": self.value}
        if self.consent_id:
            body["consent_id"] = self.consent_id
        if self.attachment_id:
            body["attachment_id"] = self.attachment_id
        if self.referral_condition:
            body["referral"] = {"condition": self.referral_condition}
        return body


@dataclass(frozen=True, slots=True)
class ConsentState:
    """Why an item's consent no longer holds: withdrawn or expired, and since when."""

    id: str
    status: str
    since: datetime | None

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "since": iso(self.since)}


@dataclass(frozen=True, slots=True)
class WithheldItem:
    """An item withheld from the reader: its category and the rule, never its value."""

    category: str
    reason: str
    rule: str
    citation: str
    consent: ConsentState | None = None
    destroyed: bool = False  # by retention, not by the policy

    @classmethod
    def by_retention(cls, category: str) -> WithheldItem:
        return cls(category, DESTROYED_REASON, "retention", "", destroyed=True)

    def wire(self) -> dict[str, Any]:
        if self.destroyed:
            return {"category": self.category, "withheld": True, "rule": self.rule, "citation": self.citation,
                    "reason": self.reason}
        body: dict[str, Any] = {"category": self.category, "withheld": True, "reason": self.reason,
                                "rule": self.rule, "citation": self.citation}
        if self.consent is not None:
            body["consent"] = self.consent.wire()
        return body


ItemView = ShownItem | WithheldItem


@dataclass(frozen=True, slots=True)
class AuthorView:
    id: str
    name: str
    org: str
    role: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "org": self.org, "role": self.role}


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message as one reader may see it: a withheld value appears nowhere."""

    id: str
    consultation_id: str
    author: AuthorView
    text: str
    data: tuple[ItemView, ...]
    created_at: datetime
    flagged_categories: tuple[str, ...]  # free text the sender confirmed although it looked like these
    content_destroyed: bool
    read_by: tuple[ReadMarker, ...]
    policy: dict[str, Any] | None = None  # only in the author's own view: what was withheld at send time

    @property
    def shown_categories(self) -> tuple[str, ...]:
        return tuple(d.category for d in self.data if isinstance(d, ShownItem))

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "author": self.author.wire(),
            "text": self.text,
            "data": [d.wire() for d in self.data],
            "created_at": iso(self.created_at),
            "flagged_categories": list(self.flagged_categories),
            "content_destroyed": self.content_destroyed,
            "read_by": [{"user_id": m.user_id, "read_at": iso(m.read_at)} for m in self.read_by],
            **({} if self.policy is None else {"policy": self.policy}),
        }


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """The sender's answer: the message as they see it, with what the policy withheld from whom,
    the identifiers found and the sensitive passages confirmed."""

    message: MessageView
    policy_version: str
    withheld: tuple[dict[str, Any], ...]
    identifiers: tuple[dict[str, Any], ...]
    sensitive: tuple[dict[str, Any], ...]

    def wire(self) -> dict[str, Any]:
        return {**self.message.wire(),
                "policy": {"version": self.policy_version, "withheld": list(self.withheld)},
                "identifiers": list(self.identifiers), "sensitive": list(self.sensitive)}


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a consultation's messages for one reader."""

    items: tuple[MessageView, ...]
    next: str | None

    def wire(self) -> dict[str, Any]:
        return {"items": [m.wire() for m in self.items], "next": self.next}
