"""Free text to another organisation, checked against what that reader may not receive.

Structured data items are enforced by the policy, item by item and reader by reader. Free text
cannot be: the signals of ``policies/signals.toml`` find the passages that look like a
sensitive category, and the policy says, per recipient in another organisation, whether that
category would be withheld from them (with this consultation's purpose, client link and the
client's prohibitions; free text carries no consent tag, so a category that needs consent is
withheld from it). A flagged text is sent only when the sender moves the passage into a
structured item — which the policy then decides — or confirms with a written reason: the
sender answers for it. A confirmation is written to the audit log with the reason (kept beside
the log, like a break-glass justification) as a disclosure to each recipient, so that privacy
officers of both organisations and the client access report see it; the message carries the
confirmed categories so that the reader sees that it was flagged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord
from consult.errors import Conflict, Unprocessable
from consult.model import Principal
from consult.model.identifiers import ClientRef
from consult.policy.model import Party
from consult.policy.signals import Passage
from consult.services import gate
from consult.services.disclosure import Act, Disclosure
from consult.storage import audit_log

REASON_KIND = "sensitive_free_text"
FLAG = "sensitive_free_text"
BASIS = "sender-confirmation"
RULE = "sender-confirmed-free-text"
REASON_MIN = 10
REASON_MAX = 1000


@dataclass(frozen=True)
class Confirmation:
    """The sender's answer to a flag: the categories they saw and why the text must say it."""

    reason: str
    categories: frozenset[str]


@dataclass(frozen=True)
class Reader:
    """A recipient as a plain value, for callers without one of their own."""

    user_id: str | None
    party: Party


class Recipient(Protocol):
    """A reader the text goes to: a user, or (while unclaimed) the target organisation's role."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def party(self) -> Party: ...


@dataclass(frozen=True)
class Checked:
    """What the check found: the flagged passages (for the sender) and, when confirmed, the
    categories the sender answers for and the recipients each was withheld from."""

    flags: list[dict[str, Any]]
    confirmation: Confirmation | None

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({f["category"] for f in self.flags}))


class SensitiveTextUnconfirmed(Conflict):
    """409: the text looks like a category withheld from a recipient and was not confirmed."""

    code = "sensitive_text"
    default_message = ("The text looks like information that a recipient in another "
                       "organisation may not receive. Move it into a data item, or confirm "
                       "with a reason.")

    def __init__(self, flags: list[dict[str, Any]]) -> None:
        super().__init__()
        self.flags = flags

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = super().body()
        body["error"]["flagged"] = self.flags
        body["error"]["categories"] = sorted({f["category"] for f in self.flags})
        return body


class SensitiveText:
    def __init__(self, disclosure: Disclosure) -> None:
        self.disclosure = disclosure

    def flags(self, text: str, sender: Party, recipients: Sequence[Recipient], act: Act,
              passages: list[Passage] | None = None) -> list[dict[str, Any]]:
        """Each passage that looks like a category the policy withholds from a recipient in
        another organisation, with the span in ``text`` and whom and by which rule.
        ``passages`` are the detector's, if the caller already has them."""
        others = [r for r in recipients if r.party.org != sender.org]
        if not others or not text:
            return []
        out = []
        for passage in self.disclosure.signals.detect(text) if passages is None else passages:
            withheld = []
            for r in others:
                d = act.category(passage.category, sender, r.party)
                if not d.permitted:
                    withheld.append({
                        "recipient": {"user_id": r.user_id, "org": r.party.org, "role": r.party.role},
                        "rule": d.rule_id, "citation": d.citation, "reason": d.reason,
                    })
            if withheld:
                out.append({"category": passage.category, "start": passage.start,
                            "end": passage.end, "signal": passage.signal, "withheld_from": withheld})
        return out

    @staticmethod
    def confirm(flags: list[dict[str, Any]], confirmation: Confirmation | None) -> Checked:
        """Raises ``SensitiveTextUnconfirmed`` (409, with the flags) unless ``confirmation``
        covers every flagged category. Nothing is stored here."""
        if not flags:
            return Checked([], None)
        if confirmation is None or not {f["category"] for f in flags} <= confirmation.categories:
            raise SensitiveTextUnconfirmed(flags)
        return Checked(flags, confirmation)

    async def record(self, conn: AsyncConnection, who: Principal, checked: Checked, *,
                     consultation_id: str, message_id: str | None, client_ref: ClientRef | None,
                     purpose: str, at: datetime) -> list[AuditRecord]:
        """Inside the write unit: keep the reason beside the log and return the audit records
        of the confirmed disclosure, one per recipient and category (for ``record``)."""
        if checked.confirmation is None:
            return []
        reason = checked.confirmation.reason
        reason_id = str(uuid.uuid4())
        digest = hashlib.sha256(reason.encode("utf-8")).hexdigest()
        await audit_log.insert_reason(conn, {"id": reason_id, "kind": REASON_KIND, "text": reason,
                                             "digest": digest, "at": at, "actor_id": who.user_id,
                                             "actor_org": who.org})
        seen: set[tuple[str, str | None, str, str]] = set()
        records = []
        for flag in checked.flags:
            for w in flag["withheld_from"]:
                r = w["recipient"]
                key = (flag["category"], r["user_id"], r["org"], r["role"])
                if key in seen:
                    continue
                seen.add(key)
                records.append(AuditRecord(
                    action="disclose", outcome="permit", consultation_id=consultation_id,
                    message_id=message_id, client_ref=client_ref, categories=(flag["category"],),
                    purpose=purpose, basis=BASIS, rule_id=RULE,
                    policy_version=self.disclosure.version, subject_user=r["user_id"],
                    recipient_org=r["org"], recipient_role=r["role"], flags=(FLAG,),
                    reason_id=reason_id, reason_digest=digest,
                ))
        return records


def confirmation_reason(reason: str) -> str:
    """A written reason, checked like every text that reaches the audit trail: long enough
    to say something, and free of identifiers (refer to the client by the consultation)."""
    reason = reason.strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise Unprocessable(f"sensitive_confirmation.reason: write {REASON_MIN} to {REASON_MAX} "
                            "characters.", code="invalid_field")
    # Kept in clear beside the audit log, like a break-glass justification: the content gate's
    # rule for fields kept as typed (422 identifier_in_text, field and kinds, never the value).
    gate.reference("sensitive_confirmation.reason", reason)
    return reason
