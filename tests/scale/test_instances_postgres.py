"""Several instances of the real app on one PostgreSQL database act as one service: who is online
is the same on every instance, and the jobs of the whole service (audit checkpoints here) run on
one instance at a time. Skipped, saying so, when no PostgreSQL server is reachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.config import Settings
from consult.http.app import create_app
from tests.api.wsutil import connect, next_event
from tests.conftest import Api

Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start(pg_migrated: str, aiohttp_client: Any, settings: Settings) -> AsyncIterator[Start]:
    """Starts one more instance on the shared database: same key files, checkpoint file and
    development issuer (one data directory), its own name, short lease and presence expiry. The
    database is asked for first, so the instances stop before it is dropped."""

    async def start_one(name: str, **values: Any) -> Api:
        own = replace(settings, database_url=pg_migrated, instance_id=name, lease_seconds=3,
                      presence_seconds=3, **values)
        return Api(await aiohttp_client(create_app(own)))

    yield start_one


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def presence_on(api: Api, user_id: str) -> str:
    listing = await api.call("GET", "/api/v1/experts?org=vantaa", "kela.aino", expect=200)
    return str({e["id"]: e["presence"] for e in listing["items"]}[user_id])


async def test_an_expert_online_on_one_instance_is_offered_a_consultation_made_on_another(start):
    """Routing on instance a counts an expert whose only connection is to instance b as online,
    and so do a's experts list and duty panel; when the connection closes, a sees it go."""
    a = await start("a")
    b = await start("b")
    before = await a.open_consultation(pool="toimeentulotuki")
    assert before["routing"]["offered_to"] == 2 and before["routing"]["offered_online"] == 0

    ws = await connect(b, "vantaa.sanna")
    await eventually(lambda: _is(presence_on(a, "vantaa.sanna"), "online"))
    created = await a.open_consultation(pool="toimeentulotuki")
    assert created["routing"]["offered_to"] == 2 and created["routing"]["offered_online"] == 1
    pools = {p["name"]: p for p in (await a.call("GET", "/api/v1/pools?org=vantaa", "kela.aino"))["items"]}
    assert pools["toimeentulotuki"]["on_duty"] == 2 and pools["toimeentulotuki"]["on_duty_online"] == 1
    queue = await b.call("GET", "/api/v1/queue", "vantaa.sanna", expect=200)
    assert created["id"] in {q["id"] for q in queue["items"]}

    await ws.close()
    await eventually(lambda: _is(presence_on(a, "vantaa.sanna"), "offline"))
    again = await a.open_consultation(pool="toimeentulotuki")
    assert again["routing"]["offered_online"] == 0


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def checkpoints(url: str) -> list[tuple[int, datetime]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT tree_size, signed_at FROM audit_checkpoints ORDER BY seq"))
            return [(int(r.tree_size), r.signed_at) for r in rows]
    finally:
        await engine.dispose()


async def test_three_instances_sign_each_audit_checkpoint_once(start, pg_migrated):
    """With three instances writing to the audit log, a checkpoint is signed once per interval
    (by the instance holding the lease), not once per instance; when the holder stops, another
    instance goes on signing; no tree size is ever signed twice."""
    instances = [await start(name, audit_checkpoint_seconds=1) for name in ("a", "b", "c")]

    async def traffic(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        turn = 0
        while time.monotonic() < deadline:
            await instances[turn % len(instances)].open_consultation(pool="toimeentulotuki")
            turn += 1
            await asyncio.sleep(0.05)

    window = 6.0
    began = datetime.now().astimezone()
    await traffic(window)
    ended = datetime.now().astimezone()
    signed = [at for _size, at in await checkpoints(pg_migrated) if began <= at <= ended]
    # one an interval, give or take the interval the window began or ended in
    assert 2 <= len(signed) <= window + 1, signed

    # the holder stops (cleanly: its leases go at once); another instance signs from then on
    holder = await _holder(pg_migrated, "audit checkpoint")
    stopped = {"a": 0, "b": 1, "c": 2}[holder]
    await instances[stopped].client.close()
    rest = [api for i, api in enumerate(instances) if i != stopped]
    instances[:] = rest
    began = datetime.now().astimezone()
    await traffic(window)
    ended = datetime.now().astimezone()
    signed = [at for _size, at in await checkpoints(pg_migrated) if began <= at <= ended]
    assert 2 <= len(signed) <= window + 1, signed
    assert await _holder(pg_migrated, "audit checkpoint") != holder

    sizes = [size for size, _at in await checkpoints(pg_migrated)]
    assert len(sizes) == len(set(sizes)), "a tree size was signed twice"


async def _holder(url: str, name: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            query = text("SELECT holder FROM job_leases WHERE name = :n")
            return str((await conn.execute(query, {"n": name})).scalar())
    finally:
        await engine.dispose()


async def _presence_of(ws: Any, user_id: str, presence: str) -> dict[str, Any]:
    """The next ``presence`` frame about ``user_id`` saying ``presence`` (others of the demo's
    experts may come and go meanwhile)."""
    while True:
        event = await next_event(ws, "presence", timeout=10)
        if event["user_id"] == user_id and event["presence"] == presence:
            return event


async def test_presence_and_directory_frames_reach_the_connections_of_every_instance(start):
    """The frames that announce a change of the directory (an expert coming online or going, an
    expert's entry changed) are not kept, but they reach every instance's connections: an advisor
    on instance a sees an expert whose only connection is to b come and go, and an entry an admin
    changed through b."""
    a = await start("a")
    b = await start("b")
    advisor = await connect(a, "kela.aino")

    expert = await connect(b, "vantaa.sanna")
    await _presence_of(advisor, "vantaa.sanna", "online")
    await expert.close()
    await _presence_of(advisor, "vantaa.sanna", "offline")

    await b.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.admin", expect=200,
                 json={"languages": ["fi", "sv", "en"]})
    updated = await next_event(advisor, "expert.updated", timeout=10)
    assert updated["expert"]["id"] == "vantaa.sanna" and updated["expert"]["languages"] == ["fi", "sv", "en"]
    await advisor.close()
