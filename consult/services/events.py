"""Live events: fan-out from services to every connection of each recipient.

Each recipient gets its own rendering of an event (a message as *that* reader may see it), so
``publish`` takes a renderer called once per recipient. The bus knows nothing of WebSockets:
the edge subscribes a sink per connection, naming who reads through it. A user with several tabs
gets every event in each.

With a delivery ledger attached (consult/services/deliveries.py) every event passes through it
in publication order, so that an event carrying client data or content reaches a connection only
after its delivery record is committed.
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


class EventBus:
    def __init__(self) -> None:
        self._sinks: dict[str, dict[Sink, Reader | None]] = {}
        self._presence_listeners: list[PresenceListener] = []
        self._ledger: Ledger | None = None

    def record_with(self, ledger: Ledger | None) -> None:
        """Send every event through ``ledger`` from now on (None: deliver directly again)."""
        self._ledger = ledger

    def on_presence(self, listener: PresenceListener) -> None:
        self._presence_listeners.append(listener)

    def subscribe(self, user_id: str, sink: Sink, reader: Reader | None = None) -> None:
        sinks = self._sinks.setdefault(user_id, {})
        first = not sinks
        sinks[sink] = reader
        if first:
            self._presence_changed(user_id, True)

    def unsubscribe(self, user_id: str, sink: Sink) -> None:
        sinks = self._sinks.get(user_id)
        if not sinks or sink not in sinks:
            return
        del sinks[sink]
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
        """Deliver what ``prepare`` rendered (through the ledger, if one is attached)."""
        if not deliveries:
            return 0
        if self._ledger is not None:
            self._ledger.submit(deliveries)
        else:
            self.hand_over(deliveries)
        return len(deliveries)

    def hand_over(self, deliveries: Iterable[Delivery]) -> None:
        """Give each event to its connection, if that connection is still subscribed."""
        for d in deliveries:
            if self.is_subscribed(d.user_id, d.sink):
                d.sink(d.event)

    def _presence_changed(self, user_id: str, online: bool) -> None:
        for listener in self._presence_listeners:
            try:
                listener(user_id, online)
            except Exception:  # a listener must not break a connection
                log.exception("presence listener failed")
