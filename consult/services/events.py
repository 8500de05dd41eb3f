"""Live events: fan-out from services to every connection of each recipient.

Each recipient gets its own rendering of an event (a message as *that* reader may see it), so
``publish`` takes a renderer called once per recipient. The bus knows nothing of WebSockets:
the edge subscribes a sink per connection. A user with several tabs gets every event in each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("consult.events")

Event = dict[str, Any]
Sink = Callable[[Event], None]
Renderer = Callable[[str], Event | None]
PresenceListener = Callable[[str, bool], None]


class EventBus:
    def __init__(self) -> None:
        self._sinks: dict[str, set[Sink]] = {}
        self._presence_listeners: list[PresenceListener] = []

    def on_presence(self, listener: PresenceListener) -> None:
        self._presence_listeners.append(listener)

    def subscribe(self, user_id: str, sink: Sink) -> None:
        sinks = self._sinks.setdefault(user_id, set())
        first = not sinks
        sinks.add(sink)
        if first:
            self._presence_changed(user_id, True)

    def unsubscribe(self, user_id: str, sink: Sink) -> None:
        sinks = self._sinks.get(user_id)
        if not sinks or sink not in sinks:
            return
        sinks.discard(sink)
        if not sinks:
            del self._sinks[user_id]
            self._presence_changed(user_id, False)

    def is_online(self, user_id: str) -> bool:
        return user_id in self._sinks

    def connected_users(self) -> list[str]:
        return list(self._sinks)

    def connection_count(self) -> int:
        return sum(len(s) for s in self._sinks.values())

    def publish(self, user_ids: Iterable[str], render: Renderer) -> int:
        """Render and deliver to every connection of each connected recipient; returns frames sent."""
        sent = 0
        for user_id in set(user_ids):
            sinks = self._sinks.get(user_id)
            if not sinks:
                continue
            event = render(user_id)
            if event is None:
                continue
            for sink in list(sinks):
                sink(event)
                sent += 1
        return sent

    def _presence_changed(self, user_id: str, online: bool) -> None:
        for listener in self._presence_listeners:
            try:
                listener(user_id, online)
            except Exception:  # a listener must not break a connection
                log.exception("presence listener failed")
