"""Attachments (public API, docs/capabilities.md): PDF, PNG or JPEG, recognised by content,
size-limited, sealed under the consultation's key, and served only to readers the policy lets see
the item that carries them."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import NotFound, Unprocessable
from consult.model import Clock, Principal
from consult.model.context import RequestContext
from consult.services import access, gate, parties
from consult.services.content import Content
from consult.services.messages import DataItem, Messages
from consult.services.sensitive import Confirmation
from consult.storage import attachments as store

CATEGORY = "application.attachment"
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff(data: bytes) -> str | None:
    """The content type by magic bytes, whatever the upload claimed."""
    return next((kind for magic, kind in MAGIC if data.startswith(magic)), None)


def clean_filename(name: str | None) -> str:
    """The last path segment, percent-decoded (some clients quote the name), without control
    characters, at most 200 characters, and without identity codes (the content gate)."""
    base = unquote(name or "", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    # Gated before it is cut, so no identity code is cut into something the scanner misses.
    return gate.file_name(base.strip())[:200].strip() or "attachment"


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


class Attachments:
    def __init__(self, messages: Messages, content: Content, clock: Clock) -> None:
        self.messages = messages
        self.content = content
        self.db = messages.db
        self.clock = clock

    async def upload(
        self, who: Principal, consultation_id: str, filename: str | None, data: bytes, caption: str,
        consent_id: str | None, ctx: RequestContext, *, confirmation: Confirmation | None = None,
    ) -> dict[str, Any]:
        content_type = sniff(data)
        if content_type is None:
            raise Unprocessable("Only PDF, PNG and JPEG files are accepted (checked by content).",
                                code="unsupported_file")
        name = clean_filename(filename)
        attachment_id = str(uuid.uuid4())
        message_id = str(uuid.uuid4())
        now = self.clock.now()

        async def store_attachment(conn: AsyncConnection, key: Any, mid: str) -> None:
            filename_sealed, content_sealed = self.content.seal_attachment(key, attachment_id, name, data)
            await store.insert_attachment(conn, {
                "id": attachment_id, "consultation_id": consultation_id, "message_id": mid,
                "uploaded_by": who.user_id, "content_type": content_type, "size": len(data),
                "filename_sealed": filename_sealed, "content_sealed": content_sealed, "created_at": now,
            })

        item = DataItem(category=CATEGORY, value=name, consent_id=consent_id, attachment_id=attachment_id)
        message = await self.messages.post(who, consultation_id, caption, [item], ctx,
                                           message_id=message_id, before_store=store_attachment,
                                           confirmation=confirmation)
        return {"id": attachment_id, "content_type": content_type, "size": len(data), "message": message}

    async def download(self, who: Principal, attachment_id: str, ctx: RequestContext) -> Download:
        async with self.db.read() as conn:
            row = await store.get(conn, attachment_id) if len(attachment_id) <= 36 else None
            if row is None:
                raise NotFound()
            acc = await access.resolve(conn, who, row["consultation_id"], self.content)
            item = await store.item_for(conn, attachment_id)
            if item is None or acc.consultation.content_destroyed:
                raise NotFound()
            consents = [item["consent_id"]] if item["consent_id"] else []
            view = await self.messages.view_for(conn, acc.consultation, consents)
            key = await self.content.key(conn, row["consultation_id"])
        c = acc.consultation
        reader = parties.of_principal(who, acc.participant, c)
        author = parties.author(item)
        if who.user_id != item["author_id"]:
            decision = self.messages.disclosure.decide(author, reader, CATEGORY, view, consent_id=item["consent_id"])
            if not decision.permitted:
                raise NotFound()
        else:
            decision = None
        filename, data = self.content.open_attachment(key, row)
        if decision is not None:
            # The file name is the item's value: its identifiers are decided for this reader.
            filename = self.messages.disclosure.render_text(filename, item["value_spans"], author, reader, view)
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [AuditRecord(
            action="attachment.download", consultation_id=c.id, message_id=item["message_id"],
            client_ref=c.client_ref, categories=(CATEGORY,), purpose=c.purpose,
            basis=decision.basis if decision else "author", rule_id=decision.rule_id if decision else None,
            policy_version=decision.policy_version if decision else None,
            consent_id=item["consent_id"])]))
        return Download(filename=filename, content_type=row["content_type"], data=data)
