"""Messages (SPEC C1, C2): post with structured data items, list as each reader may see them,
and read receipts.

The policy is applied at send time — the sender learns, per item and recipient, what is
withheld and why — and again at read time for every reader and every live event, so a
participant added later sees only what the policy lets *them* see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, iso
from consult.model.context import RequestContext
from consult.policy.model import Decision, Party
from consult.services import access
from consult.services.directory import Directory
from consult.services.disclosure import Disclosure, ItemContext, party_of, party_of_principal
from consult.services.events import EventBus
from consult.services.paging import clamp_limit, decode_cursor, encode_cursor
from consult.storage import consultations as consultation_store
from consult.storage import messages as store
from consult.storage.db import Database


@dataclass(frozen=True)
class DataItem:
    category: str
    value: str
    consent_id: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Someone a message goes to: a participant, or (while unclaimed) the target org's experts."""

    user_id: str | None
    party: Party


class Messages:
    def __init__(
        self, db: Database, bus: EventBus, directory: Directory, disclosure: Disclosure, clock: Clock
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = directory
        self.disclosure = disclosure
        self.clock = clock

    # -- the policy, per item and reader ----------------------------------------------------

    def _item_context(self, consultation: dict[str, Any]) -> ItemContext:
        return ItemContext(purpose=consultation["purpose"], client_ref=consultation["client_ref"])

    def _decide(self, message: dict[str, Any], reader: Party, ctx: ItemContext, category: str) -> Decision:
        author = Party(org=message["author_org"], role=message["author_role"], user_id=message["author_id"])
        return self.disclosure.decide(author, reader, category, ctx)

    def render(
        self,
        message: dict[str, Any],
        reader: Party,
        ctx: ItemContext,
        markers: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The message as ``reader`` may see it: withheld values appear nowhere."""
        own = reader.user_id == message["author_id"]
        data: list[dict[str, Any]] = []
        for item in message["items"]:
            if own:
                data.append(_item_json(item))
                continue
            decision = self._decide(message, reader, ctx, item["category"])
            data.append(_item_json(item) if decision.permitted else self.disclosure.withheld_view(item["category"], decision))
        return {
            "id": message["id"],
            "consultation_id": message["consultation_id"],
            "author": {
                "id": message["author_id"],
                "name": message["author_name"],
                "org": message["author_org"],
                "role": message["author_role"],
            },
            "text": message["text"],
            "data": data,
            "created_at": iso(message["created_at"]),
            "read_by": [
                {"user_id": m["user_id"], "read_at": iso(m["read_at"])}
                for m in markers
                if m["message_seq"] >= message["seq"] and m["user_id"] != message["author_id"]
            ],
        }

    # -- post ---------------------------------------------------------------------------

    async def post(
        self,
        who: Principal,
        consultation_id: str,
        text: str,
        items: list[DataItem],
        ctx: RequestContext,
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id)
        participants = acc.participants
        if acc.participant is None:
            raise Forbidden("Claim the consultation before writing in it.", code="not_participant")
        c = acc.consultation
        if c["status"] == "closed":
            raise Conflict("The consultation is closed.", code="closed")
        if not text.strip() and not items:
            raise Unprocessable("A message needs text or data.", code="empty_message")

        sender = Party(org=who.org, role=acc.participant["role"], user_id=who.user_id)
        item_ctx = self._item_context(c)
        recipients = self._recipients(c, participants, who.user_id)
        decisions = [
            [self.disclosure.decide(sender, r.party, item.category, item_ctx) for item in items]
            for r in recipients
        ]
        withheld = [
            _withheld_json(r, index, item, d)
            for r, row in zip(recipients, decisions, strict=True)
            for index, (item, d) in enumerate(zip(items, row, strict=True))
            if not d.permitted
        ]
        now = self.clock.now()
        audit = [
            AuditRecord(
                action="disclose" if d.permitted else "disclose.withheld",
                outcome="permit" if d.permitted else "deny",
                consultation_id=consultation_id,
                client_ref=c["client_ref"],
                categories=(item.category,),
                purpose=c["purpose"],
                basis=d.basis,
                rule_id=d.rule_id,
                policy_version=d.policy_version,
                subject_user=r.user_id,
            )
            for r, row in zip(recipients, decisions, strict=True)
            for item, d in zip(items, row, strict=True)
        ]
        everything_withheld = (
            not text.strip() and items and all(not d.permitted for row in decisions for d in row)
        )
        if everything_withheld:
            await self.db.write(lambda conn: record(conn, who, ctx, now, audit))
            rules = sorted({d.rule_id for row in decisions for d in row})
            raise Forbidden(
                "Every part of this message would be withheld (rule: " + ", ".join(rules) + ").",
                code="policy_denied",
            )

        message_id = str(uuid.uuid4())
        values = {
            "id": message_id,
            "consultation_id": consultation_id,
            "author_id": who.user_id,
            "author_org": who.org,
            "author_role": sender.role,
            "author_name": who.name,
            "text": text,
            "created_at": now,
        }
        item_rows = [
            {"idx": i, "category": item.category, "value": item.value, "consent_id": item.consent_id}
            for i, item in enumerate(items)
        ]
        first_response = who.org == c["target_org"] and c["first_response_at"] is None

        async def unit(conn: AsyncConnection) -> int:
            seq = await store.insert_message(conn, values, item_rows)
            if first_response:
                await consultation_store.mark_first_response(conn, consultation_id, now)
            await record(
                conn, who, ctx, now,
                [
                    AuditRecord(
                        action="message.create",
                        consultation_id=consultation_id,
                        message_id=message_id,
                        client_ref=c["client_ref"],
                        categories=tuple(i.category for i in items),
                        purpose=c["purpose"],
                    ),
                    *[_with_message(a, message_id) for a in audit],
                ],
            )
            return seq

        seq = await self.db.write(unit)
        stored = {**values, "seq": seq, "items": [{**r, "message_id": message_id} for r in item_rows]}
        body = self.render(stored, sender, item_ctx, [])
        body["policy"] = {"version": self.disclosure.version, "withheld": withheld}
        await self._publish(c, participants, stored, item_ctx)
        return body

    def _recipients(
        self, c: dict[str, Any], participants: list[dict[str, Any]], author_id: str
    ) -> list[Recipient]:
        others = [
            Recipient(p["user_id"], Party(org=p["org"], role=p["role"], user_id=p["user_id"]))
            for p in participants
            if p["user_id"] != author_id
        ]
        if others or c["status"] != "open":
            return others
        # Unclaimed: whoever claims it will be an expert of the target organisation.
        return [Recipient(None, Party(org=c["target_org"], role="expert"))]

    async def _publish(
        self,
        c: dict[str, Any],
        participants: list[dict[str, Any]],
        stored: dict[str, Any],
        item_ctx: ItemContext,
    ) -> None:
        readers: dict[str, Party] = {
            p["user_id"]: Party(org=p["org"], role=p["role"], user_id=p["user_id"]) for p in participants
        }
        if c["status"] == "open":
            for user_id in await self.directory.offer_targets(c["target_org"], c["pool"], c["expert_id"]):
                readers.setdefault(user_id, Party(org=c["target_org"], role="expert", user_id=user_id))
        self.bus.publish(
            readers,
            lambda user_id: {"type": "message.created", "message": self.render(stored, readers[user_id], item_ctx, [])},
        )

    # -- read -----------------------------------------------------------------------------

    async def list_for(
        self,
        who: Principal,
        consultation_id: str,
        *,
        limit: int | None,
        cursor: str | None,
        ctx: RequestContext,
    ) -> dict[str, Any]:
        limit = clamp_limit(limit)
        after = decode_cursor("m", cursor)
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id)
            rows = await store.list_messages(conn, consultation_id, after_seq=after, limit=limit + 1)
            markers = await store.read_markers_for(conn, consultation_id)
        more = len(rows) > limit
        rows = rows[:limit]
        c = acc.consultation
        reader = (
            Party(org=who.org, role=acc.participant["role"], user_id=who.user_id)
            if acc.participant
            else party_of_principal(who)
        )
        item_ctx = self._item_context(c)
        items = [self.render(r, reader, item_ctx, markers) for r in rows]
        categories = sorted({i["category"] for r in rows for i in r["items"]})
        await self.db.write(
            lambda conn: record(
                conn, who, ctx, self.clock.now(),
                [AuditRecord(action="messages.read", consultation_id=consultation_id, client_ref=c["client_ref"],
                             categories=tuple(categories), purpose=c["purpose"])],
            )
        )
        return {"items": items, "next": encode_cursor("m", rows[-1]["seq"]) if more else None}

    async def mark_read(
        self, who: Principal, consultation_id: str, message_id: str, ctx: RequestContext
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id)
            message = await store.get_message(conn, message_id) if len(message_id) <= 36 else None
        participants = acc.participants
        if acc.participant is None:
            raise Forbidden("Only participants leave read receipts.", code="not_participant")
        if message is None or message["consultation_id"] != consultation_id:
            raise NotFound()
        now = self.clock.now()
        moved = await self.db.write(
            lambda conn: store.advance_read_marker(conn, consultation_id, who.user_id, message["seq"], now)
        )
        receipt = {"consultation_id": consultation_id, "user_id": who.user_id, "message_id": message_id,
                   "read_at": iso(now)}
        if moved:
            self.bus.publish(
                [p["user_id"] for p in participants], lambda _u: {"type": "message.read", **receipt}
            )
        return receipt


def _item_json(item: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"category": item["category"], "value": item["value"]}
    if item.get("consent_id"):
        body["consent_id"] = item["consent_id"]
    return body


def _withheld_json(r: Recipient, index: int, item: DataItem, d: Decision) -> dict[str, Any]:
    return {
        "recipient": {"user_id": r.user_id, "org": r.party.org, "role": r.party.role},
        "index": index,
        "category": item.category,
        "effect": d.effect,
        "rule": d.rule_id,
        "citation": d.citation,
        "reason": d.reason,
    }


def _with_message(rec: AuditRecord, message_id: str) -> AuditRecord:
    from dataclasses import replace

    return replace(rec, message_id=message_id)
