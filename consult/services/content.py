"""A consultation's content — question, outcome note, message texts, data values, referral
justifications, attachments — sealed under the consultation's own data key.

Storage only ever sees ciphertext. Once retention has destroyed a consultation's data key,
its content reads as destroyed while its metadata and audit trail remain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.crypto import SealingKey
from consult.services.vault import Vault, consultation_owner


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

    async def open_consultation(self, conn: AsyncConnection, row: dict[str, Any]) -> dict[str, Any]:
        """The row with ``question`` and ``outcome_note`` in clear (empty once shredded)."""
        opened = dict(row)
        if row["shredded_at"] is not None:
            opened.update(question="", outcome_note=None, question_spans=None, content_destroyed=True)
            return opened
        key = await self.key(conn, row["id"])
        opened["question"] = self.vault.open(key, "consultations", row["id"], "question", row["question_sealed"])
        note = row.get("outcome_note_sealed")
        opened["outcome_note"] = (
            None if note is None else self.vault.open(key, "consultations", row["id"], "outcome_note", note)
        )
        opened["content_destroyed"] = False
        return opened

    # -- messages -------------------------------------------------------------------------

    def seal_text(self, key: SealingKey, message_id: str, text: str) -> bytes:
        return self.vault.seal(key, "messages", message_id, "text", text)

    def seal_item(self, key: SealingKey, message_id: str, idx: int, field: str, value: str) -> bytes:
        return self.vault.seal(key, "message_items", f"{message_id}/{idx}", field, value)

    async def open_messages(
        self, conn: AsyncConnection, consultation: dict[str, Any], rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Messages with ``text`` and item ``value``, ``referral_justification`` and
        ``referral_why_no_consent`` in clear."""
        if not rows:
            return rows
        destroyed = consultation["shredded_at"] is not None
        key = None if destroyed else await self.key(conn, consultation["id"])
        opened = []
        for row in rows:
            message = {k: v for k, v in row.items() if k != "text_sealed"}
            message["destroyed"] = destroyed
            message["text"] = "" if key is None else self.vault.open(key, "messages", row["id"], "text",
                                                                     row["text_sealed"])
            items = []
            for item in row["items"]:
                plain = {k: v for k, v in item.items() if not k.endswith("_sealed")}
                row_id = f"{row['id']}/{item['idx']}"
                plain["value"] = None if key is None else self.vault.open(
                    key, "message_items", row_id, "value", item["value_sealed"])
                for field in ("referral_justification", "referral_why_no_consent"):
                    sealed = item.get(f"{field}_sealed")
                    plain[field] = (None if key is None or sealed is None
                                    else self.vault.open(key, "message_items", row_id, field, sealed))
                items.append(plain)
            message["items"] = items
            opened.append(message)
        return opened

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
