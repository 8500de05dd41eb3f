"""Live events kept in the database: what a reconnecting client missed, and what every server
instance on one PostgreSQL database hands to its own connections.

An act that causes a live event about a consultation writes it, in the act's own transaction,
once for each recipient, connected or not: that reader's rendering (as the policy lets them see
it), sealed under the consultation's data key and bound to its row. Each gets an ``event_id``,
increasing over the whole service (consult/storage/events.py keeps the order across writers).

- **SQLite**: one process serves the database; it hands its events to its connections itself,
  after the commit (consult/services/events.py), exactly as before they were kept.
- **PostgreSQL**: each instance LISTENs on ``konsulta_events`` on a connection of its own; a
  notification (sent at commit, carrying the newest id) makes it read the events with an id
  above the last it read, open those of users connected to it, and hand each to every connection
  of that user through the delivery ledger (a delivery record first, for content). When that
  connection is lost it reconnects and reads what it missed in the meantime. Frames that are not
  kept (``presence``, ``expert.updated``: ``EventBus.broadcast``) go to the other instances as
  notifications on ``konsulta_frames``, sent and received on the same connection; each instance
  hands them to all of its connections. Being unkept, one sent while that connection is away is
  lost (a client whose own connection breaks re-reads its views when it is back).

A client that resumes (``last_event_id`` in its ``auth`` frame) gets its own events after that id
in id order (``replay``), each delivery of content recorded like any other live delivery. Events
are kept ``retention`` long and then pruned; the newest id pruned is remembered, so a resume from
before it is reported incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.crypto import CryptoError
from consult.model import Clock, wire
from consult.services.deliveries import record_deliveries
from consult.services.events import Delivery, Event, EventBus, Reader, Sink, Subject
from consult.services.vault import Vault, consultation_owner
from consult.storage import events as store
from consult.storage.db import Database

log = logging.getLogger("consult.live")

BATCH = 500
#: The frames another instance may relay here: what ``EventBus.broadcast`` sends.
RELAYED = frozenset({"presence", "expert.updated"})
REPLAY_LIMIT = 1000
"""At most this many events are replayed on one reconnect; beyond it the replay is incomplete."""
MAX_ID = 2**62
#: The stored payload's JSON (compact, records through their wire form), the encoder built once.
_ENCODE = json.JSONEncoder(separators=(",", ":"), default=wire.plain).encode


@dataclass(frozen=True, slots=True)
class Replay:
    events: list[Event]
    complete: bool
    floor: int  # the connection gets no kept event up to this id again


class LiveEvents:
    def __init__(self, db: Database, vault: Vault, bus: EventBus, clock: Clock, *, retention: timedelta) -> None:
        self.db = db
        self.vault = vault
        self.bus = bus
        self.clock = clock
        self.retention = retention
        self._in_process = db.is_sqlite
        self._last = 0
        self._wake = asyncio.Event()
        self._feed: asyncio.Task[None] | None = None
        self._listener: store.Listener | None = None
        self._origin = uuid.uuid4().hex  # this instance, in the frames it relays
        self._relaying: set[asyncio.Task[bool]] = set()
        self.dispatched = 0
        self.relayed = 0

    @property
    def in_process(self) -> bool:
        return self._in_process

    async def start(self) -> None:
        self.bus.keep_in(self)
        if self._in_process:
            return
        self._last = await self.newest()
        self._feed = asyncio.create_task(self._run(), name="consult-live-feed")
        self._listener = store.Listener(self.db.url, self._wake.set, self._wake.set, on_frame=self._relayed)
        self._listener.start()
        self.bus.relay_to(self._relay)

    async def close(self) -> None:
        self.bus.keep_in(None)
        self.bus.relay_to(None)
        for task in list(self._relaying):
            task.cancel()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
            self._feed = None

    # -- frames that are not kept, between instances ---------------------------------------------

    def _relay(self, event: Event) -> None:
        """A broadcast made here, for the other instances (sent in the background, in order)."""
        if self._listener is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._listener.send_frame(_ENCODE({"from": self._origin, "frame": event})))
        self._relaying.add(task)
        task.add_done_callback(self._relaying.discard)

    def _relayed(self, payload: str) -> None:
        """A frame another instance broadcast: to every connection here."""
        try:
            message = json.loads(payload)
            frame = message["frame"]
            if message["from"] == self._origin or frame.get("type") not in RELAYED:
                return
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("a relayed frame was not understood; dropped")
            return
        self.relayed += 1
        self.bus.publish(self.bus.connected_users(), lambda _u: frame)

    # -- writing, in the act's unit --------------------------------------------------------------

    async def write(self, conn: AsyncConnection, consultation_id: str, rendered: list[tuple[str, Event]],
                    subject: Subject | None) -> list[int] | None:
        try:
            key = await self.vault.key(conn, consultation_owner(consultation_id))
        except CryptoError:
            return None
        now = self.clock.now()
        about = None if subject is None else [subject.consultation_id, subject.client_ref, subject.purpose]
        new = []
        for user_id, event in rendered:
            ref = uuid.uuid4().hex
            payload = _ENCODE({"event": event, "subject": about})
            new.append(store.NewEvent(user_id, consultation_id, ref, now,
                                      self.vault.seal(key, "live_events", f"{user_id}/{ref}", "payload", payload)))
        return await store.append(conn, new)

    # -- reading -----------------------------------------------------------------------------

    async def newest(self) -> int:
        async with self.db.read() as conn:
            return await store.newest(conn)

    async def _open(self, conn: AsyncConnection, row: dict[str, Any]) -> tuple[Event, Subject | None] | None:
        try:
            key = await self.vault.key(conn, consultation_owner(row["consultation_id"]))
            payload = json.loads(self.vault.open(key, "live_events", f"{row['user_id']}/{row['ref']}", "payload",
                                                 row["payload_sealed"]))
        except CryptoError:  # the consultation's content was destroyed: so is the event's
            return None
        about = payload.get("subject")
        subject = None if about is None else Subject(*about)
        return {**payload["event"], "event_id": int(row["id"])}, subject

    async def replay(self, user_id: str, after: int, newest: int, sink: Sink, reader: Reader) -> Replay:
        """``user_id``'s kept events after ``after``, oldest first, their deliveries of content to
        ``sink`` recorded; ``newest`` is the id the connection's ``ready`` named."""
        after = min(after, MAX_ID)
        async with self.db.read() as conn:
            horizon = await store.pruned_through(conn)
            rows = await store.after(conn, after, user_id=user_id, limit=REPLAY_LIMIT + 1)
            more = len(rows) > REPLAY_LIMIT
            opened = [o for r in rows[:REPLAY_LIMIT] if (o := await self._open(conn, r)) is not None]
        complete = after >= horizon and not more and len(opened) == len(rows)
        deliveries = [Delivery(user_id, sink, reader, event, subject) for event, subject in opened]
        if deliveries:
            now = self.clock.now()
            await self.db.write(lambda conn: record_deliveries(conn, deliveries, now))
        events = [d.event for d in deliveries]
        kept = [int(r["id"]) for r in rows[:REPLAY_LIMIT]]
        floor = max(kept) if kept else min(after, newest)
        return Replay(events, complete, floor)

    # -- the feed (PostgreSQL) -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.catch_up()
            except Exception as exc:  # read again shortly; nothing is skipped
                log.warning("reading new live events failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
                self._wake.set()

    async def catch_up(self) -> None:
        """Hand on every event with an id above the last one read, in id order."""
        while True:
            async with self.db.read() as conn:
                rows = await store.after(conn, self._last, limit=BATCH)
                opened = [(r, await self._open(conn, r)) for r in rows if self.bus.is_online(r["user_id"])]
            for row, item in opened:
                if item is not None:
                    self.dispatched += self.bus.dispatch(row["user_id"], item[0], item[1])
            if rows:
                self._last = int(rows[-1]["id"])
            if len(rows) < BATCH:
                return

    # -- retention ---------------------------------------------------------------------------

    async def prune(self) -> int:
        """Remove the events older than the retention time; the number removed."""
        cutoff = self.clock.now() - self.retention
        removed = await self.db.write(lambda conn: store.prune(conn, cutoff))
        if removed:
            log.info("pruned %d live events", removed)
        return removed
