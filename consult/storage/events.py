"""SQL for live events (``live_events``) and the connection that listens for new ones.

On PostgreSQL the ids of live events must become visible in id order: an instance that has
delivered event 11 never looks below it again, so an event 10 committed after it would be lost
to every reader. ``append`` therefore takes the row lock of the audit log's head (the lock every
audited write already takes) before the ids are drawn, and holds it to the commit: two writers'
events commit in the order of their ids, and a write that audits and emits events takes one lock,
not two in either order. It then notifies ``konsulta_events`` with the newest id; PostgreSQL
delivers the notification at the commit, to every listening connection, and not at all if the
transaction rolls back. On SQLite there is one writer, so ids are drawn in commit order anyway.

In the PostgreSQL writer's transactions the events are inserted at the transaction's end, with
those of the other units of its group commit (consult/storage/db.py `Deferred`): one insert and
one notification per commit. Their ids are then not known to the act that wrote them; on
PostgreSQL nothing needs them there, since every instance delivers kept events from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.storage.db import HOLDS_WRITE_ORDER, asyncpg_connection, deferred
from consult.storage.prepared import Prepared
from consult.storage.rows import sqlite_stamp
from consult.storage.tables import live_event_horizon, live_events

log = logging.getLogger("consult.storage.events")

CHANNEL = "konsulta_events"
#: Frames that are not kept (presence, directory entries), relayed to the other instances as they
#: are: a notification's payload holds at most ``FRAME_MAX`` bytes (PostgreSQL's limit is 8000).
FRAMES_CHANNEL = "konsulta_frames"
FRAME_MAX = 7900
HORIZON_ID = 1
_ORDER_LOCK = text("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")
_INSERT = insert(live_events).returning(live_events.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class NewEvent:
    user_id: str
    consultation_id: str
    ref: str
    created_at: datetime
    payload_sealed: bytes


def _postgres(conn: AsyncConnection) -> bool:
    return bool(conn.dialect.name == "postgresql")


async def append(conn: AsyncConnection, events: list[NewEvent]) -> list[int]:
    """Insert ``events`` in the caller's write transaction; their ids, in the order given — or
    none, where the transaction inserts them at its end."""
    if not events:
        return []
    if conn.dialect.name == "sqlite":
        return await conn.run_sync(_sqlite_append, events)
    later = deferred(conn)
    if later is not None:
        later.add("live_events", _insert_at_end if conn.dialect.driver == "asyncpg" else _insert, events)
        return []
    return await _insert(conn, events)


# The events of a whole group commit in one round trip on asyncpg: inserted in the order given
# (ordinality) and announced by one notification naming the newest id; the statement's text is
# the same for any number of events, so it is prepared once per connection.
_INSERT_AT_END = (
    "WITH new AS (INSERT INTO live_events (user_id, consultation_id, ref, created_at, payload_sealed) "
    "SELECT u, c, r, t, p FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::timestamptz[], "
    "$5::bytea[]) WITH ORDINALITY AS e(u, c, r, t, p, n) ORDER BY n RETURNING id) "
    f"SELECT pg_notify('{CHANNEL}', max(id)::text) FROM new"
)


async def _insert_at_end(conn: AsyncConnection, events: list[NewEvent]) -> None:
    """The writer's transaction took the write-order lock at BEGIN: the ids are drawn under it."""
    assert conn.info.get(HOLDS_WRITE_ORDER)
    driver = await asyncpg_connection(conn)
    await driver.execute(_INSERT_AT_END, [e.user_id for e in events], [e.consultation_id for e in events],
                         [e.ref for e in events], [e.created_at for e in events],
                         [e.payload_sealed for e in events])


async def _insert(conn: AsyncConnection, events: list[NewEvent]) -> list[int]:
    postgres = _postgres(conn)
    if postgres and not conn.info.get(HOLDS_WRITE_ORDER):  # the service's writer took it at BEGIN
        await conn.execute(_ORDER_LOCK)
    # One statement for all of them (SQLAlchemy's "insertmanyvalues": a multi-row INSERT ...
    # RETURNING, the ids given back in the order of the rows), not a round trip per recipient.
    result = await conn.execute(_INSERT, [
        {"user_id": e.user_id, "consultation_id": e.consultation_id, "ref": e.ref, "created_at": e.created_at,
         "payload_sealed": e.payload_sealed} for e in events])
    ids = [int(i) for i in result.scalars()]
    if postgres:
        await conn.execute(_NOTIFY, {"payload": str(ids[-1])})
    return ids


_SQLITE_INSERT = "INSERT INTO live_events (user_id, consultation_id, ref, created_at, payload_sealed) VALUES "
_SQLITE_ROWS = 200  # rows per statement: 1,000 parameters, well below SQLite's limit


def _sqlite_append(sync: Any, events: list[NewEvent]) -> list[int]:
    """Straight to the sqlite3 connection (in SQLAlchemy's transaction), as the audit log's append
    does: this runs in every message's write unit. Times are stored as SQLAlchemy stores them.
    An act's events (an offer to every expert of a pool) are one multi-row insert: the rows are
    inserted in the order given, so their ids ascend in that order (SQLite returns them in no
    promised order, hence the sort)."""
    driver = sync.connection.driver_connection
    stamps: dict[datetime, str] = {}
    ids: list[int] = []
    for start in range(0, len(events), _SQLITE_ROWS):
        part = events[start:start + _SQLITE_ROWS]
        params: list[Any] = []
        for e in part:
            at = stamps.get(e.created_at)
            if at is None:
                at = stamps[e.created_at] = sqlite_stamp(e.created_at)
            params += (e.user_id, e.consultation_id, e.ref, at, e.payload_sealed)
        sql = _SQLITE_INSERT + ", ".join(["(?, ?, ?, ?, ?)"] * len(part)) + " RETURNING id"
        ids += sorted(int(row[0]) for row in driver.execute(sql, params).fetchall())
    return ids


_AFTER = Prepared(select(live_events).where(live_events.c.id > bindparam("after"))
                  .order_by(live_events.c.id).limit(bindparam("limit")))
_AFTER_OF_USER = Prepared(select(live_events)
                          .where(live_events.c.id > bindparam("after"), live_events.c.user_id == bindparam("user"))
                          .order_by(live_events.c.id).limit(bindparam("limit")))


async def after(conn: AsyncConnection, after_id: int, *, user_id: str | None = None, limit: int = 500
                ) -> list[dict[str, Any]]:
    """Events with an id above ``after_id`` (of one user, or of everyone), oldest first. Every
    instance's feed reads this at each notification, so it is a prepared read."""
    if user_id is None:
        return await _AFTER.all(conn, {"after": after_id, "limit": limit})
    return await _AFTER_OF_USER.all(conn, {"after": after_id, "user": user_id, "limit": limit})


async def pruned_through(conn: AsyncConnection) -> int:
    value = await conn.scalar(select(live_event_horizon.c.pruned_through).where(live_event_horizon.c.id == HORIZON_ID))
    return int(value or 0)


async def newest(conn: AsyncConnection) -> int:
    """The newest event id handed out and still kept, or else the newest pruned (0 before any)."""
    kept = await conn.scalar(select(func.max(live_events.c.id)))
    return max(int(kept or 0), await pruned_through(conn))


async def prune(conn: AsyncConnection, before: datetime) -> int:
    """Remove the events created before ``before``; remember the newest id removed."""
    newest_removed = await conn.scalar(select(func.max(live_events.c.id)).where(live_events.c.created_at < before))
    if newest_removed is None:
        return 0
    removed = (await conn.execute(delete(live_events).where(live_events.c.id <= newest_removed))).rowcount
    horizon = await pruned_through(conn)
    if int(newest_removed) > horizon:
        done = await conn.execute(update(live_event_horizon).where(live_event_horizon.c.id == HORIZON_ID)
                                  .values(pruned_through=int(newest_removed)))
        if done.rowcount == 0:
            await conn.execute(insert(live_event_horizon).values(id=HORIZON_ID, pruned_through=int(newest_removed)))
    return int(removed or 0)


class Listener:
    """A connection of its own that LISTENs on ``konsulta_events`` (PostgreSQL), calling
    ``on_event`` for each notification and ``on_connected`` each time it is (re)connected — the
    caller then catches up on what it may have missed while it was away. A dropped connection is
    opened again after a pause; a silent one is found by a probe every ``probe_seconds``.

    With ``on_frame`` it also LISTENs on ``konsulta_frames`` and hands on each payload, and
    ``send_frame`` notifies the other instances' listeners on the same connection. Such frames are
    not kept: one sent while the connection is away is lost (the clients re-read their views when
    their own connection comes back)."""

    def __init__(self, url: str, on_event: Callable[[], None], on_connected: Callable[[], None], *,
                 on_frame: Callable[[str], None] | None = None,
                 retry_seconds: float = 1.0, probe_seconds: float = 10.0) -> None:
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_frame = on_frame
        self._conn: Any = None
        self._using = asyncio.Lock()  # one operation at a time on the connection (probe, send)
        self._retry = retry_seconds
        self._probe = probe_seconds
        self._task: asyncio.Task[None] | None = None
        self.connections = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consult-live-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, server_settings={"application_name": "konsulta-events"})
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_args: self._on_event())
                if self._on_frame is not None:
                    await conn.add_listener(FRAMES_CHANNEL, self._frame_arrived)
                self._conn = conn
                self.connections += 1
                self._on_connected()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=self._probe)
                    except TimeoutError:
                        async with self._using:
                            await conn.fetchval("SELECT 1", timeout=self._probe)
                log.warning("live event listener lost its connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect after a pause; the caller catches up then
                log.warning("live event listener failed (%s); reconnecting", type(exc).__name__)
            finally:
                self._conn = None
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(self._retry)

    def _frame_arrived(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_frame is not None:
            self._on_frame(payload)

    async def send_frame(self, payload: str) -> bool:
        """Notify ``konsulta_frames`` with ``payload`` (every listening instance gets it, this one
        too); false when it is too long or the connection is away."""
        conn = self._conn
        if conn is None or len(payload.encode("utf-8")) > FRAME_MAX:
            return False
        try:
            async with self._using:
                await conn.execute("SELECT pg_notify($1, $2)", FRAMES_CHANNEL, payload)
        except Exception as exc:  # the connection went: the frame is lost, as the class says
            log.warning("a frame for the other instances was not sent (%s)", type(exc).__name__)
            return False
        return True
