"""The client registry (docs/capabilities.md C3): a HETU in, a stable pseudonymous ``client_ref`` out.

The HETU is brought to its one canonical form (consult/model/hetu.py: NFKC, dash variants
folded, spaces removed, upper case) and validated with python-stdnum, stored only sealed under the registry's data key,
and found again through a keyed blind index; it is never returned or logged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, Unprocessable
from consult.model import Clock, Principal, actions, identifiers
from consult.model.clients import ClientLink, ClientRecord
from consult.model.context import RequestContext
from consult.model.hetu import FORM, canonical_hetu
from consult.model.identifiers import ClientRef
from consult.services.vault import REGISTRY, Vault
from consult.storage import clients as store
from consult.storage.db import Database

HETU_DOMAIN = "client.hetu"
new_client_ref = identifiers.new_client_ref


class Clients:
    def __init__(self, db: Database, vault: Vault, clock: Clock) -> None:
        self.db = db
        self.vault = vault
        self.clock = clock

    async def register(self, who: Principal, hetu: str, ctx: RequestContext) -> ClientLink:
        """The client's reference and whether it is new; the same HETU always gives the same ref."""
        if not actions.allows(who, "client.register"):
            raise Forbidden("Your role does not register clients.", code="role")
        canonical = canonical_hetu(hetu)
        if canonical is None:
            raise Unprocessable("hetu is not a valid Finnish personal identity code.", code="invalid_hetu")
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> ClientLink:
            ref, created = await self.link(conn, who, canonical, now)
            await record(conn, who, ctx, now, [AuditRecord(
                action="client.register" if created else "client.lookup", client_ref=ref)])
            return ClientLink(ref, created)

        return await self.db.write(unit)

    async def lookup(self, who: Principal, hetu: str, ctx: RequestContext) -> ClientRef | None:
        """The ref of an already registered HETU, or None; never registers a client.

        The lookup is audited (``client.lookup``, with the ref when one was found) in the same
        transaction that reads the blind index, whether or not the client exists.
        """
        if not actions.allows(who, "client.lookup"):
            raise Forbidden("Your role does not look up clients.", code="role")
        canonical = canonical_hetu(hetu)
        if canonical is None:
            raise Unprocessable("hetu is not a valid Finnish personal identity code.", code="invalid_hetu")
        index = self.vault.blind_index(canonical, domain=HETU_DOMAIN)
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> ClientRef | None:
            ref = await store.ref_by_index(conn, index)
            await record(conn, who, ctx, now, [AuditRecord(action="client.lookup", client_ref=ref)])
            return ref

        return await self.db.write(unit)

    async def link(self, conn: AsyncConnection, who: Principal, canonical: str, at: datetime) -> tuple[ClientRef, bool]:
        """Inside a write unit: the ref of a valid, canonical HETU, registering it if new."""
        index = self.vault.blind_index(canonical, domain=HETU_DOMAIN)
        existing = await store.ref_by_index(conn, index)
        if existing is not None:
            return existing, False
        ref = new_client_ref()
        key = await self.vault.key(conn, REGISTRY, create_at=at)
        await store.insert_client(conn, ClientRecord(
            client_ref=ref,
            hetu_index=index,
            hetu_sealed=self.vault.seal(key, "clients", ref, "hetu", canonical),
            created_at=at,
            created_by=who.user_id,
            created_org=who.org,
            hetu_form=FORM,
        ))
        return ref, True

    async def exists(self, client_ref: ClientRef) -> bool:
        if not identifiers.is_client_ref(client_ref):
            return False
        async with self.db.read() as conn:
            return await store.exists(conn, client_ref)
