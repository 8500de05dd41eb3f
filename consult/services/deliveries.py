"""The record of live deliveries (docs/capabilities.md C5): an event that carries client data or consultation
content — a consultation with its question and client, a message with its text and items — is a
read by its recipient, and reaches the recipient's connection only after its record is committed.

A service may record the deliveries of its act in the act's own transaction (a message and its
live deliveries are one commit: ``record_deliveries``). Everything else is recorded here in
batches: whatever was published while the previous batch was being written goes into the next
one, in one write unit (so it shares the database's group commit). A commit holds one record per
connection, consultation and kind of event (``live.<type>``, e.g. ``live.message.created``),
naming the categories of the items shown and the message when the record covers one. Frames are
handed to the connections in publication order once their records are committed; a batch whose
records cannot be written is not delivered: a connection that so loses a kept event (one with an
``event_id``) gets nothing more and is closed, to resume from the last event it got (the replay
records its deliveries again); what was not kept the reader fetches later through the history,
which is itself recorded. On shutdown the last batch is written and delivered before the
database closes, and content published after that is not delivered. A record is written when
its frame is handed to the connection; a connection that drops in that instant has a record of a
frame it never received.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record_all
from consult.model import Clock, Principal
from consult.model.consultations import ConsultationView
from consult.model.context import RequestContext
from consult.model.messages import MessageView
from consult.services.events import Delivery, EventBus, Reader
from consult.storage.db import Database

log = logging.getLogger("consult.deliveries")

UNKNOWN_READER = Reader(Principal("-", "-", frozenset(), "-"), RequestContext("live"))


def carries_content(event: dict[str, Any]) -> bool:
    """Whether an event carries client data or consultation content: a consultation (question,
    client) or a message (text, items). Presence, read receipts and routing notices do not."""
    return (isinstance(event.get("consultation"), (dict, ConsultationView))
            or isinstance(event.get("message"), (dict, MessageView)))


def _consultation_facts(c: Any) -> tuple[Any, Any, Any]:
    """A consultation event's id, client and purpose (a `ConsultationView`, or a plain body)."""
    if isinstance(c, ConsultationView):
        return c.consultation.id, c.consultation.client_ref, c.consultation.purpose
    if not c:
        return None, None, None
    return c.get("id"), c.get("client_ref"), c.get("purpose")


def _message_facts(m: Any) -> tuple[str | None, str | None, list[str]]:
    """A message event's id, consultation and shown categories (a `MessageView`, or a plain
    message body)."""
    if isinstance(m, MessageView):
        return m.id, m.consultation_id, list(m.shown_categories)
    if not m:
        return None, None, []
    return m.get("id"), m.get("consultation_id"), [i["category"] for i in m.get("data") or () if not i.get("withheld")]


async def record_deliveries(
    conn: AsyncConnection, deliveries: list[Delivery], at: datetime,
    act: Sequence[tuple[Principal, RequestContext, Sequence[AuditRecord]]] = (), *,
    later: Callable[[Delivery], bool] | None = None,
) -> list[Delivery]:
    """Inside a write unit: record ``deliveries`` (those carrying content and not yet recorded),
    after the records of the ``act`` that made them, in one append to the log; returns them
    marked as recorded, to be sent once the unit has committed. Those ``later`` picks (a
    connection held back while its replay is sent) are left to the ledger, recorded when they
    are handed on."""
    now = [d for d in deliveries if later is None or not later(d)]
    await record_all(conn, at, [*act, *((r.principal, r.ctx, records) for r, records in delivery_records(now))])
    return [d if d.recorded or (later is not None and later(d)) else replace(d, recorded=True) for d in deliveries]


def delivery_records(batch: Iterable[Delivery]) -> list[tuple[Reader, list[AuditRecord]]]:
    """One record per connection, consultation and kind of event in ``batch`` that carries
    content and is not yet recorded, grouped by reader."""
    groups: dict[tuple[int, str, str], dict[str, Any]] = {}
    readers: dict[int, Reader] = {}
    for d in batch:
        if d.recorded or not carries_content(d.event):
            continue
        reader = d.reader or UNKNOWN_READER
        c_id, c_client, c_purpose = _consultation_facts(d.event.get("consultation"))
        message_id, message_consultation, categories = _message_facts(d.event.get("message"))
        consultation_id = d.subject.consultation_id if d.subject else c_id or message_consultation
        key = (id(d.sink), str(consultation_id), str(d.event.get("type")))
        readers[id(d.sink)] = reader
        g = groups.setdefault(key, {
            "type": str(d.event.get("type") or "event"), "consultation_id": consultation_id,
            "client_ref": d.subject.client_ref if d.subject else c_client,
            "purpose": d.subject.purpose if d.subject else c_purpose,
            "categories": set(), "messages": set(),
        })
        if d.event.get("message"):
            g["messages"].add(message_id)
            g["categories"].update(categories)
    by_reader: dict[int, list[AuditRecord]] = {}
    for (sink, _cid, _type), g in groups.items():
        by_reader.setdefault(sink, []).append(AuditRecord(
            action="live." + g["type"], consultation_id=g["consultation_id"], client_ref=g["client_ref"],
            purpose=g["purpose"], categories=tuple(sorted(g["categories"])),
            message_id=next(iter(g["messages"])) if len(g["messages"]) == 1 else None,
        ))
    return [(readers[sink], records) for sink, records in by_reader.items()]


class DeliveryLedger:
    """Records live deliveries before handing them to the connections; attach with ``start``."""

    def __init__(self, db: Database, bus: EventBus, clock: Clock) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self._pending: list[Delivery] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._busy = False  # a batch is being written; later deliveries wait behind it

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consult-delivery-ledger")
        self.bus.record_with(self)

    async def close(self) -> None:
        """Write and deliver what is still pending; from then on, content that is not yet recorded
        is no longer delivered."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        while self._pending:
            await self._flush()

    def submit(self, deliveries: list[Delivery]) -> None:
        if self._closing and self._task is None:  # closed: nothing more is recorded
            self.bus.lose(d for d in deliveries if not (d.recorded or not carries_content(d.event)))
            self.bus.hand_over(d for d in deliveries if d.recorded or not carries_content(d.event))
            return
        if not self._pending and not self._busy and all(
                d.recorded or not carries_content(d.event) for d in deliveries):
            self.bus.hand_over(deliveries)  # nothing to record and nothing queued ahead of it
            return
        self._pending.extend(deliveries)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._flush()
            if self._closing:
                return

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        grouped = delivery_records(batch)
        if grouped:
            now = self.clock.now()

            async def unit(conn: AsyncConnection) -> None:
                await record_all(conn, now, [(reader.principal, reader.ctx, records) for reader, records in grouped])

            self._busy = True
            try:
                await self.db.write(unit)
            except Exception as exc:  # not recorded, not delivered; the history read remains
                kept = [d for d in batch if d.recorded or not carries_content(d.event)]
                log.error("live delivery records failed; %d frames not delivered: %s", len(batch) - len(kept),
                          type(exc).__name__)
                # A connection that lost a kept event is closed to resume (after it, nothing reaches it).
                self.bus.lose(d for d in batch if not (d.recorded or not carries_content(d.event)))
                self.bus.hand_over(kept)
                return
            finally:
                self._busy = False
        self.bus.hand_over(batch)
