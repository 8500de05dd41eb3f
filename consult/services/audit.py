"""The privacy officer's side of the audit log (docs/capabilities.md C5): tree heads, proofs and checkpoints,
queries over the access and disclosure log, the client access report, exports, anomaly flags,
verification and break-glass access to content.

Every query a privacy officer makes is itself appended to the log before its answer is released,
and a privacy officer sees only records that concern their own organisation: those whose actor
belongs to it, or (for disclosures) whose recipient does. The log is searched by client,
actor, time, category, basis and outcome — never by pairs of staff.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.anchor import Anchor
from consult.audit.entry import FIELDS
from consult.audit.log import AuditLog, SignedCheckpoint
from consult.audit.records import AuditRecord, record
from consult.audit.verify import VerifyReport, unanchored_cutoff, verify_log
from consult.errors import Forbidden, NotFound, Unprocessable
from consult.model import Clock, Principal, actions, secrecy
from consult.model.audit_fields import ROW_FIELDS
from consult.model.clock import iso
from consult.model.context import RequestContext
from consult.model.identifiers import ClientRef
from consult.services import gate, log_extract
from consult.services.anomalies import AccessAnomalies, AnomalyRules, flagged_record
from consult.services.checkpoints import Checkpoints
from consult.services.messages import Messages
from consult.services.paging import clamp_limit, decode_cursor, encode_cursor
from consult.storage import audit_log
from consult.storage import client_merges as merge_store
from consult.storage import consultations as consultation_store
from consult.storage.audit_log import DISCLOSURE_ACTIONS, EventFilter
from consult.storage.checkpoint_file import CheckpointFile
from consult.storage.db import Database

REPORT_PERIOD = timedelta(days=2 * 365 + 1)
"""The client access report covers two years unless a reason is recorded (docs/capabilities.md C5)."""
REPORT_MAX_RECORDS = 10_000
ANOMALY_DEFAULT_WINDOW = timedelta(days=7)
ANOMALY_MAX_WINDOW = timedelta(days=92)
JUSTIFICATION_MIN = 20
JUSTIFICATION_MAX = 2000
ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The filters of an audit search, as the edge parsed them."""

    client_ref: ClientRef | None = None
    actor_id: str | None = None
    actions: tuple[str, ...] = ()
    outcome: str | None = None
    category: str | None = None
    basis: str | None = None
    consultation_id: str | None = None
    flag: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        # The query itself is recorded in the audit log (``audit_record``): a filter holding an
        # identifier would put it there in clear. A client is searched by client_ref.
        for name in ("client_ref", "actor_id", "category", "basis", "consultation_id", "flag"):
            gate.reference(name, getattr(self, name))

    def scoped(self, org: str | None, *, actions: tuple[str, ...] | None = None) -> EventFilter:
        return EventFilter(
            org=org, client_ref=self.client_ref, actor_id=self.actor_id,
            actions=self.actions if actions is None else actions, outcome=self.outcome,
            category=self.category, basis=self.basis, consultation_id=self.consultation_id,
            flag=self.flag, since=_utc(self.since), until=_utc(self.until),
        )

    def audit_record(self, action: str) -> AuditRecord:
        """The record of this query itself: what was asked about, not what was found."""
        return AuditRecord(
            action=action, client_ref=self.client_ref, subject_user=self.actor_id,
            consultation_id=self.consultation_id, categories=(self.category,) if self.category else (),
            purpose="privacy_audit", basis=self.basis,
        )


@dataclass(frozen=True, slots=True)
class _ClientLog:
    """One client's records as the access report and the log extract read them."""

    rows: list[dict[str, Any]]
    names: dict[str, str]
    merged: list[str]
    since: datetime
    end: datetime
    now: datetime
    truncated: bool
    tree_size: int


class AuditTrail:
    """Privacy-officer operations over the log; every method checks the role itself."""

    def __init__(
        self,
        db: Database,
        log: AuditLog,
        messages: Messages,
        clock: Clock,
        rules: AnomalyRules,
        *,
        verifier_keys: Sequence[str] = (),
        anchor: Anchor | None = None,
        checkpoint_every: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db = db
        self.log = log
        self.anchor = anchor
        self.checkpoint_every = checkpoint_every
        self.messages = messages
        self.clock = clock
        self.rules = rules
        self.verifier_keys = (log.signer.verifier_key, *verifier_keys)
        self._verify_lock = asyncio.Lock()
        self.checkpoints = Checkpoints(db, log, clock, anchor)

    # -- the tree: heads, proofs, checkpoints ---------------------------------------------------

    async def load(self) -> None:
        await self.checkpoints.load()

    async def close(self) -> None:
        await self.checkpoints.close()

    async def sync(self) -> int:
        async with self.db.read() as conn:
            return await self.log.sync(conn)

    def size_and_last_checkpoint(self) -> tuple[int, datetime | None]:
        """For monitoring: the tree size as last synced, and when its newest checkpoint was signed."""
        signed = self.log.last_signed
        return self.log.tree.size, signed.signed_at if signed else None

    async def tree_head(self, who: Principal) -> dict[str, Any]:
        _officer(who)
        await self.sync()
        head = self.log.head(self.clock.now())
        signed = self.log.last_signed
        return {
            "tree_size": head.size,
            "root_hash": head.root.hex(),
            "timestamp": iso(head.timestamp),
            "origin": self.log.signer.origin,
            "checkpoint": {"tree_size": signed.size, "signed_at": iso(signed.signed_at)} if signed else None,
        }

    async def checkpoint_now(self) -> SignedCheckpoint | None:
        return await self.checkpoints.now()

    async def checkpoint(self, who: Principal) -> str:
        """The newest signed checkpoint (a fresh one if the tree grew), as a C2SP signed note."""
        _officer(who)
        cp = await self.checkpoint_now()
        if cp is None:  # an empty log: sign its empty head without storing it
            cp = self.log.sign_current(self.clock.now())
        return cp.note

    def verifier_key(self, who: Principal) -> str:
        _officer(who)
        return self.log.signer.verifier_key

    async def inclusion(self, who: Principal, index: int, size: int | None) -> dict[str, Any]:
        _officer(who)
        current = await self.sync()
        size = current if size is None else size
        if not 0 < size <= current or not 0 <= index < size:
            raise Unprocessable(
                f"Need 0 <= index < size <= {current} (the current tree size).", code="out_of_range"
            )
        leaf, path, root = self.log.inclusion(index, size)
        return {"leaf_index": index, "tree_size": size, "leaf_hash": leaf.hex(),
                "path": [p.hex() for p in path], "root_hash": root.hex()}

    async def consistency(self, who: Principal, first: int, second: int | None) -> dict[str, Any]:
        _officer(who)
        current = await self.sync()
        second = current if second is None else second
        if not 0 <= first <= second <= current:
            raise Unprocessable(
                f"Need 0 <= first <= second <= {current} (the current tree size).", code="out_of_range"
            )
        first_root, second_root, path = self.log.consistency(first, second)
        return {"first": first, "second": second, "first_hash": first_root.hex(),
                "second_hash": second_root.hex(), "path": [p.hex() for p in path]}

    async def verify(self, who: Principal, ctx: RequestContext) -> dict[str, Any]:
        """Recompute the whole log and check it against every stored signed checkpoint."""
        _officer(who)
        anchor = self.anchor
        async with self._verify_lock:  # one at a time: it reads every record
            # On the server's own connections: a second handle on the SQLite file would cost the
            # process its locks (see storage.db.ensure_sqlite_file).
            file = anchor.file if anchor is not None else None
            cutoff = unanchored_cutoff(self.clock.now(), self.checkpoint_every)
            report = await self.db.scan(lambda conn: verify_log(
                conn, self.verifier_keys, origin=self.log.signer.origin, checkpoint_file=file,
                unanchored_before=cutoff))
        await self._audited(who, ctx, AuditRecord(action="audit.verify", purpose="privacy_audit",
                                                  outcome="permit" if report.ok else "deny"))
        return report.as_json()

    # -- queries -------------------------------------------------------------------------------

    async def events(self, who: Principal, q: AuditQuery, *, limit: int | None, cursor: str | None,
                     ctx: RequestContext) -> dict[str, Any]:
        _officer(who)
        return await self._page(who, q.scoped(who.org), "audit.query", q, limit, cursor, ctx, event_json)

    async def disclosures(self, who: Principal, q: AuditQuery, *, limit: int | None, cursor: str | None,
                          ctx: RequestContext) -> dict[str, Any]:
        _officer(who)
        actions = tuple(a for a in q.actions if a in DISCLOSURE_ACTIONS) or DISCLOSURE_ACTIONS
        return await self._page(who, q.scoped(who.org, actions=actions), "audit.disclosures", q, limit, cursor,
                                ctx, disclosure_json)

    async def _page(self, who: Principal, f: EventFilter, action: str, q: AuditQuery, limit: int | None,
                    cursor: str | None, ctx: RequestContext, render: Any) -> dict[str, Any]:
        limit = clamp_limit(limit)
        before = decode_cursor("a", cursor)
        async with self.db.read() as conn:
            rows = await audit_log.query(conn, f, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        await self._audited(who, ctx, q.audit_record(action))
        return {"items": [render(r) for r in rows],
                "next": encode_cursor("a", rows[-1]["leaf_index"]) if more else None}

    async def access_report(
        self, who: Principal, client_ref: ClientRef, *, since: datetime | None, until: datetime | None,
        reason: str | None, ctx: RequestContext,
    ) -> dict[str, Any]:
        """Who processed this client's data, to whom it was disclosed, when and on what basis
        (laki 703/2023 11 §; GDPR art. 15) — as far as it concerns the officer's organisation."""
        found = await self._client_log(who, client_ref, since=since, until=until, reason=reason, ctx=ctx,
                                       action="audit.access_report")
        rows, names = found.rows, found.names
        processing = [_processing_json(r, names) for r in rows if r["action"] not in DISCLOSURE_ACTIONS]
        disclosed = [_report_disclosure_json(r, names) for r in rows if r["action"] in DISCLOSURE_ACTIONS]
        return {
            "client_ref": client_ref,
            "merged_refs": found.merged,
            "organisation": who.org,
            "period": {"from": iso(found.since), "to": iso(found.end)},
            "generated_at": iso(found.now),
            "processing": processing,
            "disclosures": disclosed,
            "summary": {
                "records": len(rows),
                "processed_by": [_person(a, names, org=o) for o, a in sorted({(r["actor_org"], r["actor_id"])
                                                                                for r in rows})],
                "organisations": sorted({r["actor_org"] for r in rows}
                                        | {r["recipient_org"] for r in rows if r["recipient_org"]}),
                "disclosed": sum(1 for d in disclosed if d["outcome"] == "permit"),
                "withheld": sum(1 for d in disclosed if d["outcome"] != "permit"),
            },
            "truncated": found.truncated,
            "tree_size": found.tree_size,
            "secrecy": secrecy.field(),
        }

    async def log_extract(
        self, who: Principal, client_ref: ClientRef, *, lang: str, since: datetime | None, until: datetime | None,
        reason: str | None, ctx: RequestContext, org_names: Mapping[str, str],
        citation: Callable[[str], str | None],
    ) -> dict[str, Any]:
        """The log extract (lokitieto-ote) a client can read, in Finnish or Swedish (laki 703/2023
        11 §): the same records as the access report, in words and without internal codes."""
        if lang not in log_extract.LANGUAGES:
            raise Unprocessable("lang must be fi or sv.", code="invalid_field")
        found = await self._client_log(who, client_ref, since=since, until=until, reason=reason, ctx=ctx,
                                       action="audit.log_extract")
        extract = log_extract.render(
            found.rows, lang=lang, org=who.org, org_names=org_names, staff_names=found.names,
            since=found.since, until=found.end, now=found.now, citation=citation,
            disclosure_actions=frozenset(DISCLOSURE_ACTIONS), truncated=found.truncated)
        return {
            "client_ref": client_ref,
            "lang": lang,
            "organisation": extract.organisation,
            "period": {"from": iso(found.since), "to": iso(found.end)},
            "generated_at": iso(found.now),
            "used": [e.as_json() for e in extract.used],
            "disclosed": [e.as_json() for e in extract.disclosed],
            "truncated": extract.truncated,
            "text": extract.text,
            "secrecy": secrecy.field(),
        }

    async def _client_log(
        self, who: Principal, client_ref: ClientRef, *, since: datetime | None, until: datetime | None,
        reason: str | None, ctx: RequestContext, action: str,
    ) -> _ClientLog:
        """One client's records of the officer's organisation in a period (two years unless a
        written reason reaches further back), recorded as ``action`` before they are returned."""
        _officer(who)
        now = self.clock.now()
        # Without a "to" the period runs up to now inclusive: no upper bound in the query.
        end = _utc(until) or now
        since = _utc(since) or end - REPORT_PERIOD
        if since >= end:
            raise Unprocessable("from must be before to.", code="invalid_period")
        older = since < now - REPORT_PERIOD
        if older:
            reason = written_reason(reason, "reason", "A report reaching back more than two years")
        async with self.db.read() as conn:
            # A client merged from duplicates of one identity code: their records are its own.
            merged = await merge_store.merged_into(conn, client_ref)
            rows = await audit_log.client_records(conn, client_ref, org=who.org, since=since, until=_utc(until),
                                                  limit=REPORT_MAX_RECORDS + 1, merged=merged)
            names = await audit_log.display_names(
                conn, sorted({r["actor_id"] for r in rows} | {r["subject_user"] for r in rows if r["subject_user"]}))
        truncated = len(rows) > REPORT_MAX_RECORDS
        rows = rows[:REPORT_MAX_RECORDS]
        entry = AuditRecord(action=action, client_ref=client_ref, purpose="privacy_audit")
        if older:
            await self._audited_with_reason(who, ctx, entry, "access_report.older", reason or "")
        else:
            await self._audited(who, ctx, entry)
        tree_size = await self.sync()  # the report's records are in the tree the officer can prove against
        return _ClientLog(rows=rows, names=names, merged=merged, since=since, end=end, now=now,
                          truncated=truncated, tree_size=tree_size)

    async def anomalies(self, who: Principal, *, since: datetime | None, until: datetime | None,
                        limit: int | None, cursor: str | None, ctx: RequestContext) -> dict[str, Any]:
        _officer(who)
        limit = clamp_limit(limit)
        offset = decode_cursor("n", cursor) or 0
        end = _utc(until) or self.clock.now()
        since = _utc(since) or end - ANOMALY_DEFAULT_WINDOW
        until = _utc(until)  # None: up to now inclusive
        if not since < end or end - since > ANOMALY_MAX_WINDOW:
            raise Unprocessable("The period must be positive and at most 92 days.", code="invalid_period")
        folded = AccessAnomalies(self.rules)
        async with self.db.read() as conn:
            async for part in audit_log.access_feed(conn, org=who.org, since=since, until=until):
                folded.feed(part)
            found = folded.results()
            for kind, f in (
                ("break_glass", EventFilter(org=who.org, actions=("break_glass",), since=since, until=until)),
                ("referral_without_consent", EventFilter(org=who.org, actions=("disclose",), outcome="permit",
                                                         flag="referral_without_consent", since=since,
                                                         until=until)),
                ("sensitive_free_text", EventFilter(org=who.org, actions=("disclose",), outcome="permit",
                                                    flag="sensitive_free_text", since=since, until=until)),
            ):
                async for records in audit_log.iter_query(conn, f):
                    found += [flagged_record(kind, r) for r in records]
        found.sort(key=lambda a: (a["at"], a["leaf_index"]), reverse=True)
        page = found[offset: offset + limit]
        await self._audited(who, ctx, AuditRecord(action="audit.anomalies", purpose="privacy_audit"))
        more = offset + limit < len(found)
        return {"items": page, "next": encode_cursor("n", offset + limit) if more else None,
                "rules": {"clients_per_hour": self.rules.clients_per_hour,
                          "office_hours": "{:02d}-{:02d}".format(*self.rules.office_hours),
                          "office_days": "{:d}-{:d}".format(*self.rules.office_days),
                          "timezone": "Europe/Helsinki"}}

    async def export(self, who: Principal, q: AuditQuery, fmt: str, ctx: RequestContext) -> AsyncIterator[str]:
        """The organisation's matching records as CSV or JSON Lines, recorded before it starts."""
        _officer(who)
        return await export_records(self.db, self.clock, who, q, fmt, ctx, org=who.org)

    # -- break-glass ---------------------------------------------------------------------------

    async def break_glass(self, who: Principal, consultation_id: str, justification: str | None,
                          ctx: RequestContext) -> dict[str, Any]:
        """Open a consultation's content with a written justification, recorded and flagged
        before anything is shown — and only as the officer's own organisation may see it through
        the policy: another organisation's withheld items stay withheld (category, rule, basis)."""
        _officer(who)
        text = written_reason(justification, "justification", "Opening content")
        async with self.db.read() as conn:
            c = await consultation_store.get(conn, consultation_id) if 0 < len(consultation_id) <= 36 else None
        if c is None or who.org not in (c.origin_org, c.target_org):
            raise NotFound()
        opened = await self.messages.as_organisation(consultation_id, who.org)
        leaf = await self._audited_with_reason(
            who, ctx,
            AuditRecord(action="break_glass", consultation_id=consultation_id, client_ref=c.client_ref,
                        purpose=c.purpose, categories=opened.categories, flags=("break_glass",)),
            "break_glass", text,
        )
        return {
            "consultation": {
                "id": c.id, "topic": c.topic, "status": c.status, "purpose": c.purpose,
                "origin_org": c.origin_org, "target_org": c.target_org, "client_ref": c.client_ref,
                "question": opened.question,
                "created_at": iso(c.created_at), "closed_at": iso(c.closed_at),
            },
            "organisation": who.org,
            "messages": opened.messages,
            "audit": {"leaf_index": leaf, "flagged": True},
            "secrecy": secrecy.field(),
        }

    # -- written reasons -------------------------------------------------------------------------

    async def reason(self, who: Principal, reason_id: str, ctx: RequestContext) -> dict[str, Any]:
        """A written reason kept beside the log (a sender's confirmation of sensitive free text,
        a break-glass justification), for a privacy officer of an organisation its records
        concern. Reading it is itself recorded."""
        _officer(who)
        async with self.db.read() as conn:
            row = await audit_log.get_reason(conn, reason_id) if len(reason_id) <= 36 else None
        if row is None or who.org not in row["orgs"]:
            raise NotFound()
        await self._audited(who, ctx, AuditRecord(action="audit.reason", purpose="privacy_audit",
                                                  reason_id=row["id"], reason_digest=row["digest"]))
        return {"id": row["id"], "kind": row["kind"], "text": row["text"], "at": iso(row["at"]),
                "actor": {"id": row["actor_id"], "org": row["actor_org"]}}

    # -- recording -----------------------------------------------------------------------------

    async def _audited(self, who: Principal, ctx: RequestContext, rec: AuditRecord) -> None:
        await self.db.write(lambda conn: record(conn, who, ctx, self.clock.now(), [rec]))

    async def _audited_with_reason(self, who: Principal, ctx: RequestContext, rec: AuditRecord,
                                   kind: str, text: str) -> int:
        reason_id = str(uuid.uuid4())
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> int:
            await audit_log.insert_reason(conn, {"id": reason_id, "kind": kind, "text": text, "digest": digest,
                                                 "at": now, "actor_id": who.user_id, "actor_org": who.org})
            return await record(conn, who, ctx, now, [replace(rec, reason_id=reason_id, reason_digest=digest)],
                                now=True)

        return await self.db.write(unit)


# -- exports and verification, also for the command line -----------------------------------------


async def export_records(
    db: Database, clock: Clock, actor: Principal, q: AuditQuery, fmt: str, ctx: RequestContext,
    *, org: str | None,
) -> AsyncIterator[str]:
    """Record the export, then stream the matching records (of ``org``, or all) as CSV or JSON Lines."""
    if fmt not in EXPORT_FORMATS:
        raise Unprocessable("format must be csv or jsonl.", code="invalid_field")
    await db.write(lambda conn: record(conn, actor, ctx, clock.now(), [q.audit_record("audit.export")]))
    return _export_lines(db, q.scoped(org), fmt)


async def _export_lines(db: Database, f: EventFilter, fmt: str) -> AsyncIterator[str]:
    if fmt == "csv":
        yield _csv_line([*FIELDS, *ROW_FIELDS])
    async with db.read() as conn:
        async for part in audit_log.iter_query(conn, f):
            if fmt == "csv":
                yield "".join(_csv_line([_csv_cell(v) for v in _export_values(r)]) for r in part)
            else:
                yield "".join(json.dumps(export_json(r), ensure_ascii=False) + "\n" for r in part)


def verify_database(url: str, keys: Sequence[str], origin: str | None,
                    external: Sequence[str] = (), *, checkpoint_file: Path | None = None,
                    unanchored_before: datetime | None = None) -> VerifyReport:
    """Verify the log of the database at ``url`` on a connection and event loop of its own
    (it reads every record), against the checkpoint file if one is named. Blocking: call it in a
    thread from a running loop."""
    file = CheckpointFile(checkpoint_file) if checkpoint_file is not None else None

    async def run() -> VerifyReport:
        db = Database(url)  # read-only use: no writer is started
        try:
            async with db.read() as conn:
                return await verify_log(conn, keys, origin=origin, external=external, checkpoint_file=file,
                                        unanchored_before=unanchored_before)
        finally:
            await db.close()

    return asyncio.run(run())


# -- rendering ------------------------------------------------------------------------------------


def event_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "leaf_index": r["leaf_index"],
        "id": r["id"],
        "at": iso(r["at"]),
        "actor": {"id": r["actor_id"], "org": r["actor_org"], "role": r["actor_role"]},
        "action": r["action"],
        "outcome": r["outcome"],
        "consultation_id": r["consultation_id"],
        "message_id": r["message_id"],
        "client_ref": r["client_ref"],
        "categories": list(r["categories"] or []),
        "purpose": r["purpose"],
        "basis": r["basis"],
        "rule_id": r["rule_id"],
        "policy_version": r["policy_version"],
        "consent": {"id": r["consent_id"], "version": r["consent_version"]} if r["consent_id"] else None,
        "subject_user": r["subject_user"],
        "recipient": {"org": r["recipient_org"], "role": r["recipient_role"]} if r["recipient_org"] else None,
        "flags": list(r["flags"] or []),
        "reason_id": r["reason_id"],
        "request_id": r["request_id"],
        "source": r["source"],
        "leaf_hash": bytes(r["leaf_hash"]).hex(),
    }


def disclosure_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "leaf_index": r["leaf_index"],
        "at": iso(r["at"]),
        "client_ref": r["client_ref"],
        "consultation_id": r["consultation_id"],
        "message_id": r["message_id"],
        "categories": list(r["categories"] or []),
        "from": {"id": r["actor_id"], "org": r["actor_org"], "role": r["actor_role"]},
        "to": {"org": r["recipient_org"], "role": r["recipient_role"], "user_id": r["subject_user"]},
        "outcome": r["outcome"],
        "purpose": r["purpose"],
        "basis": r["basis"],
        "rule_id": r["rule_id"],
        "policy_version": r["policy_version"],
        "consent": {"id": r["consent_id"], "version": r["consent_version"]} if r["consent_id"] else None,
        "flags": list(r["flags"] or []),
    }


def _person(user_id: str | None, names: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "name": names.get(user_id or ""), **extra}


def _processing_json(r: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {
        "leaf_index": r["leaf_index"],
        "at": iso(r["at"]),
        "who": _person(r["actor_id"], names, org=r["actor_org"], role=r["actor_role"]),
        "action": r["action"],
        "outcome": r["outcome"],
        "purpose": r["purpose"],
        "basis": r["basis"],
        "consultation_id": r["consultation_id"],
        "categories": list(r["categories"] or []),
        "flags": list(r["flags"] or []),
    }


def _report_disclosure_json(r: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {
        "leaf_index": r["leaf_index"],
        "at": iso(r["at"]),
        "from": _person(r["actor_id"], names, org=r["actor_org"], role=r["actor_role"]),
        "to": _person(r["subject_user"], names, org=r["recipient_org"], role=r["recipient_role"]),
        "categories": list(r["categories"] or []),
        "outcome": r["outcome"],
        "purpose": r["purpose"],
        "basis": r["basis"],
        "rule_id": r["rule_id"],
        "consent": {"id": r["consent_id"], "version": r["consent_version"]} if r["consent_id"] else None,
        "consultation_id": r["consultation_id"],
        "flags": list(r["flags"] or []),
    }


def _export_values(r: dict[str, Any]) -> list[Any]:
    values = [r.get(name) for name in FIELDS]
    values[FIELDS.index("at")] = _entry_time(r["at"])
    return [*values, r.get("entry_version") or 1, bytes(r["leaf_hash"]).hex()]


def export_json(r: dict[str, Any]) -> dict[str, Any]:
    """One exported record: the entry fields and version (from which anyone can recompute the
    leaf hash, see consult/audit/entry.py) and the stored leaf hash."""
    out = {name: r.get(name) for name in FIELDS}
    out["at"] = _entry_time(r["at"])
    out["categories"] = list(r["categories"] or [])
    out["flags"] = list(r["flags"] or [])
    out["entry_version"] = r.get("entry_version") or 1
    out["leaf_hash"] = bytes(r["leaf_hash"]).hex()
    return out


def _entry_time(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # type: ignore[union-attr]


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(value)
    text = str(value)
    # A spreadsheet must not run a cell as a formula (CSV injection); JSON Lines stays exact.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text


# -- helpers --------------------------------------------------------------------------------------


def _officer(who: Principal) -> None:
    if not actions.allows(who, "audit.read"):
        raise Forbidden("Only a privacy officer may use the audit log.", code="role")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def written_reason(text: str | None, field_name: str, what: str) -> str:
    """A written reason as kept beside the log: trimmed, 20-2000 characters, no identity code."""
    if text is None or not text.strip():
        raise Unprocessable(f"{what} needs a written {field_name}.", code="reason_required")
    text = text.strip()
    if not JUSTIFICATION_MIN <= len(text) <= JUSTIFICATION_MAX:
        raise Unprocessable(
            f"{field_name}: write {JUSTIFICATION_MIN} to {JUSTIFICATION_MAX} characters.", code="invalid_field"
        )
    # Kept in clear beside the audit log: no identifier of any kind (consult/services/gate.py).
    return gate.reference(field_name, text)  # type: ignore[return-value]
