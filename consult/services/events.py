"""Live events: fan-out from services to every connection of each recipient.

Each recipient gets its own rendering of an event (a message as *that* reader may see it), so
``publish`` takes a renderer called once per recipient. The bus knows nothing of WebSockets:
the edge subscribes a sink per connection, naming who reads through it. A user with several tabs
gets every event in each.

With a delivery ledger attached (consult/services/deliveries.py) every event passes through it
in publication order, so that an event carrying client data or content reaches a connection only
after its delivery record is committed.

With a journal attached (consult/services/live.py) an event about a consultation is ``emit``-ted
inside the write unit of the act that caused it: rendered for *every* recipient, connected or not,
and kept, each rendering with its ``event_id``. On SQLite the journal is in-process and the bus
hands the renderings to this process's connections after the commit; on PostgreSQL every instance
learns of new events from the database and hands them on through ``dispatch``. Broadcasts that
concern no consultation (presence, directory entries) are not kept and carry no ``event_id``:
``broadcast`` hands one to every connection here and to the relay (on PostgreSQL, the other
instances, which hand it to theirs through ``publish``).

A connection that resumes is subscribed *held*: what arrives for it waits until its replay is sent,
then ``release`` hands on what the replay did not already contain (by event id).

A kept event that cannot be handed to a connection (its delivery record could not be written) is
given to ``lose``: that connection gets nothing more — a later event would carry its client past
the gap — and its ``on_gap`` is called, so that the client reconnects and resumes from the last
event it got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from consult.model import Principal
from consult.model.context import RequestContext
from consult.model.identifiers import ClientRef

log = logging.getLogger("consult.events")

Event = dict[str, Any]
Sink = Callable[[Event], None]
Renderer = Callable[[str], Event | None]
PresenceListener = Callable[[str, bool], None]
GapListener = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads through a connection, and where the connection came from (for its records)."""

    principal: Principal
    ctx: RequestContext


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about, when the event itself does not say: the consultation and client."""

    consultation_id: str
    client_ref: ClientRef | None
    purpose: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one connection."""

    user_id: str
    sink: Sink
    reader: Reader | None
    event: Event
    subject: Subject | None = None
    recorded: bool = False  # its delivery record is already written (in the act's own transaction)


class Ledger(Protocol):
    def submit(self, deliveries: list[Delivery]) -> None: ...


class Journal(Protocol):
    """Where emitted events are kept (consult/services/live.py)."""

    @property
    def in_process(self) -> bool:
        """Whether this process hands its own events on after the commit (SQLite), rather than
        every instance learning of them from the database (PostgreSQL)."""
        ...

    async def write(self, conn: Any, consultation_id: str, rendered: list[tuple[str, Event]],
                    subject: Subject | None) -> list[int] | None:
        """Keep each rendering in the caller's write unit; their event ids (None: not kept)."""
        ...


def event_id(event: Event) -> int | None:
    value = event.get("event_id")
    return value if isinstance(value, int) else None


class EventBus:
    def __init__(self) -> None:
        self._sinks: dict[str, dict[Sink, Reader | None]] = {}
        self._presence_listeners: list[PresenceListener] = []
        self._ledger: Ledger | None = None
        self._journal: Journal | None = None
        self._held: dict[Sink, list[Delivery]] = {}
        self._floors: dict[Sink, int] = {}
        self._on_gap: dict[Sink, GapListener] = {}
        self._broken: set[Sink] = set()
        self._relay: Callable[[Event], None] | None = None

    def record_with(self, ledger: Ledger | None) -> None:
        """Send every event through ``ledger`` from now on (None: deliver directly again)."""
        self._ledger = ledger

    def keep_in(self, journal: Journal | None) -> None:
        """Keep every emitted event in ``journal`` from now on (None: deliver to connections only)."""
        self._journal = journal

    def relay_to(self, relay: Callable[[Event], None] | None) -> None:
        """Hand every ``broadcast`` to ``relay`` too from now on (None: this process only)."""
        self._relay = relay

    def broadcast(self, event: Event) -> int:
        """An event for every connected user that is not kept (presence, a directory entry): to
        every connection here, and to the relay, for the other instances' connections."""
        sent = self.publish(self.connected_users(), lambda _u: event)
        if self._relay is not None:
            self._relay(event)
        return sent

    def on_presence(self, listener: PresenceListener) -> None:
        self._presence_listeners.append(listener)

    def subscribe(self, user_id: str, sink: Sink, reader: Reader | None = None, *, hold: bool = False,
                  on_gap: GapListener | None = None) -> None:
        """Deliver ``user_id``'s events to ``sink``; with ``hold``, keep them back until ``release``;
        ``on_gap`` is called if a kept event for ``sink`` is lost (see ``lose``)."""
        sinks = self._sinks.setdefault(user_id, {})
        first = not sinks
        sinks[sink] = reader
        if hold:
            self._held.setdefault(sink, [])
        if on_gap is not None:
            self._on_gap[sink] = on_gap
        if first:
            self._presence_changed(user_id, True)

    def is_held(self, delivery: Delivery) -> bool:
        return delivery.sink in self._held

    def release(self, sink: Sink, floor: int) -> None:
        """Hand on what was held back for ``sink``, except kept events up to ``floor`` (the
        replay had them); from now on such events are never handed to it."""
        if floor > 0:
            self._floors[sink] = floor
        held = self._held.pop(sink, [])
        self.send([d for d in held if not self._below_floor(d)])

    def unsubscribe(self, user_id: str, sink: Sink) -> None:
        sinks = self._sinks.get(user_id)
        if not sinks or sink not in sinks:
            return
        del sinks[sink]
        self._held.pop(sink, None)
        self._floors.pop(sink, None)
        self._on_gap.pop(sink, None)
        self._broken.discard(sink)
        if not sinks:
            del self._sinks[user_id]
            self._presence_changed(user_id, False)

    def is_online(self, user_id: str) -> bool:
        return user_id in self._sinks

    def is_subscribed(self, user_id: str, sink: Sink) -> bool:
        return sink in self._sinks.get(user_id, ())

    def connected_users(self) -> list[str]:
        return list(self._sinks)

    def publish(self, user_ids: Iterable[str], render: Renderer, *, subject: Subject | None = None) -> int:
        """Render for every connected recipient and deliver to each of their connections (through
        the ledger, if one is attached); returns the number of frames handed on."""
        return self.send(self.prepare(user_ids, render, subject=subject))

    async def emit(self, conn: Any, consultation_id: str, user_ids: Iterable[str], render: Renderer, *,
                   subject: Subject | None = None) -> list[Delivery]:
        """Inside the write unit of an act: render for every recipient, keep each rendering in the
        journal (stamped with its ``event_id``), and return the deliveries to this process's
        connections, to be sent once the unit has committed (none where every instance learns of
        the events from the database). Without a journal this is ``prepare``."""
        if self._journal is None:
            return self.prepare(user_ids, render, subject=subject)
        rendered = [(u, e) for u in sorted(set(user_ids)) if (e := render(u)) is not None]
        ids = await self._journal.write(conn, consultation_id, rendered, subject) if rendered else []
        if ids is None:  # not kept (the consultation's key is gone): this process's connections only
            return [Delivery(u, sink, reader, e, subject) for u, e in rendered
                    for sink, reader in list(self._sinks.get(u, {}).items())]
        if not self._journal.in_process:
            return []
        return [Delivery(u, sink, reader, {**e, "event_id": i}, subject)
                for (u, e), i in zip(rendered, ids, strict=True)
                for sink, reader in list(self._sinks.get(u, {}).items())]

    def dispatch(self, user_id: str, event: Event, subject: Subject | None) -> int:
        """A kept event another instance (or this one) wrote: to each connection of ``user_id`` here."""
        sinks = self._sinks.get(user_id)
        if not sinks:
            return 0
        return self.send([Delivery(user_id, sink, reader, event, subject) for sink, reader in list(sinks.items())])

    def prepare(self, user_ids: Iterable[str], render: Renderer, *, subject: Subject | None = None
                ) -> list[Delivery]:
        """Render for every recipient connected now, one delivery per connection, without sending:
        a service that records the deliveries in its own transaction sends them after the commit."""
        deliveries: list[Delivery] = []
        for user_id in set(user_ids):
            sinks = self._sinks.get(user_id)
            if not sinks:
                continue
            event = render(user_id)
            if event is None:
                continue
            deliveries += [Delivery(user_id, sink, reader, event, subject) for sink, reader in list(sinks.items())]
        return deliveries

    def send(self, deliveries: list[Delivery]) -> int:
        """Deliver what ``prepare`` rendered (through the ledger, if one is attached). A connection
        that is held gets it on release; one that had it in its replay does not get it again."""
        if self._held or self._floors:
            ready: list[Delivery] = []
            for d in deliveries:
                held = self._held.get(d.sink)
                if held is not None:
                    held.append(d)
                elif not self._below_floor(d):
                    ready.append(d)
            deliveries = ready
        if not deliveries:
            return 0
        if self._ledger is not None:
            self._ledger.submit(deliveries)
        else:
            self.hand_over(deliveries)
        return len(deliveries)

    def hand_over(self, deliveries: Iterable[Delivery]) -> None:
        """Give each event to its connection, if that connection is still subscribed and has lost none."""
        for d in deliveries:
            if d.sink not in self._broken and self.is_subscribed(d.user_id, d.sink):
                d.sink(d.event)

    def lose(self, deliveries: Iterable[Delivery]) -> None:
        """Deliveries that will never be handed over: a connection that loses a kept event gets
        nothing more, and its ``on_gap`` is called (once)."""
        for d in deliveries:
            if event_id(d.event) is None or d.sink in self._broken or not self.is_subscribed(d.user_id, d.sink):
                continue
            self._broken.add(d.sink)
            listener = self._on_gap.get(d.sink)
            if listener is not None:
                try:
                    listener()
                except Exception:  # a listener must not stop the others
                    log.exception("gap listener failed")

    def _below_floor(self, d: Delivery) -> bool:
        floor = self._floors.get(d.sink)
        i = event_id(d.event)
        return floor is not None and i is not None and i <= floor

    def _presence_changed(self, user_id: str, online: bool) -> None:
        for listener in self._presence_listeners:
            try:
                listener(user_id, online)
            except Exception:  # a listener must not break a connection
                log.exception("presence listener failed")
