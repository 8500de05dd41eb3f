"""Job leases and shared presence between instances on one database, on SQLite (the embedded
default: the same statements, one instance in practice) and on PostgreSQL (skipped, saying so,
when no server is reachable). Each "instance" here is its own ``Database`` (own connections) and
event bus; time is a pinned clock, so expiry is exact and no test sleeps for it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consult.model import FixedClock
from consult.services.events import EventBus
from consult.services.leases import Leases
from consult.services.presence import Presence
from consult.storage import leases as lease_store
from consult.storage.db import Database

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SECONDS = 3.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "konsulta.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("pg_migrated"))


@pytest.fixture
async def open_db(database_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Opens one more ``Database`` on the same database per call (one per instance)."""
    opened: list[Database] = []

    async def open_one() -> Database:
        db = Database(database_url)
        await db.start()
        opened.append(db)
        return db

    yield open_one
    for db in opened:
        await db.close()


def sink(_event: dict[str, Any]) -> None:
    pass


async def test_a_lease_is_held_by_one_instance_and_taken_over_after_its_holder_stops(open_db):
    """A periodic job runs on one instance at a time; when the holder stops renewing (it died),
    another takes the job once the lease expired, and the dead holder had stopped acting before."""
    clock = FixedClock(T0)
    a = Leases(await open_db(), "a", seconds=SECONDS, clock=clock)
    b = Leases(await open_db(), "b", seconds=SECONDS, clock=clock)
    runs: list[str] = []

    async def job_of(name: str) -> None:
        runs.append(name)

    job_a, job_b = a.guard("audit checkpoint", lambda: job_of("a")), b.guard("audit checkpoint", lambda: job_of("b"))
    await job_a()
    await job_b()
    assert runs == ["a"]
    # a renews while alive: b never gets it, however long that goes on
    for _ in range(4):
        clock.advance(seconds=SECONDS / 3)
        await a.refresh()
        await b.refresh()
        await job_a()
        await job_b()
    assert runs == ["a"] * 5
    # a stops renewing: it stops acting a third of the lease before the lease expires ...
    clock.advance(seconds=SECONDS * 2 / 3 + 0.01)
    await b.refresh()
    await job_a()
    await job_b()
    assert runs == ["a"] * 5 and not a.holds("audit checkpoint") and not b.holds("audit checkpoint")
    # ... and b takes it over once it expired, in a new term
    clock.advance(seconds=SECONDS / 3)
    await b.refresh()
    await job_b()
    assert runs == ["a"] * 5 + ["b"]
    db = await open_db()
    async with db.read() as conn:
        [row] = await lease_store.all_leases(conn)
    assert (row["name"], row["holder"], row["term"]) == ("audit checkpoint", "b", 2)
    # a comes back: the lease stays with b
    await a.refresh()
    assert not a.holds("audit checkpoint") and b.holds("audit checkpoint")


async def test_a_released_lease_is_taken_at_the_next_renewal(open_db):
    """A clean shutdown lets its leases go at once: no wait for expiry."""
    clock = FixedClock(T0)
    a = Leases(await open_db(), "a", seconds=SECONDS, clock=clock)
    b = Leases(await open_db(), "b", seconds=SECONDS, clock=clock)
    a.guard("retention run", lambda: _nothing())
    b.guard("retention run", lambda: _nothing())
    await a.refresh()
    await b.refresh()
    assert a.holds("retention run") and not b.holds("retention run")
    await a.release()
    await b.refresh()
    assert b.holds("retention run") and not a.holds("retention run")


async def _nothing() -> None:
    return None


async def test_presence_is_shared_and_an_instance_that_stops_its_heartbeat_stops_counting(open_db):
    """A user connected to instance b is online as instance a sees it; when b stops its heartbeat
    (it died) the user stops counting at expiry; a clean close removes b's users at once."""
    clock = FixedClock(T0)
    bus_a, bus_b = EventBus(), EventBus()
    a = Presence(await open_db(), bus_a, "a", seconds=SECONDS, clock=clock, cache_seconds=0)
    b = Presence(await open_db(), bus_b, "b", seconds=SECONDS, clock=clock, cache_seconds=0)
    await a.start()
    await b.start()
    assert not await a.is_online("vantaa.sanna")
    bus_b.subscribe("vantaa.sanna", sink)
    await b.heartbeat()  # waits for the write of the change
    assert await a.is_online("vantaa.sanna") and await a.online(["vantaa.sanna", "vantaa.mikko"]) == {"vantaa.sanna"}
    # the heartbeat keeps b's user alive past the first expiry
    clock.advance(seconds=SECONDS * 0.9)
    await b.heartbeat()
    clock.advance(seconds=SECONDS * 0.9)
    assert await a.is_online("vantaa.sanna")
    # b dies: no more heartbeats; the user counts until the row expires, and not after
    clock.advance(seconds=SECONDS * 0.05)
    assert await a.is_online("vantaa.sanna")
    clock.advance(seconds=SECONDS * 0.1)
    assert not await a.is_online("vantaa.sanna")
    # a's heartbeat sweeps the dead instance's rows once they are long expired
    clock.advance(seconds=SECONDS * 1.1)
    await a.heartbeat()
    db = await open_db()
    async with db.read() as conn:
        rows = (await conn.exec_driver_sql("SELECT instance_id FROM presence")).all()
    assert rows == []


async def test_presence_of_a_clean_shutdown_goes_at_once_and_a_second_connection_elsewhere_keeps_it(open_db):
    clock = FixedClock(T0)
    bus_a, bus_b, bus_c = EventBus(), EventBus(), EventBus()
    a = Presence(await open_db(), bus_a, "a", seconds=SECONDS, clock=clock, cache_seconds=0)
    b = Presence(await open_db(), bus_b, "b", seconds=SECONDS, clock=clock, cache_seconds=0)
    c = Presence(await open_db(), bus_c, "c", seconds=SECONDS, clock=clock, cache_seconds=0)
    for p in (a, b, c):
        await p.start()
    bus_b.subscribe("vantaa.sanna", sink)
    bus_c.subscribe("vantaa.sanna", sink)
    await b.heartbeat()
    await c.heartbeat()
    await b.close()
    assert await a.is_online("vantaa.sanna")  # still connected to c
    bus_c.unsubscribe("vantaa.sanna", sink)
    await c.heartbeat()
    assert not await a.is_online("vantaa.sanna")
    bus_c.subscribe("vantaa.sanna", sink)
    await c.heartbeat()
    assert await a.is_online("vantaa.sanna")
    await c.close()
    assert not await a.is_online("vantaa.sanna")
