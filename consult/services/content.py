"""A consultation's content — question, outcome note, message texts, data values, referral
justifications, attachments — sealed under the consultation's own data key.

Storage only ever sees ciphertext. Once retention has destroyed a consultation's data key,
its content reads as destroyed while its metadata and audit trail remain.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.crypto import SealingKey
from consult.model.consultations import Consultation
from consult.model.messages import Message, MessageItem
from consult.services.vault import Vault, consultation_owner
from consult.storage.messages import SealedItem, SealedMessage


class Content:
    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    async def key(self, conn: AsyncConnection, consultation_id: str, *, create_at: datetime | None = None
                  ) -> SealingKey:
        return await self.vault.key(conn, consultation_owner(consultation_id), create_at=create_at)

    # -- consultations --------------------------------------------------------------------

    def seal_question(self, key: SealingKey, consultation_id: str, text: str) -> bytes:
        return self.vault.seal(key, "consultations", consultation_id, "question", text)

    def seal_note(self, key: SealingKey, consultation_id: str, note: str | None) -> bytes | None:
        return None if note is None else self.vault.seal(key, "consultations", consultation_id, "outcome_note", note)

    async def open_consultation(self, conn: AsyncConnection, c: Consultation) -> Consultation:
        """The consultation with ``question`` and ``outcome_note`` in clear (empty once shredded)."""
        if c.shredded_at is not None:
            return replace(c, question="", outcome_note=None, question_spans=None, content_destroyed=True)
        key = await self.key(conn, c.id)
        question = self.vault.open(key, "consultations", c.id, "question", c.question_sealed)
        note = c.outcome_note_sealed
        return replace(c, question=question, content_destroyed=False, outcome_note=(
            None if note is None else self.vault.open(key, "consultations", c.id, "outcome_note", note)))

    # -- messages -------------------------------------------------------------------------

    def seal_text(self, key: SealingKey, message_id: str, text: str) -> bytes:
        return self.vault.seal(key, "messages", message_id, "text", text)

    def seal_item(self, key: SealingKey, message_id: str, idx: int, field: str, value: str) -> bytes:
        return self.vault.seal(key, "message_items", f"{message_id}/{idx}", field, value)

    def seal_message(self, key: SealingKey, message: Message) -> SealedMessage:
        """``message`` as it is stored: its text, item values and referral texts sealed."""
        def sealed(idx: int, field: str, value: str | None) -> bytes | None:
            return None if value is None else self.seal_item(key, message.id, idx, field, value)

        return SealedMessage(
            id=message.id, consultation_id=message.consultation_id, author_id=message.author_id,
            author_org=message.author_org, author_role=message.author_role, author_name=message.author_name,
            text_sealed=self.seal_text(key, message.id, message.text), text_spans=message.text_spans,
            flagged_categories=message.flagged_categories, created_at=message.created_at,
            items=tuple(SealedItem(
                idx=i.idx, category=i.category,
                value_sealed=self.seal_item(key, message.id, i.idx, "value", i.value or ""),
                value_spans=i.value_spans, consent_id=i.consent_id, attachment_id=i.attachment_id,
                referral_condition=i.referral_condition,
                referral_justification_sealed=sealed(i.idx, "referral_justification", i.referral_justification),
                referral_why_no_consent_sealed=sealed(i.idx, "referral_why_no_consent", i.referral_why_no_consent),
            ) for i in message.items),
            sent_policy_sealed=None if message.sent_policy is None else self.vault.seal(
                key, "messages", message.id, "sent_policy", json.dumps(message.sent_policy, separators=(",", ":"))),
        )

    async def open_messages(
        self, conn: AsyncConnection, consultation: Consultation, rows: list[SealedMessage]
    ) -> list[Message]:
        """Messages with their text and item values and referral texts in clear."""
        if not rows:
            return []
        destroyed = consultation.shredded_at is not None
        key = None if destroyed else await self.key(conn, consultation.id)
        return [self.open_message(key, row) for row in rows]

    def open_message(self, key: SealingKey | None, row: SealedMessage) -> Message:
        """One message in clear; with no key (destroyed by retention) its content reads as empty."""
        items = []
        for item in row.items:
            row_id = f"{row.id}/{item.idx}"

            def opened(field: str, sealed: bytes | None, row_id: str = row_id) -> str | None:
                return None if key is None or sealed is None else self.vault.open(
                    key, "message_items", row_id, field, sealed)

            items.append(MessageItem(
                idx=item.idx, category=item.category, value=opened("value", item.value_sealed),
                value_spans=item.value_spans, consent_id=item.consent_id, attachment_id=item.attachment_id,
                referral_condition=item.referral_condition,
                referral_justification=opened("referral_justification", item.referral_justification_sealed),
                referral_why_no_consent=opened("referral_why_no_consent", item.referral_why_no_consent_sealed),
            ))
        return Message(
            id=row.id, consultation_id=row.consultation_id, seq=row.seq, author_id=row.author_id,
            author_org=row.author_org, author_role=row.author_role, author_name=row.author_name,
            text="" if key is None else self.vault.open(key, "messages", row.id, "text", row.text_sealed),
            text_spans=row.text_spans, flagged_categories=row.flagged_categories, created_at=row.created_at,
            items=tuple(items), destroyed=key is None,
            sent_policy=None if key is None or row.sent_policy_sealed is None else json.loads(
                self.vault.open(key, "messages", row.id, "sent_policy", row.sent_policy_sealed)),
        )

    # -- attachments ----------------------------------------------------------------------

    def seal_attachment(self, key: SealingKey, attachment_id: str, filename: str, data: bytes) -> tuple[bytes, bytes]:
        return (
            self.vault.seal(key, "attachments", attachment_id, "filename", filename),
            self.vault.seal_bytes(key, "attachments", attachment_id, "content", data),
        )

    def open_attachment(self, key: SealingKey, row: dict[str, Any]) -> tuple[str, bytes]:
        return (
            self.vault.open(key, "attachments", row["id"], "filename", row["filename_sealed"]),
            self.vault.open_bytes(key, "attachments", row["id"], "content", row["content_sealed"]),
        )
