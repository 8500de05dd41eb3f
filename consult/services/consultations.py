"""Consultations (docs/capabilities.md C1): open, list, read, claim, add participants, close.

Every state change is written with its audit record in one transaction; live events go out
only after the commit, so nobody is told of something that was not stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.consultations import (
    Consultation,
    ConsultationAnswer,
    ConsultationPage,
    ConsultationView,
    Notification,
    Participant,
)
from consult.model.context import RequestContext
from consult.model.identifiers import ClientRef
from consult.model.intake import Intakes, claim_role, may_receive
from consult.model.vocabulary import INTAKE_PURPOSES, NOTIFICATION_PURPOSE
from consult.policy.model import ItemRequest, Party
from consult.services import access, parties
from consult.services import gate as content_gate
from consult.services.clients import Clients
from consult.services.consents import Consents
from consult.services.content import Content
from consult.services.directory import Directory
from consult.services.disclosure import Disclosure, View
from consult.services.events import Delivery, EventBus
from consult.services.gate import ContentGate
from consult.services.paging import clamp_limit, decode_cursor, encode_cursor
from consult.services.routing import Routing
from consult.services.sensitive import Confirmation, Reader, SensitiveText
from consult.storage import consultations as store
from consult.storage import directory as directory_store
from consult.storage.db import Database


@dataclass(frozen=True)
class NewConsultation:
    topic: str
    urgency: str
    question: str
    purpose: str
    target_org: str
    expert_id: str | None = None
    pool: str | None = None
    client_ref: ClientRef | None = None
    case_ref: str | None = None
    confirmation: Confirmation | None = None  # of a question flagged as sensitive


class Consultations:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        directory: Directory,
        clients: Clients,
        consents: Consents,
        disclosure: Disclosure,
        gate: ContentGate,
        content: Content,
        clock: Clock,
        *,
        orgs: frozenset[str],
        routing: Routing | None = None,
        intakes: Intakes | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = directory
        self.clients = clients
        self.consents = consents
        self.disclosure = disclosure
        self.gate = gate
        self.content = content
        self.clock = clock
        self.orgs = orgs
        self.sensitive = SensitiveText(disclosure)
        # Statutory contacts: the intake pool of each and their own service level.
        self.intakes = intakes or Intakes()
        # Agreements, duty, load limits and escalation (consult/services/routing.py); without it
        # every on-duty expert the routing matches is offered the consultation.
        self.routing = routing
        if routing is not None:
            routing.on_offer(self.offer_in)

    # -- the question as one reader may see it -------------------------------------------------

    async def _view(self, conn: AsyncConnection, c: Consultation) -> View:
        return View(purpose=c.purpose, client_ref=c.client_ref, now=self.clock.now(),
                    prohibitions=await self.consents.active_prohibitions(conn, c.client_ref))

    def _question(self, c: Consultation, reader: Party, view: View) -> str:
        author = parties.creator(c)
        return self.disclosure.render_text(c.question or "", c.question_spans, author, reader, view)

    def _note(self, c: Consultation, reader: Party, view: View) -> str | None:
        """The close note as ``reader`` may see it, filtered like a message by its author."""
        note = c.outcome_note
        if note is None:
            return None
        if c.closed_by is None:
            # Written before the gate recorded the note's author and identifier positions.
            return content_gate.without_identifiers(note)
        author = parties.closer(c)
        return self.disclosure.render_text(note, c.outcome_note_spans, author, reader, view)

    def _view_for(self, c: Consultation, reader: Party, view: View,
                  participants: list[Participant] | None = None) -> ConsultationView:
        return ConsultationView(c, self._question(c, reader, view), self._note(c, reader, view),
                                None if participants is None else tuple(participants))

    # -- open ---------------------------------------------------------------------------

    async def create(self, who: Principal, new: NewConsultation, ctx: RequestContext) -> ConsultationAnswer:
        if new.purpose == NOTIFICATION_PURPOSE:
            raise Unprocessable("A child-welfare notification is made through /api/v1/child-welfare-notifications, "
                                "which records its notifier and statutory basis.", code="child_welfare_notification")
        return await self._open(who, new, ctx)

    async def notify_child_welfare(self, who: Principal, target_org: str, client_ref: ClientRef, text: str, topic: str,
                                   ctx: RequestContext, confirmation: Confirmation | None = None
                                   ) -> ConsultationAnswer:
        """A child-welfare notification (lastensuojelulaki 417/2007 25 §): no consent, at once to
        the county's child-welfare intake, its notifier and statutory basis recorded and audited.
        The policy decides whether this sender may notify this organisation at all (403)."""
        if not actions.allows(who, "consultation.create"):
            raise Forbidden("Only advisors and social workers open consultations.")
        new = NewConsultation(topic=topic, urgency="immediate", question=text, purpose=NOTIFICATION_PURPOSE,
                              target_org=target_org, client_ref=client_ref, confirmation=confirmation)
        if target_org not in self.orgs:
            raise Unprocessable("target_org is not a known organisation.", code="unknown_org")
        async with self.db.read() as conn:
            prohibitions = await self.consents.active_prohibitions(conn, client_ref)
        decision = self.disclosure.engine.decide(ItemRequest(
            parties.acting(who), parties.offered(new),
            "service_need.referral",
            NOTIFICATION_PURPOSE, client_ref, None, prohibitions, None, self.clock.now()))
        if not decision.permitted or not decision.basis.startswith("statute:"):
            raise Forbidden(f"The policy does not let you make a child-welfare notification to {target_org} "
                            f"through this service (rule: {decision.rule_id}).", code="policy_denied")
        return await self._open(who, new, ctx, notification=decision)

    async def _open(self, who: Principal, new: NewConsultation, ctx: RequestContext,
                    notification: Any = None) -> ConsultationAnswer:
        if not actions.allows(who, "consultation.create"):
            raise Forbidden("Only advisors and social workers open consultations.")
        content_gate.reference("case_ref", new.case_ref)
        new = self._intake_route(new)
        await self._check_routing(who, new)
        if new.client_ref is not None and not await self.clients.exists(new.client_ref):
            raise Unprocessable("client_ref does not name a registered client.", code="unknown_client")
        statutory = new.purpose in INTAKE_PURPOSES
        plan = (await self.routing.plan(new.target_org, new.pool, new.expert_id, new.urgency, new.purpose,
                                        self.intakes.sla_seconds if statutory else None)
                if self.routing is not None else None)
        now = self.clock.now()
        consultation_id = str(uuid.uuid4())
        creator = parties.acting(who)
        checked = self.sensitive.confirm(await self._question_flags(new, creator, now),
                                         new.confirmation)
        # The question is gated and sealed in the write unit; until then the draft holds it as written.
        draft = Consultation(
            seq=0, id=consultation_id, topic=new.topic, urgency=new.urgency, question_sealed=b"",
            question_spans=None, purpose=new.purpose, origin_org=who.org, created_by=who.user_id,
            created_role=creator.role, target_org=new.target_org, pool=new.pool, expert_id=new.expert_id,
            client_ref=new.client_ref, case_ref=new.case_ref, status="open", claimed_by=None, claimed_at=None,
            first_response_at=None, closed_at=None, outcome=None, outcome_note_sealed=None, outcome_note_spans=None,
            closed_by=None, closed_org=None, closed_role=None, legal_hold=False, shredded_at=None, created_at=now,
            escalated_pool=None, question_flagged=tuple(checked.categories), outcome_flagged=(),
            question=new.question, outcome_note=None, content_destroyed=False,
        )

        targets = (plan.targets if plan is not None
                   else await self.directory.offer_targets(new.target_org, new.pool, new.expert_id))

        async def unit(conn: AsyncConnection
                       ) -> tuple[Consultation, list[Participant], list[dict[str, Any]], View, list[Delivery]]:
            prepared = await self.gate.free_text(conn, who, new.question, new.purpose, now)
            key = await self.content.key(conn, consultation_id, create_at=now)
            c = replace(draft, question=prepared.text, question_spans=prepared.spans or None,
                        question_sealed=self.content.seal_question(key, consultation_id, prepared.text))
            await store.insert_consultation(conn, c)
            await store.add_participant(conn, Participant(
                consultation_id=consultation_id, user_id=who.user_id, org=who.org, role=creator.role,
                added_by=who.user_id, added_at=now))
            await record(
                conn, who, ctx, now,
                [
                    AuditRecord(
                        action="consultation.create",
                        consultation_id=consultation_id,
                        client_ref=new.client_ref,
                        purpose=new.purpose,
                        recipient_org=new.target_org,
                    ),
                    *await self.sensitive.record(
                        conn, who, checked, consultation_id=consultation_id, message_id=None,
                        client_ref=new.client_ref, purpose=new.purpose, at=now),
                ],
            )
            if notification is not None:
                await self._record_notification(conn, who, ctx, consultation_id, new, notification, now)
            if plan is not None:
                await self.routing.record_plan(conn, consultation_id, new.target_org, new.pool,  # type: ignore[union-attr]
                                               new.urgency, plan)
            view = await self._view(conn, c)
            participants = await store.list_participants(conn, consultation_id)
            live = await self.bus.emit(conn, consultation_id, targets, lambda user_id: {
                "type": "consultation.offered",
                "consultation": self._view_for(c, parties.offered(new, user_id), view),
            })
            live += await self.bus.emit(conn, consultation_id, [who.user_id], lambda _u: {
                "type": "consultation.created", "consultation": self._view_for(c, creator, view, participants)})
            return c, participants, prepared.notices, view, live

        c, participants, notices, view, live = await self.db.write(unit)
        self.bus.send(live)
        return ConsultationAnswer(
            self._view_for(c, creator, view, participants),
            notification=await self._notification(consultation_id) if notification is not None else None,
            offered_to=len(targets), identifiers=tuple(notices), sensitive=tuple(checked.flags),
            routing=plan.as_json() if plan is not None else None, with_routing=plan is not None)

    async def offer_in(self, conn: AsyncConnection, consultation_id: str, targets: list[str], extra: dict[str, Any]
                       ) -> list[Delivery]:
        """In the write unit of a routing step: offer (again) to ``targets``, each seeing the
        question as the policy lets them; the deliveries to send after the commit."""
        stored = await store.get(conn, consultation_id)
        if stored is None or stored.status != "open":
            return []
        c = await self.content.open_consultation(conn, stored)
        view = await self._view(conn, c)
        return await self.bus.emit(conn, consultation_id, targets, lambda user_id: {
            "type": "consultation.offered", **extra,
            "consultation": self._view_for(c, parties.offered(c, user_id), view),
        })

    async def _question_flags(self, new: NewConsultation, creator: Party, now: Any
                              ) -> list[dict[str, Any]]:
        """The question goes to the target organisation's experts: passages that look like a
        category withheld from them (see services/sensitive.py)."""
        passages = self.disclosure.signals.detect(new.question)
        if not passages:
            return []
        async with self.db.read() as conn:
            prohibitions = await self.consents.active_prohibitions(conn, new.client_ref)
        view = View(purpose=new.purpose, client_ref=new.client_ref, now=now, prohibitions=prohibitions)
        expert = parties.offered(new, new.expert_id)
        return self.sensitive.flags(new.question, creator, [Reader(new.expert_id, expert)], self.disclosure.act(view),
                                    passages)

    def _intake_route(self, new: NewConsultation) -> NewConsultation:
        """A statutory contact goes at once (``immediate``) to its intake pool and nowhere else:
        sosiaalihuoltolaki 35 § says "viipymättä" and names the authority responsible for social
        services; lastensuojelulaki 25 § the child-welfare authority."""
        pool = self.intakes.pool_for(new.purpose)
        if pool is None:
            return new
        if new.urgency != "immediate":
            raise Unprocessable("A statutory contact is made without delay: urgency must be immediate.",
                                code="referral_urgency")
        if new.expert_id is not None or new.pool not in (None, pool):
            raise Unprocessable(f"A statutory contact goes to the receiving county's intake pool '{pool}', "
                                f"not to a named expert or another pool.", code="referral_routing")
        return replace(new, pool=pool)

    async def _record_notification(self, conn: AsyncConnection, who: Principal, ctx: RequestContext,
                                   consultation_id: str, new: NewConsultation, decision: Any, now: Any) -> None:
        """Who notified (an official's notification is not anonymous) and on what basis, with its
        audit record, in the creating transaction."""
        role = parties.acting(who).role
        await store.insert_notification(conn, Notification(
            consultation_id=consultation_id, notifier_id=who.user_id,
            notifier_name=(content_gate.display_name(who.name) if who.name else "") or who.user_id,
            notifier_org=who.org,
            notifier_role=role, rule_id=decision.rule_id, basis=decision.basis,
            citation=decision.citation, policy_version=decision.policy_version, created_at=now,
        ))
        await record(conn, who, ctx, now, [AuditRecord(
            action="child_welfare.notify", consultation_id=consultation_id, client_ref=new.client_ref,
            categories=("service_need.referral",), purpose=new.purpose, basis=decision.basis,
            rule_id=decision.rule_id, policy_version=decision.policy_version, recipient_org=new.target_org,
            recipient_role=claim_role(new.purpose), flags=tuple(sorted(decision.flags)))])

    async def _notification(self, consultation_id: str) -> Notification | None:
        async with self.db.read() as conn:
            return await store.get_notification(conn, consultation_id)

    async def notification(self, who: Principal, consultation_id: str, ctx: RequestContext
                           ) -> ConsultationAnswer:
        """A child-welfare notification with its notifier and basis, for its participants and the
        intake it is offered to (else 404); the read is recorded."""
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            row = await store.get_notification(conn, consultation_id)
            view = await self._view(conn, acc.consultation)
        if row is None:
            raise NotFound()
        c = acc.consultation
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [AuditRecord(
            action="consultation.read", consultation_id=c.id, client_ref=c.client_ref, purpose=c.purpose)]))
        return ConsultationAnswer(
            self._view_for(c, self._reader(who, acc), view, acc.participants if acc.participant else None),
            notification=row)

    async def _check_routing(self, who: Principal, new: NewConsultation) -> None:
        if new.target_org not in self.orgs:
            raise Unprocessable("target_org is not a known organisation.", code="unknown_org")
        if new.target_org == who.org:
            raise Unprocessable("A consultation goes to another organisation.", code="same_org")
        if new.purpose == "general" and new.client_ref is not None:
            raise Unprocessable(
                "A consultation with purpose 'general' carries no client data; choose a client purpose.",
                code="purpose_binding",
            )
        if new.expert_id is not None or new.pool is not None:
            if self.routing is not None:
                experts = await self.routing.experts(new.target_org)
            else:
                async with self.db.read() as conn:
                    experts = await directory_store.list_experts(conn, new.target_org)
            if new.expert_id is not None and not any(e["user_id"] == new.expert_id for e in experts):
                raise Unprocessable("expert_id is not a named expert of target_org.", code="unknown_expert")
            if new.pool is not None and not any(new.pool in e["pools"] for e in experts):
                raise Unprocessable("pool is not a pool of target_org.", code="unknown_pool")
        if self.routing is not None:
            await self.routing.require_agreement(who.org, new.target_org, new.topic, new.pool)

    # -- read ---------------------------------------------------------------------------

    async def list_for(
        self, who: Principal, *, status: str | None, limit: int | None, cursor: str | None, ctx: RequestContext,
    ) -> ConsultationPage:
        """The consultations visible to ``who`` (theirs, and those offered to them); each one
        listed is recorded as read (``consultation.list``) before the page is answered."""
        return await self._page(who, status=status, limit=limit, cursor=cursor, ctx=ctx, words=[])

    async def search(
        self, who: Principal, query: str, *, status: str | None, limit: int | None, cursor: str | None,
        ctx: RequestContext,
    ) -> ConsultationPage:
        """Those of ``list_for`` where every word of ``query`` is found in what the caller may
        read of them (see ``_search``), audited the same way: only the listed ones are recorded.
        ``query`` is never logged, recorded or echoed (it may hold what a client said)."""
        words = search_words(query)
        if not words:
            raise Unprocessable("q: at least one word.", code="invalid_field")
        return await self._page(who, status=status, limit=limit, cursor=cursor, ctx=ctx, words=words)

    async def _page(
        self, who: Principal, *, status: str | None, limit: int | None, cursor: str | None, ctx: RequestContext,
        words: list[str],
    ) -> ConsultationPage:
        limit = clamp_limit(limit)
        before = decode_cursor("c", cursor)
        async with self.db.read() as conn:
            offer_org, pools = None, []
            if actions.allows(who, "consultation.claim"):  # experts, and intake social workers
                expert = await directory_store.get_expert(conn, who.user_id)
                if expert is not None and expert["on_duty"] and expert["org"] == who.org:
                    offer_org, pools = who.org, list(expert["pools"])

            async def visible(after: int | None, count: int) -> list[Consultation]:
                return await store.list_visible(conn, user_id=who.user_id, offer_org=offer_org, offer_pools=pools,
                                                status=status, offer_roles=who.roles, before_seq=after, limit=count)

            if words:
                found, next_seq = await self._search(conn, who, visible, words, before, limit)
            else:
                rows = await visible(before, limit + 1)
                next_seq = rows[limit - 1].seq if len(rows) > limit else None
                found = await self._listed(conn, who, rows[:limit])
        now = self.clock.now()
        if found:
            await self.db.write(lambda conn: record(conn, who, ctx, now, [
                AuditRecord(action="consultation.list", consultation_id=v.consultation.id,
                            client_ref=v.consultation.client_ref, purpose=v.consultation.purpose) for v in found]))
        return ConsultationPage(tuple(found), None if next_seq is None else encode_cursor("c", next_seq))

    async def _listed(self, conn: AsyncConnection, who: Principal, rows: list[Consultation]) -> list[ConsultationView]:
        """Each row opened and as ``who`` may see it in a list (identifiers decided for them)."""
        opened = [await self.content.open_consultation(conn, r) for r in rows]
        views: dict[Any, View] = {}
        for r in opened:
            if r.question_spans and r.client_ref not in views:
                views[r.client_ref] = await self._view(conn, r)
        now = self.clock.now()
        return [self._view_for(r, parties.of_principal(who, None, r),
                               views.get(r.client_ref) or View(r.purpose, r.client_ref, now))
                for r in opened]

    async def _search(
        self, conn: AsyncConnection, who: Principal,
        visible: Callable[[int | None, int], Awaitable[list[Consultation]]],
        words: list[str], before: int | None, limit: int,
    ) -> tuple[list[ConsultationView], int | None]:
        """The visible consultations, newest first, whose listed form (the question as the
        caller may read it, the case and client references and the codes) holds every word.
        The questions are sealed, so they are opened here — at most ``SEARCH_SCAN`` per request;
        the returned cursor goes on from the last one looked at (None when none are left)."""
        found: list[ConsultationView] = []
        scanned, after = 0, before
        while scanned < SEARCH_SCAN:
            want = min(SEARCH_BATCH, SEARCH_SCAN - scanned)
            batch = await visible(after, want)
            for shown in await self._listed(conn, who, batch):
                scanned, after = scanned + 1, shown.consultation.seq
                if _matches(shown, words):
                    found.append(shown)
                    if len(found) == limit:
                        return found, after
            if len(batch) < want:
                return found, None
        return found, after

    async def get(self, who: Principal, consultation_id: str, ctx: RequestContext) -> ConsultationAnswer:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            view = await self._view(conn, acc.consultation)
        participants = acc.participants
        c = acc.consultation
        await self.db.write(
            lambda conn: record(
                conn, who, ctx, self.clock.now(),
                [AuditRecord(action="consultation.read", consultation_id=c.id, client_ref=c.client_ref,
                             purpose=c.purpose)],
            )
        )
        # Where it went and what happens next, as after sending, for after a reload.
        return ConsultationAnswer(self._view_for(c, self._reader(who, acc), view, participants),
                                  routing=await self.routing.status(c) if self.routing is not None else None,
                                  with_routing=self.routing is not None)

    @staticmethod
    def _reader(who: Principal, acc: access.Access) -> Party:
        return parties.of_principal(who, acc.participant, acc.consultation)

    # -- claim, participants, close ---------------------------------------------------------

    async def claim(self, who: Principal, consultation_id: str, ctx: RequestContext) -> ConsultationView:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content, for_claim=True)
            view = await self._view(conn, acc.consultation)
        role = claim_role(acc.consultation.purpose)
        if not actions.allows(who, "consultation.claim") or not who.has(role):
            raise Forbidden("Only experts of the target organisation claim consultations; a statutory contact, "
                            "only a social worker of its intake.")
        if not acc.eligible_expert:
            raise Forbidden("This consultation is not offered to you.")
        now = self.clock.now()
        c = acc.consultation

        watchers = (await self.routing.watchers(c) if self.routing is not None
                    else await self.directory.offer_targets(c.target_org, c.pool, c.expert_id))
        claimed = replace(c, status="claimed", claimed_by=who.user_id, claimed_at=now)

        async def unit(conn: AsyncConnection) -> tuple[list[Participant], list[Delivery]] | None:
            if self.routing is not None and c.status == "open":
                await self.routing.check_capacity(conn, who, c)
            if not await store.claim(conn, consultation_id, who.user_id, now):
                return None
            await store.add_participant(conn, Participant(
                consultation_id=consultation_id, user_id=who.user_id, org=who.org, role=role,
                added_by=who.user_id, added_at=now))
            await record(
                conn, who, ctx, now,
                [AuditRecord(action="consultation.claim", consultation_id=consultation_id,
                             client_ref=c.client_ref, purpose=c.purpose)],
            )
            participants = await store.list_participants(conn, consultation_id)
            readers = _readers(c, participants)
            live = await self._emit(conn, readers, "consultation.claimed", claimed, view, participants)
            # The other experts it was offered to no longer see it: they learn that it was taken and
            # by whom, not the consultation again (no question, no client; nothing disclosed).
            others = [user_id for user_id in watchers if user_id not in readers]
            if others:
                taken = {"type": "consultation.claimed", "consultation_id": consultation_id, "status": "claimed",
                         "claimed_by": who.user_id, "claimed_at": iso(now)}
                live += await self.bus.emit(conn, consultation_id, others, lambda _u: taken)
            return participants, live

        done = await self.db.write(unit)
        if done is None:
            raise Conflict("Another expert has already claimed this consultation.", code="already_claimed")
        participants, live = done
        self.bus.send(live)
        return self._view_for(claimed, parties.reader(c, who.user_id, who.org, joined_role=role, roles=who.roles),
                              view, participants)

    async def add_participant(
        self, who: Principal, consultation_id: str, user_id: str, ctx: RequestContext
    ) -> ConsultationView:
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            if acc.participant is None:
                raise Forbidden("Only participants add participants.")
            if acc.consultation.status == "closed":
                raise Conflict("The consultation is closed.", code="closed")
            user = await directory_store.get_user(conn, user_id)
            view = await self._view(conn, acc.consultation)
        if user is None:
            raise Unprocessable("The user is not known to the service.", code="unknown_user")
        roles = [r for r in user["roles"] if r in actions.ROLES["consultation.participate"]]
        if not roles:
            raise Unprocessable("Only advisors, experts and social workers take part.", code="not_participant_role")
        party = parties.of_roles(user_id, user["org"], roles)
        if party.org not in (acc.consultation.origin_org, acc.consultation.target_org):
            raise Unprocessable("The user's organisation is not a party to this consultation.", code="wrong_org")
        if (acc.consultation.purpose in INTAKE_PURPOSES and party.org == acc.consultation.target_org
                and not may_receive(acc.consultation.purpose, roles)):
            raise Unprocessable("On the receiving side of a statutory contact only social workers take part.",
                                code="intake_role")
        now = self.clock.now()
        c = acc.consultation

        async def unit(conn: AsyncConnection) -> tuple[list[Participant], list[Delivery]]:
            added = await store.add_participant(conn, Participant(
                consultation_id=consultation_id, user_id=user_id, org=party.org, role=party.role,
                added_by=who.user_id, added_at=now))
            if added:
                await record(
                    conn, who, ctx, now,
                    [AuditRecord(action="consultation.participant.add", consultation_id=consultation_id,
                                 client_ref=c.client_ref, purpose=c.purpose, subject_user=user_id)],
                )
            participants = await store.list_participants(conn, consultation_id)
            return participants, await self._emit(conn, _readers(c, participants), "consultation.participant_added", c,
                                                  view, participants, user_id=user_id)

        participants, live = await self.db.write(unit)
        self.bus.send(live)
        readers = _readers(c, participants)
        return self._view_for(c, readers[who.user_id], view, participants)

    async def close(
        self, who: Principal, consultation_id: str, outcome: str, note: str | None, ctx: RequestContext,
        *, confirmation: Confirmation | None = None,
    ) -> ConsultationAnswer:
        """Close with an outcome code. The note is free text for the other participants: gated
        like a message, and checked like one against what a recipient in another organisation
        may not receive (409 ``sensitive_text`` unless ``confirmation`` covers it)."""
        async with self.db.read() as conn:
            acc = await access.resolve(conn, who, consultation_id, self.content)
            view = await self._view(conn, acc.consultation)
        if acc.participant is None:
            raise Forbidden("Only participants close a consultation.")
        now = self.clock.now()
        c = acc.consultation
        if c.purpose == NOTIFICATION_PURPOSE and who.org != c.origin_org and note is not None:
            raise Unprocessable("A child-welfare notification is closed without a note: nothing of child "
                                "welfare goes back to the notifier.", code="one_way")
        closer = parties.of_principal(who, acc.participant, c)
        # A closed consultation is read by its participants only.
        recipients = [Reader(p.user_id, parties.participant(c, p))
                      for p in acc.participants if p.user_id != who.user_id]
        flags = (self.sensitive.flags(note, closer, recipients, self.disclosure.act(view))
                 if note is not None and not c.content_destroyed else [])
        checked = self.sensitive.confirm(flags, confirmation)
        closed = replace(c, outcome_note=None, outcome_note_spans=None, closed_by=who.user_id,
                         closed_org=closer.org, closed_role=closer.role, outcome_flagged=tuple(checked.categories),
                         status="closed", outcome=outcome, closed_at=now)

        async def unit(conn: AsyncConnection
                       ) -> tuple[Consultation, list[Participant], list[dict[str, Any]], list[Delivery]] | None:
            sealed_note, notices, done = None, [], closed
            if note is not None and not c.content_destroyed:
                # The note is free text for the other participants: gated like a message.
                gated = await self.gate.free_text(conn, who, note, c.purpose, now)
                done = replace(closed, outcome_note=gated.text, outcome_note_spans=gated.spans or None)
                notices = gated.notices
                sealed_note = self.content.seal_note(await self.content.key(conn, consultation_id), consultation_id,
                                                     gated.text)
            stored = {"outcome_note_spans": done.outcome_note_spans, "closed_by": done.closed_by,
                      "closed_org": done.closed_org, "closed_role": done.closed_role,
                      "outcome_flagged": list(done.outcome_flagged) or None}
            if not await store.close(conn, consultation_id, outcome, sealed_note, now, stored):
                return None
            await record(
                conn, who, ctx, now,
                [AuditRecord(action="consultation.close", consultation_id=consultation_id,
                             client_ref=c.client_ref, purpose=c.purpose),
                 *await self.sensitive.record(
                     conn, who, checked, consultation_id=consultation_id, message_id=None,
                     client_ref=c.client_ref, purpose=c.purpose, at=now)],
            )
            participants = await store.list_participants(conn, consultation_id)
            return done, participants, notices, await self._emit(conn, _readers(c, participants),
                                                                 "consultation.closed", done, view, participants)

        result = await self.db.write(unit)
        if result is None:
            raise Conflict("The consultation is already closed.", code="closed")
        done, participants, notices, live = result
        self.bus.send(live)
        readers = _readers(c, participants)
        return ConsultationAnswer(self._view_for(done, readers[who.user_id], view, participants),
                                  identifiers=tuple(notices), sensitive=tuple(checked.flags))

    async def _emit(self, conn: AsyncConnection, readers: dict[str, Party], kind: str, c: Consultation,
                    view: View, participants: list[Participant] | None = None, **extra: Any) -> list[Delivery]:
        """In the act's unit: the event for each reader, as that reader may see the consultation."""
        members = {p.user_id for p in participants or ()}

        def render(user_id: str) -> dict[str, Any]:
            # Only participants are told who the participants are.
            shown = participants if user_id in members else None
            return {"type": kind, "consultation": self._view_for(c, readers[user_id], view, shown), **extra}

        return await self.bus.emit(conn, c.id, readers, render)


def _readers(c: Consultation, participants: list[Participant]) -> dict[str, Party]:
    return {p.user_id: parties.participant(c, p) for p in participants}


#: How many consultations one search request opens at most, and how many it reads at a time: a
#: question is sealed, so a search reads it in clear on the server, bounded per request.
SEARCH_SCAN = 500
SEARCH_BATCH = 100
#: A search is at most this long and this many words.
SEARCH_MAX_CHARS = 200
SEARCH_MAX_WORDS = 10


def search_words(search: str) -> list[str]:
    """The words of a search, case-folded; 422 when too long (the text itself is never logged
    or echoed: it may hold what a client said)."""
    if len(search) > SEARCH_MAX_CHARS:
        raise Unprocessable(f"q: at most {SEARCH_MAX_CHARS} characters.", code="invalid_field")
    words = search.casefold().split()
    if len(words) > SEARCH_MAX_WORDS:
        raise Unprocessable(f"q: at most {SEARCH_MAX_WORDS} words.", code="invalid_field")
    return words


def _matches(shown: ConsultationView, words: list[str]) -> bool:
    c = shown.consultation
    text = " ".join(str(v or "") for v in (
        shown.question, c.case_ref, c.client_ref, c.topic, c.urgency, c.purpose, c.status, c.target_org)).casefold()
    return all(w in text for w in words)
