"""Consents and disclosure prohibitions (docs/capabilities.md C3), after FHIR Consent, ISO/IEC TS 27560 and MyData.

A consent waives secrecy for one disclosure (julkisuuslaki 621/1999 29 § 1 mom. 2 k.): it names
the disclosing organisation, the receiving organisations, one purpose and the categories that
purpose can carry, and it runs for a bounded time. An oral consent records who witnessed it and
where the evidence is. Staff of the disclosing and of the receiving organisations see it; the
disclosing organisation confirms it, and either side records a withdrawal the client tells it of.

A consent is versioned: a changed scope is a new version, and withdrawal is final. Suspension
can be lifted. Every change is an audited event, and an item's consent tag is re-checked at
every read, so a withdrawn consent stops what was disclosed under it from being shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit import subjects
from consult.audit.records import AuditRecord, record
from consult.errors import Conflict, Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, iso
from consult.model.consents import Confirmation, ConsentAnswer, ConsentEvent, ConsentVersion
from consult.model.context import RequestContext
from consult.model.identifiers import ClientRef
from consult.policy.model import Consent, Prohibition
from consult.services import gate
from consult.storage import clients as client_store
from consult.storage import consents as store
from consult.storage import directory as directory_store
from consult.storage.db import Database

GRANTORS = frozenset({"self", "guardian", "legal_representative"})
METHODS = frozenset({"written", "oral", "e_service"})


class PurposeBinding(Protocol):
    """The policy's answer to whether a purpose may carry a category at all."""

    def purpose_allows(self, purpose: str, category: str) -> bool: ...


@dataclass(frozen=True)
class ConsentScope:
    categories: list[str]
    disclosing_org: str | None  # None: the recording organisation, if it is not a recipient
    recipient_orgs: list[str]
    recipient_roles: list[str]
    recipient_users: list[str]
    purposes: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    method: str
    grantor: str
    evidence_ref: str | None
    witnessed_by: str | None = None


#: A consent recorded before consents had to end (0013_consent) is read as ending this long after
#: it became valid: the default of CONSULT_CONSENT_MAX_DAYS. The stored row is not changed.
LEGACY_OPEN_ENDED = timedelta(days=365)


def discloser(c: ConsentVersion) -> str | None:
    """The organisation whose disclosure the consent waives secrecy for. A consent recorded before
    consents named one is read as its recorder's where the recorder is not a recipient (the only
    reading the record allows); otherwise it names none and covers nothing."""
    if c.disclosing_org is not None:
        return c.disclosing_org
    return c.recorded_org if c.recorded_org not in c.recipient_orgs else None


def ends(c: ConsentVersion) -> datetime:
    return c.valid_until if c.valid_until is not None else c.valid_from + LEGACY_OPEN_ENDED


def effective_status(c: ConsentVersion, now: datetime) -> str:
    if c.status == "active" and ends(c) <= now:
        return "expired"
    return c.status


def as_policy_consent(c: ConsentVersion, now: datetime) -> Consent:
    return Consent(
        id=c.id,
        version=c.version,
        client_ref=c.client_ref,
        status=effective_status(c, now),
        categories=frozenset(c.categories),
        recipient_orgs=frozenset(c.recipient_orgs),
        recipient_roles=frozenset(c.recipient_roles),
        recipient_users=frozenset(c.recipient_users),
        purposes=frozenset(c.purposes),
        valid_from=c.valid_from,
        valid_until=ends(c),
        disclosing_org=discloser(c),
    )


def answer(c: ConsentVersion, now: datetime, events: list[ConsentEvent] | None = None, *,
           with_events: bool = False) -> ConsentAnswer:
    """``c`` as a reader gets it at ``now``; with ``events``, its confirmation (and, if asked,
    the events themselves)."""
    return ConsentAnswer(
        c, effective_status(c, now), discloser(c), ends(c),
        confirmation=None if events is None else confirmation(c, events),
        events=tuple(events) if with_events and events is not None else None,
    )


def prohibition_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "client_ref": row["client_ref"],
        "category": row["category"],
        "org": row["org"],
        "active": row["revoked_at"] is None,
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "created_org": row["created_org"],
        "revoked_at": iso(row["revoked_at"]),
    }


def _parties(c: ConsentVersion) -> set[str]:
    """The organisations a consent concerns: the one that recorded it, the disclosing one and
    the receiving ones."""
    disclosing = discloser(c)
    return {c.recorded_org, *c.recipient_orgs} | ({disclosing} if disclosing else set())


def _visible(c: ConsentVersion, who: Principal) -> bool:
    return who.org in _parties(c)


def confirmation(c: ConsentVersion, events: list[ConsentEvent]) -> Confirmation:
    """When and by whom the disclosing organisation confirmed this version: at recording when it
    recorded the consent itself, else by its ``confirmed`` event."""
    disclosing = discloser(c)
    if disclosing is not None and c.recorded_org == disclosing:
        return Confirmation(c.created_at, c.recorded_by)
    for e in events:
        if e.event == "confirmed" and e.version == c.version and e.actor_org == disclosing:
            return Confirmation(e.at, e.actor_id)
    return Confirmation(None, None)


class Consents:
    def __init__(self, db: Database, clock: Clock, policy: PurposeBinding, *, max_days: int = 365) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.max_validity = timedelta(days=max_days)

    # -- consents --------------------------------------------------------------------------

    async def create(
        self, who: Principal, client_ref: ClientRef, scope: ConsentScope, ctx: RequestContext
    ) -> ConsentAnswer:
        if not actions.allows(who, "consent.record"):
            raise Forbidden("Only advisors and social workers record consents.", code="role")
        now = self.clock.now()
        scope = self._check_scope(scope, who, now)
        consent_id = str(uuid.uuid4())
        row = self._row(consent_id, 1, client_ref, scope, who, now)

        async def unit(conn: AsyncConnection) -> None:
            if not await client_store.exists(conn, client_ref):
                raise NotFound()
            await self._check_named(conn, scope)
            await store.insert_version(conn, row)
            await self._event(conn, who, ctx, row, "created", now)

        await self.db.write(unit)
        return answer(row, now)

    async def new_version(
        self, who: Principal, consent_id: str, scope: ConsentScope, ctx: RequestContext
    ) -> ConsentAnswer:
        """A changed scope: the current version is superseded (withdrawn) and a new one is active."""
        now = self.clock.now()
        current = await self._own(who, consent_id)
        scope = self._check_scope(scope, who, now)
        if effective_status(current, now) == "withdrawn":
            raise Conflict("A withdrawn consent is final; record a new consent.", code="withdrawn")
        row = self._row(consent_id, current.version + 1, current.client_ref, scope, who, now)

        async def unit(conn: AsyncConnection) -> None:
            await self._check_named(conn, scope)
            if not await store.set_status(conn, consent_id, current.version, "withdrawn", now,
                                          expect=("active", "suspended")):
                raise Conflict("The consent changed meanwhile; try again.", code="stale")
            await self._event(conn, who, ctx, current, "superseded", now)
            await store.insert_version(conn, row)
            await self._event(conn, who, ctx, row, "created", now)

        await self.db.write(unit)
        return answer(row, now)

    async def change_status(
        self, who: Principal, consent_id: str, action: str, ctx: RequestContext
    ) -> ConsentAnswer:
        """``withdraw`` (final), ``suspend`` or ``resume``."""
        transitions = {
            "withdraw": (("active", "suspended"), "withdrawn", "withdrawn"),
            "suspend": (("active",), "suspended", "suspended"),
            "resume": (("suspended",), "active", "resumed"),
        }
        expect, status, event = transitions[action]
        now = self.clock.now()
        # The client may tell either organisation that they withdraw; suspending and resuming
        # stay with the organisation that recorded the consent.
        current = await (self._party(who, consent_id) if action == "withdraw" else self._own(who, consent_id))
        if current.status not in expect:
            raise Conflict(f"The consent is {current.status}; it cannot be {event}.", code="consent_state")

        async def unit(conn: AsyncConnection) -> None:
            if not await store.set_status(conn, consent_id, current.version, status, now, expect=expect):
                raise Conflict("The consent changed meanwhile; try again.", code="stale")
            await self._event(conn, who, ctx, current, event, now)

        await self.db.write(unit)
        return answer(replace(current, status=status, status_changed_at=now), now)

    async def list_for_client(self, who: Principal, client_ref: ClientRef, ctx: RequestContext
                              ) -> list[ConsentAnswer]:
        if not actions.allows(who, "consent.read"):
            raise Forbidden("Your role does not read consents.", code="role")
        now = self.clock.now()
        async with self.db.read() as conn:
            if not await client_store.exists(conn, client_ref):
                raise NotFound()
            rows = [r for r in await store.for_client(conn, client_ref) if _visible(r, who)]
            events = {r.id: await store.events(conn, r.id) for r in rows}
        await self.db.write(lambda conn: record(conn, who, ctx, now, [
            AuditRecord(action="consent.list", client_ref=client_ref)]))
        return [answer(r, now, events[r.id]) for r in rows]

    async def get(self, who: Principal, consent_id: str, ctx: RequestContext, *,
                  action: str = "consent.read") -> ConsentAnswer:
        """One consent with its events, recorded as read (``consent.read``, or ``consent.receipt``
        for the client's receipt) before it is answered."""
        async with self.db.read() as conn:
            row = await store.latest(conn, consent_id) if len(consent_id) <= 36 else None
            events = await store.events(conn, consent_id) if row else []
        if row is None or not _visible(row, who) or not actions.allows(who, "consent.read"):
            raise NotFound()
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [AuditRecord(
            action=action, client_ref=row.client_ref, categories=row.categories,
            consent_id=row.id, consent_version=row.version)]))
        return answer(row, self.clock.now(), events, with_events=True)

    async def confirm(self, who: Principal, consent_id: str, ctx: RequestContext) -> ConsentAnswer:
        """The disclosing organisation records that it has checked the consent it relies on."""
        current = await self._party(who, consent_id)
        if who.org != discloser(current):
            raise Forbidden("Only the disclosing organisation confirms a consent.", code="not_discloser")
        now = self.clock.now()
        if effective_status(current, now) != "active":
            raise Conflict(f"The consent is {effective_status(current, now)}; it cannot be confirmed.",
                           code="consent_state")

        async def unit(conn: AsyncConnection) -> list[ConsentEvent]:
            if confirmation(current, await store.events(conn, consent_id)).at is not None:
                raise Conflict("The disclosing organisation has already confirmed this version.", code="confirmed")
            await self._event(conn, who, ctx, current, "confirmed", now)
            return await store.events(conn, consent_id)

        return answer(current, self.clock.now(), await self.db.write(unit), with_events=True)

    async def for_items(self, conn: AsyncConnection, consent_ids: list[str]) -> dict[str, ConsentVersion]:
        """The current version of each consent named by data items (for the policy)."""
        return await store.latest_many(conn, consent_ids)

    # -- prohibitions ------------------------------------------------------------------------

    async def prohibit(
        self, who: Principal, client_ref: ClientRef, category: str | None, org: str | None, ctx: RequestContext
    ) -> dict[str, Any]:
        if not actions.allows(who, "consent.record"):
            raise Forbidden("Only advisors and social workers record prohibitions.", code="role")
        now = self.clock.now()
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()), "client_ref": client_ref, "category": category, "org": org,
            "created_at": now, "created_by": who.user_id, "created_org": who.org,
            "revoked_at": None, "revoked_by": None,
        }

        async def unit(conn: AsyncConnection) -> None:
            if not await client_store.exists(conn, client_ref):
                raise NotFound()
            await store.insert_prohibition(conn, row)
            stored = await store.get_prohibition(conn, row["id"])
            assert stored is not None  # written just before, in this transaction
            await record(conn, who, ctx, now, [AuditRecord(
                action="prohibition.create", client_ref=client_ref, categories=(category,) if category else (),
                subject_digest=subjects.prohibition(stored, revoked=False))])

        await self.db.write(unit)
        return prohibition_json(row)

    async def list_prohibitions(self, who: Principal, client_ref: ClientRef, ctx: RequestContext
                                ) -> list[dict[str, Any]]:
        """The prohibitions the caller's organisation recorded for this client, with who recorded
        them. Another organisation's prohibitions are its own business: they are not listed, and
        a reader learns of one only as the rule that withheld an item from them."""
        if not actions.allows(who, "consent.read"):
            raise Forbidden("Your role does not read prohibitions.", code="role")
        async with self.db.read() as conn:
            if not await client_store.exists(conn, client_ref):
                raise NotFound()
            rows = [r for r in await store.prohibitions_for(conn, client_ref, active_only=False)
                    if r["created_org"] == who.org]
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [
            AuditRecord(action="prohibition.list", client_ref=client_ref,
                        categories=tuple(sorted({r["category"] for r in rows if r["category"]})))]))
        return [prohibition_json(r) for r in rows]

    async def revoke_prohibition(self, who: Principal, prohibition_id: str, ctx: RequestContext) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await store.get_prohibition(conn, prohibition_id) if len(prohibition_id) <= 36 else None
        if row is None or row["created_org"] != who.org or not actions.allows(who, "consent.record"):
            raise NotFound()
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> None:
            if not await store.revoke_prohibition(conn, prohibition_id, who.user_id, now):
                raise Conflict("The prohibition was already lifted.", code="revoked")
            stored = await store.get_prohibition(conn, prohibition_id)
            assert stored is not None  # updated just before, in this transaction
            await record(conn, who, ctx, now, [AuditRecord(
                action="prohibition.revoke", client_ref=row["client_ref"],
                categories=(row["category"],) if row["category"] else (),
                subject_digest=subjects.prohibition(stored, revoked=True))])

        await self.db.write(unit)
        return prohibition_json({**row, "revoked_at": now, "revoked_by": who.user_id})

    async def active_prohibitions(self, conn: AsyncConnection, client_ref: ClientRef | None) -> tuple[Prohibition, ...]:
        if client_ref is None:
            return ()
        return tuple(
            Prohibition(client_ref=r["client_ref"], category=r["category"], org=r["org"])
            for r in await store.prohibitions_for(conn, client_ref, active_only=True)
        )

    # -- helpers -----------------------------------------------------------------------------

    async def _party(self, who: Principal, consent_id: str) -> ConsentVersion:
        """The current version, for case staff of an organisation the consent concerns."""
        async with self.db.read() as conn:
            row = await store.latest(conn, consent_id) if len(consent_id) <= 36 else None
        if row is None or not _visible(row, who) or not actions.allows(who, "consent.read"):
            raise NotFound()
        if not actions.allows(who, "consent.record"):
            raise Forbidden("Only advisors and social workers act on a consent.", code="role")
        return row

    async def _own(self, who: Principal, consent_id: str) -> ConsentVersion:
        """The current version, if the caller's organisation recorded it (else 404)."""
        async with self.db.read() as conn:
            row = await store.latest(conn, consent_id) if len(consent_id) <= 36 else None
        if row is None or not _visible(row, who):
            raise NotFound()
        if row.recorded_org != who.org or not actions.allows(who, "consent.record"):
            raise Forbidden("Only the recording organisation's advisors and social workers change a consent.",
                            code="role")
        return row

    def _check_scope(self, scope: ConsentScope, who: Principal, now: datetime) -> ConsentScope:
        """The scope as it will be recorded, or the first reason it cannot be (403/422)."""
        # Shown on the receipt and to every reader of the consent as typed.
        gate.reference("evidence_ref", scope.evidence_ref)
        gate.reference("witnessed_by", scope.witnessed_by)
        disclosing = scope.disclosing_org
        if disclosing is None:
            if who.org in scope.recipient_orgs:
                raise Unprocessable("disclosing_org: is required when your organisation receives the data; "
                                    "name the organisation that discloses it.", code="invalid_field")
            disclosing = who.org
        if who.org != disclosing and who.org not in scope.recipient_orgs:
            raise Forbidden("Record a consent only for a disclosure your organisation makes or receives.",
                            code="not_party")
        if len(scope.purposes) != 1:
            raise Unprocessable("A consent is given for one specific purpose; record one consent per purpose.",
                                code="one_purpose")
        purpose = scope.purposes[0]
        uncarried = [c for c in scope.categories if not self.policy.purpose_allows(purpose, c)]
        if uncarried:
            raise Unprocessable(
                f"The purpose {purpose} cannot carry {', '.join(uncarried)}, so a consent for it could never be "
                f"used; leave them out or choose a purpose that carries them.", code="purpose_binding")
        start = scope.valid_from or now
        if scope.valid_until is None:
            raise Unprocessable("valid_until: a consent must end; an open-ended consent is not accepted.",
                                code="open_ended")
        if scope.valid_until <= start:
            raise Unprocessable("valid_until must be after valid_from.", code="invalid_field")
        if scope.valid_until - start > self.max_validity:
            raise Unprocessable(f"A consent may run for at most {self.max_validity.days} days from valid_from.",
                                code="validity_too_long")
        if scope.method == "oral":
            missing = [name for name, value in (("witnessed_by", scope.witnessed_by),
                                                ("evidence_ref", scope.evidence_ref))
                       if value is None or not value.strip()]
            if missing:
                raise Unprocessable("An oral consent records who witnessed it and where the evidence is: "
                                    f"{' and '.join(missing)} required.", code="oral_evidence")
        return replace(scope, disclosing_org=disclosing)

    @staticmethod
    async def _check_named(conn: AsyncConnection, scope: ConsentScope) -> None:
        """Named recipients are staff the service knows, so the list holds user ids and nothing
        else (an identity code or a client's address typed there would be stored as typed)."""
        for user_id in scope.recipient_users:
            if (await directory_store.get_user(conn, user_id) is None
                    and await directory_store.get_expert(conn, user_id) is None):
                raise Unprocessable("recipient_users: names a user the service does not know.",
                                    code="unknown_user")

    def _row(self, consent_id: str, version: int, client_ref: ClientRef, scope: ConsentScope, who: Principal,
             now: datetime) -> ConsentVersion:
        return ConsentVersion(
            id=consent_id, version=version, client_ref=client_ref, grantor=scope.grantor,
            categories=tuple(scope.categories), recipient_orgs=tuple(scope.recipient_orgs),
            recipient_roles=tuple(scope.recipient_roles), recipient_users=tuple(scope.recipient_users),
            purposes=tuple(scope.purposes), valid_from=scope.valid_from or now, valid_until=scope.valid_until,
            method=scope.method, evidence_ref=scope.evidence_ref, witnessed_by=scope.witnessed_by,
            disclosing_org=scope.disclosing_org, recorded_by=who.user_id,
            recorded_org=who.org, status="active", status_changed_at=now, created_at=now,
        )

    async def _event(self, conn: AsyncConnection, who: Principal, ctx: RequestContext, row: ConsentVersion,
                     event: str, at: datetime) -> None:
        seq = await store.add_event(conn, {"consent_id": row.id, "version": row.version, "event": event,
                                           "at": at, "actor_id": who.user_id, "actor_org": who.org})
        # The record vouches for the version and event as stored (read back: what verify reads).
        stored_version = await store.version(conn, row.id, row.version)
        stored_event = await store.event(conn, seq)
        assert stored_version is not None and stored_event is not None  # written just before, in this transaction
        await record(conn, who, ctx, at, [AuditRecord(
            action=f"consent.{event}", client_ref=row.client_ref, categories=row.categories,
            consent_id=row.id, consent_version=row.version,
            subject_digest=subjects.consent_event(stored_version, stored_event))])
