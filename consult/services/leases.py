"""Job leases: each periodic job that must run once for the whole service (routing steps,
retention, audit checkpoints) runs only on the instance holding its lease.

A lease is a row (``job_leases``: name, holder, term, expires_at), not a PostgreSQL advisory
lock. Both would stop a second instance from running a job; the row was chosen because

- its takeover time is bounded by the lease alone: a session advisory lock is released only
  when PostgreSQL notices the holder's connection is gone, which after a host or network failure
  (rather than a process exit) takes as long as TCP keepalive says — hours by default — while a
  holder that cannot renew its row loses it ``CONSULT_LEASE_SECONDS`` after its last renewal;
- it needs no session of its own: an advisory lock must live on one dedicated connection that
  outlasts every transaction (a connection pooler in transaction mode breaks that), while a row
  is claimed and renewed by ordinary short writes through the group-committing writer;
- the holder knows how long it may act without asking the database again, and stops a third of
  the lease before it runs out, so a holder cut off from the database stops before anyone else
  may start (given clocks that agree to within that third; run NTP);
- the same statements run on SQLite, where the one embedded instance simply always holds every
  lease, and an operator can read who runs what (``SELECT * FROM job_leases``).

Every instance renews what it holds and tries to take what is free every third of the lease, so
after a holder dies another instance takes its jobs within ``CONSULT_LEASE_SECONDS`` plus a
third of it. A clean shutdown lets its leases expire at once. A job run already under way when
its lease is lost finishes; the jobs leased here are safe to repeat (each step, shred and
checkpoint is conditional on the state it found).

Lease time is the wall clock of the instance (``SystemClock`` unless a test passes another), not
the service's injected business clock: a test clock that jumps a day ahead to test a service
level must not expire the lease of the process under test.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from consult.model import Clock, SystemClock
from consult.storage import leases as store
from consult.storage.db import Database

log = logging.getLogger("consult.leases")

Job = Callable[[], Awaitable[object]]


class Leases:
    """This instance's leases: the jobs it wants to run, and until when it may run each."""

    def __init__(self, db: Database, holder: str, *, seconds: float, clock: Clock | None = None) -> None:
        self.db = db
        self.holder = holder
        self.seconds = seconds
        self.clock = clock or SystemClock()
        self._wanted: list[str] = []
        self._valid_until: dict[str, datetime] = {}
        self._terms: dict[str, int] = {}
        self._unclaimed = False

    @property
    def renew_seconds(self) -> float:
        """How often held leases are renewed and free ones claimed."""
        return self.seconds / 3

    def guard(self, name: str, job: Job) -> Job:
        """``job``, run only while this instance holds lease ``name`` (which it then wants)."""
        if name not in self._wanted:
            self._wanted.append(name)
            self._unclaimed = True

        async def leased() -> object:
            if self._unclaimed:  # a job new since the last renewal: claim at once, not a renewal later
                await self.refresh()
            if not self.holds(name):
                return None
            return await job()

        return leased

    def holds(self, name: str) -> bool:
        until = self._valid_until.get(name)
        return until is not None and self.clock.now() < until

    def held(self) -> list[str]:
        return [name for name in self._wanted if self.holds(name)]

    async def refresh(self) -> None:
        """Renew every lease held and claim every wanted one that is free, in one write."""
        if not self._wanted:
            return
        self._unclaimed = False
        now = self.clock.now()
        until = now + timedelta(seconds=self.seconds)

        async def unit(conn: Any) -> dict[str, int | None]:
            return {name: await store.claim(conn, name, self.holder, now, until) for name in self._wanted}

        try:
            terms = await self.db.write(unit)
        except Exception:
            # Keep acting only until the margin of what was last renewed runs out.
            log.exception("lease renewal failed; held leases lapse unless renewed in time")
            return
        act_until = until - timedelta(seconds=self.renew_seconds)
        for name, term in terms.items():
            if term is None:
                if self._valid_until.pop(name, None) is not None:
                    log.warning("lease %s lost to another instance", name)
                continue
            if self._terms.get(name) != term:
                log.info("lease %s taken by instance %s (term %d)", name, self.holder, term)
            self._terms[name] = term
            self._valid_until[name] = act_until

    async def release(self) -> None:
        """Let every lease held expire now, so another instance takes the jobs at its next renewal."""
        held = [name for name in self._wanted if name in self._valid_until]
        self._valid_until.clear()
        if not held:
            return
        now = self.clock.now()

        async def unit(conn: Any) -> None:
            for name in held:
                await store.release(conn, name, self.holder, now)

        try:
            await self.db.write(unit)
        except Exception:  # they expire by themselves
            log.exception("releasing leases failed; they expire in %ss", self.seconds)
