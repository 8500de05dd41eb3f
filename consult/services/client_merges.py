"""Re-indexing the client registry under the one canonical identity-code form, and merging the
duplicates that the old as-typed form let in (``consult clients merge-duplicates``).

Before the canonical form, ``131052-308T`` and ``131052–308T`` (en dash) were two clients: a
prohibition on one did not protect the other. Each client registered before migration
0008_hetu is unsealed, brought to the canonical form and indexed again. Where several clients
turn out to be one person, the one already under the canonical index (else the earliest
registered) survives; the others' consultations, consents and prohibitions are repointed to
it, ``[client:<ref>]`` links in sealed texts are rewritten, and each merge is audited under
both references. The audit log itself is append-only: records written under a merged
reference stay as they are, and the access report of the survivor reads them with its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.crypto import CryptoError
from consult.model import Clock, Principal, identifiers
from consult.model.context import SYSTEM_CONTEXT, RequestContext
from consult.model.hetu import FORM, canonical_hetu
from consult.model.identifiers import ClientRef
from consult.services.clients import HETU_DOMAIN
from consult.services.freetext import client_link
from consult.services.vault import REGISTRY, Vault, consultation_owner
from consult.storage import client_merges as store
from consult.storage.db import Database

log = logging.getLogger("consult.clients")

BATCH = 500
GROUPS_PER_UNIT = 100  # one person's clients per group; each group's merge and records in one unit
#: A client link as FreeText writes it (``client_link``); refs are "cl_" and 20 hex digits.
_LINK = identifiers.CLIENT_LINK


@dataclass(frozen=True, slots=True)
class _Legacy:
    ref: ClientRef
    stored_index: str
    created_at: datetime
    canonical: str
    typed_canonical: bool  # the sealed code was already in the canonical form


def _settled(index: str, members: list[_Legacy]) -> bool:
    """One client, already under the canonical index with the canonical code sealed: only its
    form needs recording."""
    return len(members) == 1 and members[0].stored_index == index and members[0].typed_canonical


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class Survey:
    """What re-indexing would do; counts only, never a code or a reference."""

    legacy: int  # clients indexed under the old, as-typed form
    duplicates: int  # clients that are another client under the canonical form
    unreadable: int  # legacy clients whose sealed code does not open or is not a valid code
    links_pending: int  # merged references whose client links are not yet rewritten


@dataclass(frozen=True, slots=True)
class MergeReport:
    reindexed: int
    merged: int
    unreadable: int
    consultations_rewritten: int

    def as_json(self) -> dict[str, Any]:
        return {"reindexed": self.reindexed, "merged": self.merged, "unreadable": self.unreadable,
                "consultations_rewritten": self.consultations_rewritten}


class ClientMerges:
    def __init__(self, db: Database, vault: Vault, clock: Clock) -> None:
        self.db = db
        self.vault = vault
        self.clock = clock

    async def survey(self) -> Survey:
        groups, unreadable = await self._plan()
        unsettled = {index: members for index, members in groups.items() if not _settled(index, members)}
        async with self.db.read() as conn:
            holders = await store.refs_by_index(conn, list(unsettled))
            pending = await store.links_pending(conn)
        duplicates = sum(len({m.ref for m in members} | ({holders[index]} if index in holders else set())) - 1
                         for index, members in unsettled.items())
        legacy = sum(len(m) for m in groups.values()) + unreadable
        return Survey(legacy=legacy, duplicates=duplicates, unreadable=unreadable, links_pending=len(pending))

    async def warn_if_pending(self) -> Survey:
        """At start-up: say (counts only) when the registry still needs re-indexing or merging."""
        survey = await self.survey()
        if survey.duplicates:
            log.warning("client registry: %d client(s) duplicate another under the canonical identity-code "
                        "form and are not merged; run `consult clients merge-duplicates`", survey.duplicates)
        elif survey.legacy or survey.links_pending:
            log.warning("client registry: %d client(s) indexed under the old identity-code form, %d merge(s) "
                        "with client links to rewrite; run `consult clients merge-duplicates`",
                        survey.legacy, survey.links_pending)
        if survey.unreadable:
            log.warning("client registry: %d client(s) under the old form could not be re-indexed "
                        "(sealed code does not open or is not a valid code)", survey.unreadable)
        return survey

    async def merge_duplicates(self, who: Principal, ctx: RequestContext = SYSTEM_CONTEXT) -> MergeReport:
        """Re-index every legacy client, merge duplicates, then rewrite links to merged refs.
        Idempotent: a second run finds nothing to do; an interrupted run resumes."""
        groups, unreadable = await self._plan()
        settled = [members[0].ref for index, members in groups.items() if _settled(index, members)]
        for chunk in _chunks(settled, BATCH):
            await self.db.write(partial(store.mark_form, client_refs=chunk, form=FORM, below=FORM))
        reindexed = merged = 0
        unsettled = [(index, members) for index, members in groups.items() if not _settled(index, members)]
        for chunk in _chunks(unsettled, GROUPS_PER_UNIT):
            r, m = await self.db.write(partial(self._settle_all, who=who, ctx=ctx, groups=chunk))
            reindexed += r
            merged += m
        rewritten = await self._repoint_links(who, ctx)
        report = MergeReport(reindexed, merged, unreadable, rewritten)
        log.info("client registry: re-indexed=%d merged=%d unreadable=%d consultations_rewritten=%d",
                 reindexed, merged, unreadable, rewritten)
        return report

    async def _plan(self) -> tuple[dict[str, list[_Legacy]], int]:
        """Legacy clients grouped by the blind index of their canonical form."""
        groups: dict[str, list[_Legacy]] = defaultdict(list)
        unreadable = 0
        after = ""
        async with self.db.read() as conn:
            while rows := await store.legacy(conn, FORM, after=after, limit=BATCH):
                key = await self.vault.key(conn, REGISTRY)
                for row in rows:
                    try:
                        typed = self.vault.open(key, "clients", row["client_ref"], "hetu", row["hetu_sealed"])
                    except CryptoError:
                        unreadable += 1
                        continue
                    canonical = canonical_hetu(typed)
                    if canonical is None:
                        unreadable += 1
                        continue
                    index = self.vault.blind_index(canonical, domain=HETU_DOMAIN)
                    groups[index].append(_Legacy(row["client_ref"], row["hetu_index"], row["created_at"], canonical,
                                                 typed == canonical))
                after = rows[-1]["client_ref"]
        return groups, unreadable

    async def _settle_all(self, conn: AsyncConnection, who: Principal, ctx: RequestContext,
                          groups: list[tuple[str, list[_Legacy]]]) -> tuple[int, int]:
        reindexed = merged = 0
        for index, members in groups:
            r, m = await self._settle(conn, who, ctx, index, members)
            reindexed += r
            merged += m
        return reindexed, merged

    async def _settle(self, conn: AsyncConnection, who: Principal, ctx: RequestContext, index: str,
                      members: list[_Legacy]) -> tuple[int, int]:
        """Inside one write unit: one person's clients become one, under the canonical index."""
        now = self.clock.now()
        present = []
        for m in members:  # the service may have run beside the plan: read each row again
            row = await store.by_ref(conn, m.ref)
            if row is not None and row["hetu_form"] < FORM and row["hetu_index"] == m.stored_index:
                present.append(m)
        holder = await store.by_index(conn, index)
        if holder is not None and holder["client_ref"] not in {m.ref for m in present}:
            survivor: ClientRef = holder["client_ref"]
            settle_survivor: _Legacy | None = None
        elif present:
            held = [m for m in present if m.stored_index == index]
            settle_survivor = held[0] if held else min(present, key=lambda m: (m.created_at, m.ref))
            survivor = settle_survivor.ref
        else:
            return 0, 0
        records: list[AuditRecord] = []
        merged = 0
        for m in present:
            if m.ref == survivor:
                continue
            await store.merge(conn, m.ref, survivor, now)
            records += [AuditRecord(action="client.merge", client_ref=m.ref, basis=f"merged_into:{survivor}"),
                        AuditRecord(action="client.merge", client_ref=survivor, basis=f"merged_from:{m.ref}")]
            merged += 1
        reindexed = 0
        if settle_survivor is not None:
            key = await self.vault.key(conn, REGISTRY)
            sealed = self.vault.seal(key, "clients", survivor, "hetu", settle_survivor.canonical)
            await store.set_index(conn, survivor, index, sealed, FORM)
            if settle_survivor.stored_index != index:
                records.append(AuditRecord(action="client.reindex", client_ref=survivor))
                reindexed = 1
        if records:
            await record(conn, who, ctx, now, records)
        return reindexed, merged

    async def _repoint_links(self, who: Principal, ctx: RequestContext) -> int:
        """Rewrite ``[client:<merged>]`` as ``[client:<survivor>]`` in every sealed text."""
        async with self.db.read() as conn:
            pending = await store.links_pending(conn)
        if not pending:
            return 0
        rewritten, after = 0, 0
        while True:
            async with self.db.read() as conn:
                batch = await store.consultation_ids(conn, after=after, limit=BATCH)
                linking = [(cid, ref) for _seq, cid, ref in batch
                           if await self._rewrites(conn, cid, pending) is not None]
            for cid, ref in linking:
                if await self.db.write(partial(self._rewrite, who=who, ctx=ctx, consultation_id=cid, client_ref=ref,
                                               pending=pending)):
                    rewritten += 1
            if len(batch) < BATCH:
                break
            after = batch[-1][0]
        now = self.clock.now()
        await self.db.write(lambda conn: store.links_repointed(conn, sorted(pending), now))
        return rewritten

    async def _rewrites(self, conn: AsyncConnection, consultation_id: str, pending: dict[str, str]
                        ) -> list[tuple[store.SealedText, bytes]] | None:
        """The texts of one consultation with their links repointed, or None if none changes."""
        try:
            key = await self.vault.key(conn, consultation_owner(consultation_id))
        except CryptoError:
            return None  # shredded meanwhile: nothing left to rewrite
        changed = []
        for text in await store.sealed_texts(conn, consultation_id):
            plain = self.vault.open(key, text.table, text.row_id, text.field, text.blob)
            new = _LINK.sub(lambda m: client_link(pending.get(m.group(1), m.group(1))), plain)
            if new != plain:
                # Same length, so the recorded positions of other identifiers stay right.
                assert len(new) == len(plain)
                changed.append((text, self.vault.seal(key, text.table, text.row_id, text.field, new)))
        return changed or None

    async def _rewrite(self, conn: AsyncConnection, who: Principal, ctx: RequestContext, consultation_id: str,
                       client_ref: ClientRef | None, pending: dict[str, str]) -> bool:
        changed = await self._rewrites(conn, consultation_id, pending)
        if not changed:
            return False
        for text, blob in changed:
            await store.reseal(conn, text, blob)
        await record(conn, who, ctx, self.clock.now(), [AuditRecord(
            action="client.merge_links", consultation_id=consultation_id, client_ref=client_ref)])
        return True
