"""Messages (docs/capabilities.md C1, C2): post with structured data items, list as each reader may see them,
and read receipts.

The policy is applied at send time — the sender learns, per item and recipient, what is
withheld and why — and again at read time for every reader and every live event, so a
participant added later, or a consent withdrawn later, changes what a reader sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, iso
from consult.model.consultations import Consultation, Participant
from consult.model.context import RequestContext
from consult.model.messages import (
    DESTROYED_REASON,
    AuthorView,
    ItemView,
    Message,
    MessageItem,
    MessagePage,
    MessageView,
    PostedMessage,
    ReadMarker,
    ShownItem,
    WithheldItem,
)
from consult.model.vocabulary import NOTIFICATION_PURPOSE
from consult.policy.model import Decision, Party, Referral
from consult.policy.scan import Finding, scan
from consult.services import access, parties
from consult.services import gate as content_gate
from consult.services.consents import Consents
from consult.services.content import Content
from consult.services.deliveries import record_deliveries
from consult.services.directory import Directory
from consult.services.disclosure import Act, Disclosure, View
from consult.services.events import Delivery, EventBus, Subject
from consult.services.freetext import render as render_text
from consult.services.gate import ContentGate, notices_for
from consult.services.paging import clamp_limit, decode_cursor, encode_cursor
from consult.services.sensitive import Confirmation, SensitiveText
from consult.storage import consultations as consultation_store
from consult.storage import messages as store
from consult.storage.db import Database


@dataclass(frozen=True)
class DataItem:
    category: str
    value: str
    consent_id: str | None = None
    referral: Referral | None = None
    attachment_id: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Someone a message goes to: a participant, or (while unclaimed) the target org's experts."""

    user_id: str | None
    party: Party


@dataclass(frozen=True)
class Draft:
    """A message checked against the policy for its current recipients, not yet stored."""

    consultation: Consultation
    participants: list[Participant]
    sender: Party
    act: Act  # the decisions made, reused for the live deliveries
    recipients: list[Recipient]
    decisions: list[list[Decision]]  # [recipient][item]
    withheld: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    sensitive: list[dict[str, Any]]  # passages that look like a category withheld from a recipient
    findings: list[Finding]  # identifiers in the text, found once here and reused to store it
    item_findings: list[list[Finding]]  # the same, per item value


@dataclass(frozen=True)
class OrganisationView:
    """A consultation's content as one organisation may see it (break-glass)."""

    consultation: Consultation
    question: str
    messages: list[dict[str, Any]]
    categories: tuple[str, ...]  # the categories of the items shown


def organisation_parties(c: Consultation, participants: list[Participant], org: str) -> list[Party]:
    """Who reads for ``org`` in a consultation: its participants in their roles or, before any
    of them joined, the role the organisation has in it (the creator's, or an expert's)."""
    joined = [parties.participant(c, p) for p in participants if p.org == org]
    if joined:
        return joined
    if org == c.origin_org:
        return [replace(parties.creator(c), user_id=None)]
    return [parties.offered(c)]


class Messages:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        directory: Directory,
        disclosure: Disclosure,
        consents: Consents,
        gate: ContentGate,
        content: Content,
        clock: Clock,
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = directory
        self.disclosure = disclosure
        self.consents = consents
        self.gate = gate
        self.content = content
        self.clock = clock
        self.sensitive = SensitiveText(disclosure)

    # -- rendering for one reader -----------------------------------------------------------

    def render(self, message: Message, reader: Party, act: Act, markers: list[ReadMarker]) -> MessageView:
        """The message as ``reader`` may see it: a withheld value appears nowhere. The decisions
        come from ``act``, so a reader gets one decision per item however often it is rendered."""
        author = parties.author(message)
        own = reader.user_id is not None and reader.user_id == message.author_id
        data: list[ItemView] = []
        for item in message.items:
            if message.destroyed:
                data.append(WithheldItem.by_retention(item.category))
                continue
            if own:
                data.append(_shown(item, item.value))
                continue
            decision = act.item((message.id, item.idx), author, reader, item.category,
                                consent_id=item.consent_id, referral=_referral(item))
            if decision.permitted:
                # The category is the policy's; the identifiers inside the value are decided
                # per reader like those in the text.
                data.append(_shown(item, act.render_text(item.value or "", item.value_spans, author, reader)))
            else:
                data.append(self.disclosure.withheld_view(item.category, decision, act.view, item.consent_id))
        return MessageView(
            id=message.id,
            consultation_id=message.consultation_id,
            author=AuthorView(message.author_id, message.author_name, message.author_org, message.author_role),
            text=act.render_text(message.text, message.text_spans, author, reader),
            data=tuple(data),
            created_at=message.created_at,
            flagged_categories=message.flagged_categories,
            content_destroyed=message.destroyed,
            read_by=tuple(m for m in markers if m.message_seq >= message.seq and m.user_id != message.author_id),
            # What was withheld from whom is the author's to know, as decided when they sent it.
            policy=message.sent_policy if own and not message.destroyed else None,
        )

    async def view_for(self, conn: AsyncConnection, c: Consultation, consent_ids: list[str]) -> View:
        return View(
            purpose=c.purpose,
            client_ref=c.client_ref,
            now=self.clock.now(),
            consents=await self.consents.for_items(conn, sorted(set(consent_ids))),
            prohibitions=await self.consents.active_prohibitions(conn, c.client_ref),
        )

    # -- send -----------------------------------------------------------------------------

    async def check(
        self, who: Principal, consultation_id: str, text: str, items: list[DataItem], *, message_id: str = ""
    ) -> Draft:
        """Decide, per item and current recipient, what would be withheld — without storing. The
        decisions stay in the draft's act (items named by ``message_id`` and index) for the
        message's live deliveries."""
        consent_ids = [i.consent_id for i in items if i.consent_id]
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content, opened=False)
            view = await self.view_for(conn, acc.consultation, consent_ids)
        if acc.participant is None:
            raise Forbidden("Claim the consultation before writing in it.", code="not_participant")
        c = acc.consultation
        if c.status == "closed":
            raise Conflict("The consultation is closed.", code="closed")
        if c.purpose == NOTIFICATION_PURPOSE and who.org != c.origin_org:
            # Lastensuojelulaki 417/2007 25 §: the notification goes to child welfare; nothing of
            # child welfare comes back to the notifier through it.
            raise Forbidden("A child-welfare notification is one-way: the intake acknowledges it by claiming "
                            "and closing it, and writes nothing back.", code="one_way")
        if not text.strip() and not items:
            raise Unprocessable("A message needs text or data.", code="empty_message")
        unknown = [cid for cid in consent_ids if cid not in view.consents]
        if unknown:
            raise Unprocessable("consent_id does not name a recorded consent.", code="unknown_consent")
        sender = parties.of_principal(who, acc.participant, c)
        recipients = self._recipients(c, acc.participants, who.user_id)
        act = self.disclosure.act(view)
        decisions = [
            [act.item((message_id, index), sender, r.party, i.category, consent_id=i.consent_id,
                      referral=i.referral) for index, i in enumerate(items)]
            for r in recipients
        ]
        withheld = [
            _withheld_json(r, index, item.category, d)
            for r, row in zip(recipients, decisions, strict=True)
            for index, (item, d) in enumerate(zip(items, row, strict=True))
            if not d.permitted
        ]
        findings = scan(text)
        notices = notices_for(findings, c.purpose)
        scanned: list[tuple[int | None, list[Finding]]] = [(None, findings)]
        for index, item in enumerate(items):
            found = scan(item.value)
            scanned.append((index, found))
            notices += [{**n, "field": f"data[{index}].value"} for n in notices_for(found, c.purpose)]
        for item_index, found in scanned:
            for f in found:
                if f.kind == "hetu":
                    continue
                for r in recipients:
                    d = act.identifier(f.kind, sender, r.party)
                    if not d.permitted:
                        withheld.append(_withheld_json(r, item_index, f"identifier.{f.kind}", d))
        return Draft(c, acc.participants, sender, act, recipients, decisions, withheld, notices,
                     self.sensitive.flags(text, sender, recipients, act),
                     findings, [found for item_index, found in scanned if item_index is not None])

    async def preview(self, who: Principal, consultation_id: str, text: str, items: list[DataItem],
                      ctx: RequestContext) -> dict[str, Any]:
        """The sender's warning before sending: what the policy and the scanner would do.
        Nothing is stored but the record of the preview (``message.preview``)."""
        draft = await self.check(who, consultation_id, text, items)
        c = draft.consultation
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [
            AuditRecord(action="message.preview", consultation_id=consultation_id, client_ref=c.client_ref,
                        categories=tuple(i.category for i in items), purpose=c.purpose)]))
        return {"policy": {"version": self.disclosure.version, "withheld": draft.withheld},
                "identifiers": draft.notices, "sensitive": draft.sensitive}

    async def post(
        self,
        who: Principal,
        consultation_id: str,
        text: str,
        items: list[DataItem],
        ctx: RequestContext,
        *,
        message_id: str | None = None,
        before_store: Callable[[AsyncConnection, Any, str], Awaitable[None]] | None = None,
        confirmation: Confirmation | None = None,
    ) -> PostedMessage:
        """Check, store (sealed) and deliver a message. ``before_store`` runs in the same
        transaction with the consultation's key and the message id (attachments use it).
        Text that looks like a category withheld from a recipient in another organisation
        needs the sender's ``confirmation`` (else 409 and nothing is stored)."""
        message_id = message_id or str(uuid.uuid4())
        draft = await self.check(who, consultation_id, text, items, message_id=message_id)
        checked = self.sensitive.confirm(draft.sensitive, confirmation)
        c, act, now = draft.consultation, draft.act, self.clock.now()
        audit = [
            AuditRecord(
                action="disclose" if d.permitted else "disclose.withheld",
                outcome="permit" if d.permitted else "deny",
                consultation_id=consultation_id,
                client_ref=c.client_ref,
                categories=(item.category,),
                purpose=c.purpose,
                basis=d.basis,
                rule_id=d.rule_id,
                policy_version=d.policy_version,
                subject_user=r.user_id,
                recipient_org=r.party.org,
                recipient_role=r.party.role,
                consent_id=d.consent_id,
                consent_version=d.consent_version,
                flags=tuple(sorted(d.flags)),
            )
            for r, row in zip(draft.recipients, draft.decisions, strict=True)
            for item, d in zip(items, row, strict=True)
        ]
        if not text.strip() and items and all(not d.permitted for row in draft.decisions for d in row):
            await self.db.write(lambda conn: record(conn, who, ctx, now, audit))
            rules = sorted({d.rule_id for row in draft.decisions for d in row})
            raise Forbidden(
                "Every part of this message would be withheld (rule: " + ", ".join(rules) + ").",
                code="policy_denied",
            )

        first_response = who.org == c.target_org and c.first_response_at is None
        readers = await self._readers(c, draft.participants)

        async def unit(conn: AsyncConnection) -> tuple[Message, list[dict[str, Any]], list[Delivery]]:
            prepared = await self.gate.free_text(conn, who, text, c.purpose, now, findings=draft.findings)
            notices = list(prepared.notices)
            opened: list[MessageItem] = []
            for i, item in enumerate(items):
                value = await self.gate.free_text(conn, who, item.value, c.purpose, now,
                                                  field=f"data[{i}].value", findings=draft.item_findings[i])
                notices += value.notices
                referral = item.referral
                opened.append(MessageItem(
                    idx=i, category=item.category, value=value.text, value_spans=value.spans or None,
                    consent_id=item.consent_id, attachment_id=item.attachment_id,
                    referral_condition=referral.condition if referral else None,
                    referral_justification=None if referral is None else (
                        await self.gate.free_text(conn, who, referral.justification, c.purpose, now)).text,
                    referral_why_no_consent=None if referral is None else (
                        await self.gate.free_text(conn, who, referral.why_no_consent, c.purpose, now)).text,
                ))
            message = Message(
                id=message_id, consultation_id=consultation_id, seq=0, author_id=who.user_id,
                author_org=who.org, author_role=draft.sender.role, author_name=content_gate.display_name(who.name),
                text=prepared.text, text_spans=prepared.spans or None, flagged_categories=tuple(checked.categories),
                created_at=now, items=tuple(opened),
                sent_policy={"version": self.disclosure.version, "withheld": draft.withheld},
            )
            key = await self.content.key(conn, consultation_id)
            if before_store is not None:
                await before_store(conn, key, message_id)
            seq = await store.insert_message(conn, self.content.seal_message(key, message))
            message = replace(message, seq=seq)
            if first_response:
                await consultation_store.mark_first_response(conn, consultation_id, now)
            confirmed = await self.sensitive.record(
                conn, who, checked, consultation_id=consultation_id, message_id=message_id,
                client_ref=c.client_ref, purpose=c.purpose, at=now)
            created = [
                AuditRecord(
                    action="message.create",
                    consultation_id=consultation_id,
                    message_id=message_id,
                    client_ref=c.client_ref,
                    categories=tuple(i.category for i in items),
                    purpose=c.purpose,
                ),
                *[replace(a, message_id=message_id) for a in audit],
                *confirmed,
            ]
            # The live deliveries are reads by their recipients, recorded in this same commit
            # (after the act's own records, in one append); each reader's items are the
            # decisions made for the draft where the reader was a recipient then.
            live = await self.bus.emit(
                conn, consultation_id, readers,
                lambda user_id: {"type": "message.created", "message": self.render(message, readers[user_id], act, [])},
                subject=Subject(c.id, c.client_ref, c.purpose),
            )
            return message, notices, await record_deliveries(conn, live, now, [(who, ctx, created)],
                                                             later=self.bus.is_held)

        stored, notices, live = await self.db.write(unit)
        body = PostedMessage(self.render(stored, draft.sender, act, []), self.disclosure.version,
                             tuple(draft.withheld), tuple(notices), tuple(checked.flags))
        self.bus.send(live)
        return body

    def _recipients(
        self, c: Consultation, participants: list[Participant], author_id: str
    ) -> list[Recipient]:
        others = [
            Recipient(p.user_id, parties.participant(c, p))
            for p in participants
            if p.user_id != author_id
        ]
        if others or c.status != "open":
            return others
        # Unclaimed: whoever claims it will be offered it in the receiving role of its purpose.
        return [Recipient(None, parties.offered(c))]

    async def _readers(self, c: Consultation, participants: list[Participant]) -> dict[str, Party]:
        """Who receives a new message live: the participants and, while unclaimed, the on-duty
        experts it is offered to."""
        readers: dict[str, Party] = {
            p.user_id: parties.participant(c, p) for p in participants
        }
        if c.status == "open":
            for user_id in await self.directory.offer_targets(c.target_org, c.pool, c.expert_id):
                readers.setdefault(user_id, parties.offered(c, user_id))
        return readers

    # -- read -----------------------------------------------------------------------------

    async def list_for(
        self,
        who: Principal,
        consultation_id: str,
        *,
        limit: int | None,
        cursor: str | None,
        ctx: RequestContext,
    ) -> MessagePage:
        limit = clamp_limit(limit)
        after = decode_cursor("m", cursor)
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            rows = await store.list_messages(conn, consultation_id, after_seq=after, limit=limit + 1)
            markers = await store.read_markers_for(conn, consultation_id)
            more = len(rows) > limit
            opened = await self.content.open_messages(conn, acc.consultation, rows[:limit])
            view = await self.view_for(conn, acc.consultation, _consent_ids(opened))
        c = acc.consultation
        reader = parties.of_principal(who, acc.participant, c)
        act = self.disclosure.act(view)
        items = tuple(self.render(m, reader, act, markers) for m in opened)
        shown = sorted({category for m in items for category in m.shown_categories})
        await self.db.write(
            lambda conn: record(
                conn, who, ctx, self.clock.now(),
                [AuditRecord(action="messages.read", consultation_id=consultation_id, client_ref=c.client_ref,
                             categories=tuple(shown), purpose=c.purpose)],
            )
        )
        return MessagePage(items, encode_cursor("m", opened[-1].seq) if more else None)

    async def as_organisation(self, consultation_id: str, org: str) -> OrganisationView:
        """A consultation's content as ``org`` may see it through the policy — for a privacy
        officer's break-glass. What the organisation wrote is shown in full; what another
        organisation wrote is decided item by item (and identifier by identifier in text) for
        the organisation's parties to the consultation, as if one of them read it. An item the
        policy withholds from every one of them stays withheld: its category, rule, citation and
        basis are shown, its value nowhere. Neither records nor checks the caller: the caller
        has recorded the justification and audits the access."""
        async with self.db.read() as conn:
            stored = await consultation_store.get(conn, consultation_id)
            if stored is None:
                raise NotFound()
            c = await self.content.open_consultation(conn, stored)
            participants = await consultation_store.list_participants(conn, consultation_id)
            rows = await self.content.open_messages(
                conn, c, await store.list_messages(conn, consultation_id, after_seq=None, limit=100_000))
            view = await self.view_for(conn, c, _consent_ids(rows))
        org_parties = organisation_parties(c, participants, org)
        origin = parties.creator(c)
        messages = [self._as_organisation(r, org, org_parties, view) for r in rows]
        shown = sorted({d["category"] for m in messages for d in m["data"] if not d.get("withheld")})
        return OrganisationView(c, self._text_for(c.question or "", c.question_spans, origin, org, org_parties, view),
                                messages, tuple(shown))

    def _as_organisation(self, message: Message, org: str, parties_: list[Party], view: View
                         ) -> dict[str, Any]:
        author = parties.author(message)
        data: list[dict[str, Any]] = []
        for item in message.items:
            if message.destroyed:
                data.append({"category": item.category, "withheld": True, "rule": "retention",
                             "citation": "", "basis": "retention", "reason": DESTROYED_REASON})
                continue
            if author.org == org:
                data.append(_shown(item, item.value).wire())
                continue
            decisions = [self.disclosure.decide(author, p, item.category, view, consent_id=item.consent_id,
                                                referral=_referral(item)) for p in parties_]
            permitted = next((d for d in decisions if d.permitted), None)
            if permitted is not None:
                value = self._text_for(item.value or "", item.value_spans, author, org, parties_, view)
                data.append(_shown(item, value).wire())
            else:
                withheld = self.disclosure.withheld_view(item.category, decisions[0], view, item.consent_id)
                data.append({**withheld.wire(), "basis": decisions[0].basis})
        return {
            "id": message.id,
            "author": {"id": message.author_id, "name": message.author_name, "org": message.author_org,
                       "role": message.author_role},
            "text": self._text_for(message.text, message.text_spans, author, org, parties_, view),
            "data": data,
            "content_destroyed": message.destroyed,
            "created_at": iso(message.created_at),
        }

    def _text_for(self, text: str, spans: list[dict[str, Any]] | None, author: Party, org: str,
                  parties: list[Party], view: View) -> str:
        """Free text as ``org`` may see it: an identifier is shown if one of its parties may see it."""
        if author.org == org:
            return text

        def decide(kind: str) -> Decision:
            decisions = [self.disclosure.decide_identifier(kind, author, p, view) for p in parties]
            return next((d for d in decisions if d.permitted), decisions[0])

        return render_text(text, spans, decide)

    async def mark_read(
        self, who: Principal, consultation_id: str, message_id: str, ctx: RequestContext
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            message = await store.get_message(conn, message_id) if len(message_id) <= 36 else None
        if acc.participant is None:
            raise Forbidden("Only participants leave read receipts.", code="not_participant")
        if message is None or message.consultation_id != consultation_id:
            raise NotFound()
        now = self.clock.now()
        receipt = {"consultation_id": consultation_id, "user_id": who.user_id, "message_id": message_id,
                   "read_at": iso(now)}

        async def unit(conn: AsyncConnection) -> list[Delivery]:
            if not await store.advance_read_marker(conn, consultation_id, who.user_id, message.seq, now):
                return []
            return await self.bus.emit(conn, consultation_id, [p.user_id for p in acc.participants],
                                       lambda _u: {"type": "message.read", **receipt})

        self.bus.send(await self.db.write(unit))
        return receipt


#: Stands in, at read time, for the reason an item sent before 0013_consent never recorded.
LEGACY_WHY_NO_CONSENT = "(not recorded: sent before the reason was required)"


def _referral(item: MessageItem) -> Referral | None:
    if not item.referral_condition:
        return None
    # An item sent before the reason was asked for (0013_consent) keeps the decision it was sent under.
    why = item.referral_why_no_consent
    return Referral(condition=item.referral_condition, justification=item.referral_justification or "",
                    why_no_consent=LEGACY_WHY_NO_CONSENT if why is None else why)


def _shown(item: MessageItem, value: str | None) -> ShownItem:
    return ShownItem(item.category, value, item.consent_id, item.attachment_id, item.referral_condition)


def _consent_ids(messages: list[Message]) -> list[str]:
    return [i.consent_id for m in messages for i in m.items if i.consent_id]


def _withheld_json(r: Recipient, index: int | None, category: str, d: Decision) -> dict[str, Any]:
    return {
        "recipient": {"user_id": r.user_id, "org": r.party.org, "role": r.party.role},
        "index": index,
        "category": category,
        "effect": d.effect,
        "rule": d.rule_id,
        "citation": d.citation,
        "reason": d.reason,
    }
