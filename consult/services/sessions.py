"""Ended sessions: an administrator ends a user's sessions in their own organisation.

From that moment every token of the user in that organisation issued at or before it is refused
(REST and the live channel alike), and listeners close the user's live connections. The ends are
kept in the database and, for the check on every request, in memory; ``refresh`` picks up ends
recorded by another server process on the same database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.records import AuditRecord, record
from consult.errors import Forbidden, NotFound
from consult.model import Clock, Principal, actions, iso
from consult.model.context import RequestContext
from consult.storage import directory as directory_store
from consult.storage import sessions as store
from consult.storage.db import Database

log = logging.getLogger("consult.sessions")

EndListener = Callable[[str, str], None]


class Sessions:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._ends: dict[tuple[str, str], float] = {}
        self._listeners: list[EndListener] = []

    async def load(self) -> None:
        """Read every recorded end (at start, and again by ``refresh``)."""
        async with self.db.read() as conn:
            rows = await store.all_ends(conn)
        self._ends = {(org, user): _seconds(at) for org, user, at in rows}

    refresh = load

    def on_end(self, listener: EndListener) -> None:
        """``listener(org, user_id)`` runs after a user's sessions were ended."""
        self._listeners.append(listener)

    def refused(self, org: str, user_id: str, issued_at: float) -> bool:
        """Whether a token of ``user_id`` in ``org`` issued at ``issued_at`` (Unix seconds) was ended.

        Token times are whole seconds: a token issued in the same second as the end counts as
        before it, so a sign-in in that second has to be repeated."""
        ended = self._ends.get((org, user_id))
        return ended is not None and issued_at <= ended

    async def end(self, who: Principal, user_id: str, ctx: RequestContext) -> dict[str, object]:
        """End every session of ``user_id`` in the administrator's own organisation (audited)."""
        if not actions.allows(who, "sessions.end"):
            raise Forbidden("Your role does not allow this.", code="role")
        now = self.clock.now()

        async def unit(conn: AsyncConnection) -> None:
            # Only a user the directory knows in the admin's own organisation: an id typed wrong
            # (or an identity code typed into it) is refused before anything is stored or logged.
            known = await directory_store.get_user(conn, user_id)
            if known is None or known["org"] != who.org:
                raise NotFound("No user of your organisation has signed in with this id.", code="unknown_user")
            await store.end(conn, who.org, user_id, now, who.user_id)
            await record(conn, who, ctx, now, [AuditRecord(action="sessions.end", subject_user=user_id,
                                                           recipient_org=who.org)])

        await self.db.write(unit)
        self._ends[(who.org, user_id)] = max(self._ends.get((who.org, user_id), 0.0), _seconds(now))
        for listener in list(self._listeners):
            try:
                listener(who.org, user_id)
            except Exception:  # closing one connection must not stop the others
                log.exception("session end listener failed")
        return {"user_id": user_id, "org": who.org, "ended_at": iso(now)}


def _seconds(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
