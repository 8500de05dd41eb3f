"""A client's consent as the services hold it: one stored version (`ConsentVersion`), its events,
and the answer a reader gets (`ConsentAnswer`), which says how it reads on the wire (docs/capabilities.md, public API).
The rules that read a version (its discloser, its end, its status at a moment) live in
consult/services/consents.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.model.clock import iso
from consult.model.identifiers import ClientRef


@dataclass(frozen=True, slots=True)
class ConsentVersion:
    """One version of a consent, as recorded."""

    id: str
    version: int
    client_ref: ClientRef
    grantor: str
    categories: tuple[str, ...]
    recipient_orgs: tuple[str, ...]
    recipient_roles: tuple[str, ...]
    recipient_users: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    method: str
    evidence_ref: str | None
    witnessed_by: str | None
    disclosing_org: str | None
    recorded_by: str
    recorded_org: str
    status: str
    status_changed_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """Something that happened to a version: created, superseded, confirmed, withdrawn, ..."""

    event: str
    version: int
    at: datetime
    actor_id: str
    actor_org: str

    def wire(self) -> dict[str, Any]:
        return {"event": self.event, "version": self.version, "at": iso(self.at), "actor_org": self.actor_org}


@dataclass(frozen=True, slots=True)
class Confirmation:
    """When and by whom the disclosing organisation confirmed a version (None: not yet)."""

    at: datetime | None
    by: str | None


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    """A consent version as a reader gets it at one moment: its status then, the organisation it
    waives secrecy for and its end as the rules read them, and, where asked, its confirmation
    and events."""

    consent: ConsentVersion
    status: str
    disclosing_org: str | None
    valid_until: datetime
    confirmation: Confirmation | None = None
    events: tuple[ConsentEvent, ...] | None = None

    def wire(self) -> dict[str, Any]:
        c = self.consent
        body: dict[str, Any] = {
            "id": c.id,
            "version": c.version,
            "client_ref": c.client_ref,
            "status": self.status,
            "grantor": c.grantor,
            "categories": list(c.categories),
            "disclosing_org": self.disclosing_org,
            "recipient_orgs": list(c.recipient_orgs),
            "recipient_roles": list(c.recipient_roles),
            "recipient_users": list(c.recipient_users),
            "purposes": list(c.purposes),
            "valid_from": iso(c.valid_from),
            "valid_until": iso(self.valid_until),
            "method": c.method,
            "evidence_ref": c.evidence_ref,
            "witnessed_by": c.witnessed_by,
            "recorded_by": c.recorded_by,
            "recorded_org": c.recorded_org,
            "status_changed_at": iso(c.status_changed_at),
            "created_at": iso(c.created_at),
        }
        if self.confirmation is not None:
            body["confirmed_at"] = iso(self.confirmation.at)
            body["confirmed_by"] = self.confirmation.by
        if self.events is not None:
            body["events"] = [e.wire() for e in self.events]
        return body
