"""Presence across instances: whether a user has a live connection to any instance of the service.

Each instance keeps a row (instance, user, expires_at) in ``presence`` while it holds at least
one live connection of the user: written when the user's first connection to it opens, deleted
when the last one closes, and renewed for all its users by a heartbeat every third of
``CONSULT_PRESENCE_SECONDS``. A row counts only until it expires, so the users of an instance
that died stop counting at most that long after its last heartbeat; a clean shutdown deletes its
rows at once.

A user is online when connected here (known at once, from the event bus) or when another
instance's unexpired row says so. Other instances' rows are read at most once a second
(``CACHE_SECONDS``) whatever the number of questions, so a change made on another instance is
seen here within about a second of its write.

Time here is the instance's wall clock (``SystemClock`` unless a test passes another), for the
same reason as in consult/services/leases.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from consult.model import Clock, SystemClock
from consult.services.events import EventBus
from consult.storage import presence as store
from consult.storage.db import Database

log = logging.getLogger("consult.presence")

CACHE_SECONDS = 1.0


def default_instance_id() -> str:
    """This process's name in presence and lease rows: host, process id and a random suffix (a
    restarted process is a new instance, whose predecessor's rows simply expire)."""
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


class Presence:
    """Who is online, as every instance on the database sees it."""

    def __init__(self, db: Database, bus: EventBus, instance_id: str, *, seconds: float,
                 clock: Clock | None = None, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self.bus = bus
        self.instance_id = instance_id
        self.seconds = seconds
        self.clock = clock or SystemClock()
        self.cache_seconds = cache_seconds
        self._dirty: set[str] = set()
        self._started = False
        self._flushing: asyncio.Task[None] | None = None
        self._elsewhere: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._read_lock = asyncio.Lock()
        bus.on_presence(self._changed)

    @property
    def heartbeat_seconds(self) -> float:
        return self.seconds / 3

    # -- reading ----------------------------------------------------------------------------------

    async def elsewhere(self) -> frozenset[str]:
        """Users connected to another instance (read at most every ``cache_seconds``)."""
        async with self._read_lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                async with self.db.read() as conn:
                    self._elsewhere = frozenset(await store.online_elsewhere(conn, self.instance_id,
                                                                             self.clock.now()))
                self._read_at = time.monotonic()
            return self._elsewhere

    async def online(self, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` with a live connection to any instance."""
        ids = set(user_ids)
        here = {u for u in ids if self.bus.is_online(u)}
        if here == ids:
            return here
        return here | (ids & await self.elsewhere())

    async def is_online(self, user_id: str) -> bool:
        return bool(await self.online([user_id]))

    # -- writing ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Write this instance's rows for the connections it already holds, and from now on every change."""
        self._started = True
        self._dirty.update(self.bus.connected_users())
        await self._flush()

    def _changed(self, user_id: str, _online: bool) -> None:
        self._dirty.add(user_id)
        if self._started and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().create_task(self._flush(), name="consult:presence")

    async def _flush(self) -> None:
        """Write what changed since the last write; what fails is retried by the next heartbeat."""
        while self._dirty:
            users, self._dirty = self._dirty, set()
            try:
                await self.db.write(self._writer(users))
            except Exception:
                self._dirty |= users
                log.exception("presence write failed; retried at the next heartbeat")
                return

    def _writer(self, users: set[str]) -> Callable[[Any], Awaitable[None]]:
        async def unit(conn: Any) -> None:
            # The bus is read inside the unit: units run one after another, so the last one
            # writes the state of its own moment.
            now = self.clock.now()
            here = {u for u in users if self.bus.is_online(u)}
            await store.mark(conn, self.instance_id, sorted(here), now, now + timedelta(seconds=self.seconds))
            await store.unmark(conn, self.instance_id, sorted(users - here))

        return unit

    async def heartbeat(self) -> None:
        """Renew this instance's rows (rewritten whole when they no longer match its connections)
        and drop rows that expired long ago, of any instance."""
        await self._flush()

        async def unit(conn: Any) -> None:
            now = self.clock.now()
            until = now + timedelta(seconds=self.seconds)
            here = self.bus.connected_users()
            if await store.extend(conn, self.instance_id, until) != len(here):
                await store.forget_instance(conn, self.instance_id, keep=here)
                await store.mark(conn, self.instance_id, sorted(here), now, until)
            await store.sweep(conn, now - timedelta(seconds=self.seconds))

        await self.db.write(unit)

    async def close(self) -> None:
        """A clean shutdown: this instance's users stop counting at once."""
        self._started = False
        if self._flushing is not None:
            await asyncio.wait([self._flushing])
        try:
            await self.db.write(lambda conn: store.forget_instance(conn, self.instance_id))
        except Exception:  # they expire by themselves
            log.exception("removing this instance's presence failed; it expires in %ss", self.seconds)
