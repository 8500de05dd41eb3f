"""Live events kept in the database: two server instances on one PostgreSQL database hand each
other's events to their own connections, and a client that reconnects (to either instance, on
either backend) gets exactly what it missed, then ``live.resumed``.

The PostgreSQL tests run on a copy of the migrated template (``pg_migrated``) and are skipped,
saying so, when no server is reachable."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from consult.http import app as app_module
from consult.http import keys
from consult.http.app import create_app
from consult.model import FixedClock
from consult.storage import audit_log
from tests.api.routingutil import MONDAY_9, routed_api
from tests.api.wsutil import next_event
from tests.conftest import Api
from tests.synthetic import hetu

HEALTH = "NO-CONSENT-HEALTH-VALUE"


async def _instances(aiohttp_client: Any, settings: Any, monkeypatch: Any, url: str | None = None
                     ) -> tuple[Api, Api, FixedClock]:
    """Two instances of the app on one database (sharing keys and the development issuer)."""
    monkeypatch.setattr(app_module, "ROUTING_TICK_SECONDS", 3600.0)
    clock = FixedClock(MONDAY_9)
    base = settings if url is None else replace(settings, database_url=url)
    a = Api(await aiohttp_client(create_app(base, clock=clock)))
    other = replace(base, checkpoint_file=settings.data_dir / "checkpoints-b.jsonl")
    b = Api(await aiohttp_client(create_app(other, clock=clock)))
    return a, b, clock


async def _connect(api: Api, user_id: str, **auth: Any) -> tuple[ClientWebSocketResponse, dict[str, Any]]:
    ws = await api.client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": api.token(user_id), **auth})
    ready = await ws.receive_json(timeout=5)
    assert ready["type"] == "ready", ready
    assert isinstance(ready["last_event_id"], int) and ready["last_event_id"] >= 0
    return ws, ready


async def _frames_until(ws: ClientWebSocketResponse, kind: str, timeout: float = 10.0,
                        until: Any = None) -> list[dict[str, Any]]:
    """Every frame up to and including the first of ``kind`` (matching ``until``, if given)."""
    frames: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no {kind} within {timeout}s; got {[f.get('type') for f in frames]}"
        msg = await ws.receive(timeout=remaining)
        assert msg.type == WSMsgType.TEXT, msg.type
        frame = msg.json()
        frames.append(frame)
        if frame.get("type") == kind and (until is None or until(frame)):
            return frames


async def _deliveries(api: Api, user_id: str, consultation_id: str) -> list[str | None]:
    """The delivery records (``live.message.created``) of a consultation's messages to one user:
    the message each names (None: a record covering several messages to one socket at once)."""
    async with api.client.app[keys.DB].read() as conn:
        rows: list[dict[str, Any]] = []
        async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
            rows += part
    return [r["message_id"] for r in rows if r["action"] == "live.message.created" and r["actor_id"] == user_id
            and r["consultation_id"] == consultation_id]


def _kept(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if "event_id" in f]


def _once_each_in_order(frames: list[dict[str, Any]]) -> None:
    ids = [f["event_id"] for f in _kept(frames)]
    assert ids == sorted(set(ids)), ids  # no duplicate, increasing


async def _flow(a: Api, b: Api) -> None:
    """Advisor's socket on A, expert's on B: offer, claim, messages both ways, each exactly once,
    each as its reader may see it."""
    aino, _ = await _connect(a, "kela.aino")
    sanna, _ = await _connect(b, "vantaa.sanna")
    try:
        ref = await a.register(hetu(301))
        cid = (await a.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                         expert_id="vantaa.sanna"))["id"]
        offered = await next_event(sanna, "consultation.offered")
        assert offered["consultation"]["id"] == cid and isinstance(offered["event_id"], int)

        await b.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
        sent = await a.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
            "text": "Status?", "data": [{"category": "application.status", "value": "pending"},
                                        {"category": "health", "value": HEALTH}]})
        answer = await b.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                              json={"text": "Still missing the rent attachment.", "data": []})
        await a.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino", json={"outcome": "advice_given"},
                     expect=200)

        at_aino = await _frames_until(aino, "consultation.closed")
        at_sanna = await _frames_until(sanna, "consultation.closed")
        for frames in (at_aino, at_sanna):
            _once_each_in_order(frames)
        kinds_aino = [f["type"] for f in _kept(at_aino)]
        assert kinds_aino == ["consultation.created", "consultation.claimed", "message.created", "message.created",
                              "consultation.closed"], kinds_aino
        kinds_sanna = [f["type"] for f in _kept(at_sanna)]
        assert kinds_sanna == ["consultation.claimed", "message.created", "message.created", "consultation.closed"]
        [own, theirs] = [f["message"] for f in at_aino if f["type"] == "message.created"]
        assert own["id"] == sent["id"] and theirs["id"] == answer["id"]
        assert {"category": "health", "value": HEALTH} in own["data"]  # the author sees what they wrote
        [received, _answer] = [f["message"] for f in at_sanna if f["type"] == "message.created"]
        assert received["id"] == sent["id"]
        withheld = [d for d in received["data"] if d["category"] == "health"]
        assert withheld and withheld[0]["withheld"] is True
        assert HEALTH not in json.dumps(at_sanna)  # the withheld value travels to the expert nowhere
        # One delivery record per socket delivery, written by the instance that delivered it.
        assert await _deliveries(a, "vantaa.sanna", cid) == [sent["id"], answer["id"]]
        assert await _deliveries(a, "kela.aino", cid) == [sent["id"], answer["id"]]
    finally:
        await aino.close()
        await sanna.close()


async def _resume(first: Api, second: Api) -> None:
    """Disconnect from ``first``, miss events, reconnect to ``second`` with ``last_event_id``."""
    aino, _ = await _connect(first, "kela.aino")
    ref = await first.register(hetu(302))
    cid = (await first.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                         expert_id="vantaa.sanna"))["id"]
    created = await next_event(aino, "consultation.created")
    last = created["event_id"]
    await aino.close()

    await second.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    missed = [(await second.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                                 json={"text": f"Answer {n}", "data": []}))["id"] for n in range(3)]

    aino, ready = await _connect(second, "kela.aino", last_event_id=last)
    try:
        frames = await _frames_until(aino, "live.resumed")
        kept = _kept(frames)
        assert [f["type"] for f in kept] == ["consultation.claimed", *["message.created"] * 3]
        assert [f["message"]["id"] for f in kept[1:]] == missed
        assert all(last < f["event_id"] <= ready["last_event_id"] for f in kept)
        _once_each_in_order(frames)
        assert frames[-1] == {"type": "live.resumed", "from": last, "replayed": 4, "complete": True}
        # The replay's deliveries are recorded like live ones: one record for the socket and the
        # consultation's messages (README, the record of live deliveries), before they were sent.
        assert await _deliveries(second, "kela.aino", cid) == [None]
        # Live again: the next event arrives once, after the replayed ones.
        later = await first.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                                 json={"text": "One more", "data": []})
        after = await _frames_until(aino, "message.created", until=lambda f: f["message"]["id"] == later["id"])
        _once_each_in_order(frames + after)
        assert await _deliveries(second, "kela.aino", cid) == [None, later["id"]]
        assert not [f for f in after if f.get("event_id", 0) <= kept[-1]["event_id"] and "event_id" in f]
    finally:
        await aino.close()


async def _pruned(api: Api, clock: FixedClock) -> None:
    aino, ready = await _connect(api, "kela.aino")
    await aino.close()
    ref = await api.register(hetu(303))
    await api.open_consultation(purpose="tt.application_intake", client_ref=ref, expert_id="vantaa.sanna")
    clock.advance(hours=25)
    assert await api.client.app[keys.LIVE].prune() >= 1
    aino, after = await _connect(api, "kela.aino", last_event_id=ready["last_event_id"])
    try:
        frames = await _frames_until(aino, "live.resumed")
        assert _kept(frames) == []
        assert frames[-1] == {"type": "live.resumed", "from": ready["last_event_id"], "replayed": 0,
                              "complete": False}
        assert after["last_event_id"] > ready["last_event_id"]  # ids go on increasing after pruning
    finally:
        await aino.close()
    # From the newest id on, nothing was pruned: complete.
    aino, _ = await _connect(api, "kela.aino", last_event_id=after["last_event_id"])
    try:
        frames = await _frames_until(aino, "live.resumed")
        assert frames[-1]["complete"] is True and frames[-1]["replayed"] == 0
    finally:
        await aino.close()


# -- PostgreSQL: two instances --------------------------------------------------------------------

async def test_two_instances_hand_each_other_events(aiohttp_client, settings, monkeypatch, pg_migrated):
    a, b, _clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    await _flow(a, b)


async def test_resume_on_the_other_instance(aiohttp_client, settings, monkeypatch, pg_migrated):
    a, b, _clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    await _resume(a, b)


async def test_resume_after_pruning_is_incomplete_on_postgresql(aiohttp_client, settings, monkeypatch, pg_migrated):
    a, _b, clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    await _pruned(a, clock)


async def test_a_lost_listener_connection_reconnects_and_catches_up(aiohttp_client, settings, monkeypatch,
                                                                     pg_migrated):
    """The LISTEN connections are cut while an event is written: each instance reconnects and
    still hands it on (it reads everything after the last id it delivered)."""
    a, b, _clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    sanna, _ = await _connect(b, "vantaa.sanna")
    try:
        admin = create_async_engine(pg_migrated, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                cut = (await conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'konsulta-events' AND datname = current_database()"))).scalar_one()
        finally:
            await admin.dispose()
        assert cut == 2
        ref = await a.register(hetu(304))
        cid = (await a.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                         expert_id="vantaa.sanna"))["id"]
        frames = await _frames_until(sanna, "consultation.offered", until=lambda f: f["consultation"]["id"] == cid)
        _once_each_in_order(frames)
    finally:
        await sanna.close()


async def test_a_new_socket_starts_where_its_ready_says(pg_migrated, aiohttp_client, settings, monkeypatch):
    """A socket that does not resume gets no kept event up to its ``ready``'s ``last_event_id``
    (what its views read after ``ready`` already shows) and every one after it, even on an
    instance whose feed is behind: here b's LISTEN connection is away while an event is written,
    and b catches up only after the new socket's ``ready``."""
    a, b, _clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    feed = b.client.app[keys.LIVE]
    earlier, _ = await _connect(b, "vantaa.sanna")
    try:
        assert feed._listener is not None
        await feed._listener.close()  # b hears of no new event until it catches up below
        ref = await a.register(hetu(305))
        cid = (await a.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                         expert_id="vantaa.sanna"))["id"]
        later, ready = await _connect(b, "vantaa.sanna")
        try:
            await feed.catch_up()
            offered = await next_event(earlier, "consultation.offered")
            assert offered["consultation"]["id"] == cid and offered["event_id"] <= ready["last_event_id"]
            await b.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
            await feed.catch_up()
            frames = await _frames_until(later, "consultation.claimed")
            assert [f["type"] for f in _kept(frames)] == ["consultation.claimed"], frames
            assert frames[-1]["event_id"] > ready["last_event_id"]
        finally:
            await later.close()
    finally:
        await earlier.close()


async def test_a_socket_that_loses_an_event_resumes_without_a_gap(pg_migrated, aiohttp_client, settings, monkeypatch):
    """A kept event whose delivery record cannot be written is not sent, and its socket gets
    nothing after it — a later event would carry the client past the gap — but is closed with
    1013; the client resumes from the last event it got and is replayed the lost one and the rest."""
    a, _b, _clock = await _instances(aiohttp_client, settings, monkeypatch, pg_migrated)
    ref = await a.register(hetu(306))
    cid = (await a.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                     expert_id="vantaa.sanna"))["id"]
    await a.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    sanna, ready = await _connect(a, "vantaa.sanna")
    admin = create_async_engine(pg_migrated, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:  # the database refuses sanna's next delivery record, once
            await conn.execute(text("CREATE SEQUENCE refused"))  # a sequence: not rolled back with the write
            await conn.execute(text("CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS "
                                    "$$ BEGIN IF nextval('refused') = 1 THEN RAISE EXCEPTION 'refused'; END IF; "
                                    "RETURN NEW; END $$"))
            await conn.execute(text(
                "CREATE TRIGGER refuse_delivery_record BEFORE INSERT ON audit_events FOR EACH ROW "
                "WHEN (NEW.action = 'live.message.created' AND NEW.actor_id = 'vantaa.sanna') "
                "EXECUTE FUNCTION refuse_record()"))
    finally:
        await admin.dispose()
    lost = await a.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                        json={"text": "Lost on the way?", "data": []})
    later = await a.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                         json={"text": "After the gap.", "data": []})
    try:
        received = []
        while (frame := await sanna.receive(timeout=10)).type == WSMsgType.TEXT:
            received.append(frame.json())
            assert received[-1]["type"] != "message.created", received  # past the lost one: a gap
        assert frame.type == WSMsgType.CLOSE and frame.data == 1013, frame
    finally:
        await sanna.close()
    sanna, _ = await _connect(a, "vantaa.sanna", last_event_id=ready["last_event_id"])
    try:
        frames = await _frames_until(sanna, "live.resumed")
        assert [f["message"]["id"] for f in _kept(frames)] == [lost["id"], later["id"]]
        assert frames[-1]["complete"] is True
        _once_each_in_order(frames)
    finally:
        await sanna.close()


# -- SQLite: one process --------------------------------------------------------------------------

async def test_resume_on_sqlite(aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(app_module, "ROUTING_TICK_SECONDS", 3600.0)
    api = Api(await aiohttp_client(create_app(settings, clock=FixedClock(MONDAY_9))))
    await _resume(api, api)
    # Kept sealed: the text of a message is nowhere in the stored events.
    async with api.client.app[keys.DB].read() as conn:
        sealed = [bytes(r[0]) for r in await conn.execute(text("SELECT payload_sealed FROM live_events"))]
    assert sealed and not [b for b in sealed if b"Answer 1" in b or b"Answer" in b]


async def test_resume_after_pruning_is_incomplete_on_sqlite(aiohttp_client, settings, monkeypatch):
    monkeypatch.setattr(app_module, "ROUTING_TICK_SECONDS", 3600.0)
    clock = FixedClock(MONDAY_9)
    api = Api(await aiohttp_client(create_app(settings, clock=clock)))
    await _pruned(api, clock)


async def test_hostile_last_event_ids_are_bad_frames(api):
    """Anything but a non-negative integer is a bad frame: the connection stays up, live, with no
    replay; an id beyond the newest replays nothing."""
    for value in (-1, "5", 1.5, True, None, [1], {"id": 1}):
        ws, _ready = await _connect(api, "kela.aino", last_event_id=value)
        try:
            error = await ws.receive_json(timeout=5)
            assert error["type"] == "error" and error["error"]["code"] == "bad_frame", (value, error)
            await ws.send_json({"type": "ping"})
            assert (await next_event(ws, "pong"))["type"] == "pong"
        finally:
            await ws.close()
    for value in (10**30, 2**63, 2**62 + 1):
        ws, _ready = await _connect(api, "kela.aino", last_event_id=value)
        try:
            resumed = await next_event(ws, "live.resumed")
            assert resumed == {"type": "live.resumed", "from": value, "replayed": 0, "complete": True}
            await ws.send_json({"type": "ping"})
            await next_event(ws, "pong")
        finally:
            await ws.close()


async def test_a_routing_step_keeps_its_offers_and_notice(aiohttp_client, settings, monkeypatch):
    """A re-offer happens in the background, with nobody connected: the expert's offer and the
    advisor's notice are kept in the step's transaction and replayed on reconnect."""
    rapi = await routed_api(aiohttp_client, settings, monkeypatch)
    aino, ready_aino = await _connect(rapi, "kela.aino")
    sanna, ready_sanna = await _connect(rapi, "vantaa.sanna")
    await aino.close()
    await sanna.close()
    cid = (await rapi.open_consultation(pool="toimeentulotuki"))["id"]
    assert (await rapi.advance(minutes=5))["reoffered"] == 1
    aino, _ = await _connect(rapi, "kela.aino", last_event_id=ready_aino["last_event_id"])
    sanna, _ = await _connect(rapi, "vantaa.sanna", last_event_id=ready_sanna["last_event_id"])
    try:
        at_aino = _kept(await _frames_until(aino, "live.resumed"))
        assert [f["type"] for f in at_aino] == ["consultation.created", "consultation.reoffered"]
        assert at_aino[1]["consultation_id"] == cid and at_aino[1]["offers"] == 2
        at_sanna = _kept(await _frames_until(sanna, "live.resumed"))
        assert [(f["type"], f.get("reason")) for f in at_sanna] == [("consultation.offered", None),
                                                                     ("consultation.offered", "reoffered")]
        assert all(f["consultation"]["id"] == cid for f in at_sanna)
    finally:
        await aino.close()
        await sanna.close()
