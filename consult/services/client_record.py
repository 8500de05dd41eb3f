"""The export for the wellbeing services county's client record: § 35 contacts and
decision-relevant advice from the consultations the county is a party to, as JSON Lines.

Konsulta is a transit channel. What the county must keep as a client document of social welfare
(kept 10 to 30 years by the annex of 703/2023) belongs in its own client record, where those
periods run; this export hands it over before Konsulta's shorter retention shreds its copy. Each
consultation's content is exported as the organisation may see it through the policy (what it
wrote in full, what another organisation wrote item by item), and every exported consultation is
one audit record naming the exporter, the consultation and the client reference.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden
from consult.model import Clock, Principal, iso
from consult.model.context import RequestContext
from consult.services.messages import Messages
from consult.storage import retention as store
from consult.storage.db import Database

SCHEMA = "konsulta.client-record/1"
# Outcomes whose advice may bear on a decision of the county (a referral, a disclosure, advice
# given); a declined consultation or one the system closed for inactivity carries none.
DECISION_RELEVANT = ("advice_given", "data_disclosed", "referred")
MARKING = "SALASSA PIDETTÄVÄ, JulkL 24 § 1 mom. 25 k."
PURPOSE = "client_record_transfer"
EXPORTERS = ("privacy_officer", "admin", "operator")


class ClientRecordExport:
    def __init__(self, db: Database, messages: Messages, clock: Clock) -> None:
        self.db = db
        self.messages = messages
        self.clock = clock

    async def export(self, who: Principal, ctx: RequestContext, *, since: datetime | None = None,
                     until: datetime | None = None, client_refs: tuple[str, ...] = ()) -> list[str]:
        """The JSON Lines of ``who``'s organisation: a header, then one line per consultation.
        Only a privacy officer or admin (or the local operator on the command line) exports, and
        only the consultations their own organisation is a party to."""
        if not any(who.has(role) for role in EXPORTERS):
            raise Forbidden("Only privacy officers and admins export for the client record.", code="role")
        org = who.org
        async with self.db.read() as conn:
            found = await store.client_record_candidates(conn, org, since=since, until=until,
                                                         client_refs=client_refs, outcomes=DECISION_RELEVANT)
        now = self.clock.now()
        records = [await self._record(row, org) for row in found]
        await self.db.write(lambda conn: record(conn, who, ctx, now, [
            AuditRecord(action="retention.export_client_record", consultation_id=row["id"],
                        client_ref=row["client_ref"], purpose=PURPOSE, recipient_org=org,
                        categories=tuple(r["categories"]))
            for row, r in zip(found, records, strict=True)
        ] or [AuditRecord(action="retention.export_client_record", purpose=PURPOSE, recipient_org=org)]))
        header = {"type": "header", "schema": SCHEMA, "organisation": org, "exported_at": iso(now),
                  "exported_by": who.user_id, "from": iso(since), "to": iso(until),
                  "client_refs": list(client_refs), "count": len(records), "marking": MARKING}
        return [json.dumps(line, ensure_ascii=False) + "\n" for line in (header, *records)]

    async def _record(self, row: dict[str, Any], org: str) -> dict[str, Any]:
        seen = await self.messages.as_organisation(row["id"], org)
        c = seen.consultation
        referrals = [
            {"message_id": m["id"], "at": m["created_at"], "author_org": m["author"]["org"],
             "category": d["category"], "condition": d["referral"]["condition"]}
            for m in seen.messages for d in m["data"] if d.get("referral") and not d.get("withheld")
        ]
        return {
            "type": "consultation",
            "kind": "section_35_contact" if row["referrals"] else "advice",
            "consultation_id": c.id, "client_ref": c.client_ref, "case_ref": c.case_ref,
            "origin_org": c.origin_org, "target_org": c.target_org, "topic": c.topic,
            "purpose": c.purpose, "opened_at": iso(c.created_at), "closed_at": iso(c.closed_at),
            "outcome": c.outcome, "outcome_note": c.outcome_note if c.closed_org == org else None,
            "question": seen.question, "referrals": referrals, "messages": seen.messages,
            "categories": list(seen.categories), "marking": MARKING,
        }
