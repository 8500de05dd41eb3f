"""Live events across three `consult serve` processes on one PostgreSQL database behind Debian's
nginx (the shipped site, its upstream listing the three, round-robin).

An advisor and an expert each hold a socket on every instance, opened directly, and more opened
through nginx (which instance each landed on is read from the instances' own
``konsulta_websockets_open``). While both send messages through nginx, every socket sees every
acknowledged message exactly once: no ``event_id`` twice, ids increasing. Then one instance is
SIGKILLed mid-traffic; its clients reconnect to another instance with the last ``event_id`` they
saw and get what they missed, in order — across the old socket and the new one every message
appears once and none is missing. Sockets opened mid-traffic without resuming get nothing up to
their ``ready``'s ``last_event_id`` and everything after it. The audit log verifies afterwards.

Skips without PostgreSQL or nginx on a developer's machine (nginx: fails in CI, which installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.scale.cluster import Cluster, Instance, all_message_ids, cluster_behind_nginx, edge_session
from tests.test_deploy_nginx import Nginx

USERS = ("kela.aino", "vantaa.sanna")
METRICS_TOKEN = "cluster-live-events-metrics-token-0123456789"
SENDERS_PER_USER = 3


class Progress:
    """Set by every frame a client receives and every message acknowledged: what ``until`` waits on
    between two looks at what it waits for."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def tick(self) -> None:
        self._changed.set()

    async def until(self, check: Any, within: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            self._changed.clear()
            if check():
                return
            remaining = deadline - loop.time()
            assert remaining > 0, f"{what}: not within {within}s"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


class Client:
    """One user's live channel as a browser keeps it: a socket, and when that one is lost, a new one
    that resumes after the last ``event_id`` seen. ``frames`` holds every frame of every socket, in
    the order received, each with the number of the socket it came on."""

    def __init__(self, user: str, via: str, progress: Progress) -> None:
        self.user = user
        self.progress = progress
        self.via = via  # an instance's name, or "nginx"
        self.landed = via  # the instance the current socket is on
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.sockets = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, http: aiohttp.ClientSession, url: str, token: str, **auth: Any) -> None:
        ws = await http.ws_connect(url)
        await ws.send_json({"type": "auth", "token": token, **auth})
        ready = await ws.receive_json(timeout=10)
        assert ready["type"] == "ready", ready
        self.sockets += 1
        self.frames.append((self.sockets, ready))
        self.ws = ws
        self.reader = asyncio.create_task(self._read(ws, self.sockets))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, socket: int) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append((socket, json.loads(msg.data)))
                self.progress.tick()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader

    def last_event_id(self) -> int:
        """The newest ``event_id`` seen, or else the last ``ready``'s ``last_event_id``."""
        kept = [f["event_id"] for _, f in self.frames if "event_id" in f]
        return max(kept) if kept else max(f["last_event_id"] for _, f in self.frames if f["type"] == "ready")

    def event_ids(self) -> list[int]:
        return [f["event_id"] for _, f in self.frames if "event_id" in f]

    def messages(self, cid: str) -> list[str]:
        return [f["message"]["id"] for _, f in self.frames
                if f.get("type") == "message.created" and f["message"]["consultation_id"] == cid]

    def resumed(self) -> list[dict[str, Any]]:
        return [f for _, f in self.frames if f["type"] == "live.resumed"]

    def check_once_each(self, cid: str, expected: set[str]) -> None:
        """Every expected message once, nothing else; every kept event once, ids increasing."""
        ids = self.event_ids()
        assert ids == sorted(set(ids)), f"{self}: event ids repeated or out of order"
        seen = self.messages(cid)
        assert len(seen) == len(set(seen)), f"{self}: {len(seen) - len(set(seen))} messages twice"
        assert set(seen) == expected, (f"{self}: {len(expected - set(seen))} missing, "
                                       f"{len(set(seen) - expected)} unexpected")

    def __repr__(self) -> str:
        return f"{self.user} via {self.via} (on {self.landed}, {self.sockets} sockets)"


def _ws_url(base: str) -> str:
    return base.replace("https://", "wss://").replace("http://", "ws://") + "/api/v1/ws"


async def _open_sockets(http: aiohttp.ClientSession, instance: Instance) -> int:
    async with http.get(f"{instance.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as r:
        assert r.status == 200
        for line in (await r.text()).splitlines():
            if line.startswith("konsulta_websockets_open "):
                return int(float(line.split()[1]))
    raise AssertionError("no konsulta_websockets_open")


async def _through_nginx(cluster: Cluster, edge: Nginx, https: aiohttp.ClientSession,
                         direct: aiohttp.ClientSession, user: str, progress: Progress) -> Client:
    """A socket through nginx, and the instance it landed on (the one whose open sockets grew)."""
    before = {i.name: await _open_sockets(direct, i) for i in cluster.instances}
    client = Client(user, "nginx", progress)
    await client.connect(https, _ws_url(edge.base), cluster.instances[0].token(user))
    after = {i.name: await _open_sockets(direct, i) for i in cluster.instances}
    [landed] = [name for name in after if after[name] == before[name] + 1]
    assert sum(after.values()) == sum(before.values()) + 1
    client.landed = landed
    return client


async def _traffic(edge: Nginx, cluster: Cluster, cid: str, acked: list[str], failed: list[Any],
                   stop: asyncio.Event, progress: Progress) -> None:
    """Messages through nginx from both sides until ``stop``: ids answered 201 go to ``acked``."""
    any_instance = cluster.instances[0]
    tokens = {user: any_instance.token(user) for user in USERS}
    async with edge_session(edge) as https:
        async def sender(user: str, n: int) -> None:
            turn = 0
            while not stop.is_set():
                turn += 1
                try:
                    async with https.post(f"{edge.base}/api/v1/consultations/{cid}/messages",
                                          headers={"Authorization": f"Bearer {tokens[user]}"},
                                          json={"text": f"Message {n}-{turn} across instances."}) as r:
                        if r.status == 201:
                            acked.append((await r.json())["id"])
                            progress.tick()
                        else:
                            failed.append(r.status)  # 502 from nginx while an instance dies
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failed.append(type(exc).__name__)

        await asyncio.gather(*(sender(user, n) for n, user in enumerate(USERS * SENDERS_PER_USER)))


async def _resume_elsewhere(client: Client, edge: Nginx, https: aiohttp.ClientSession, direct: aiohttp.ClientSession,
                            target: Instance) -> None:
    """What a browser does when its socket is lost: reconnect — directly to ``target``, or through
    nginx — sending the last ``event_id`` it saw."""
    assert client.reader is not None
    await client.reader  # the socket ends with the instance
    last = client.last_event_id()
    deadline = time.monotonic() + 15
    while True:
        try:
            if client.via == "nginx":
                await client.connect(https, _ws_url(edge.base), target.token(client.user), last_event_id=last)
                client.landed = "another instance"  # nginx tries the next one when the victim refuses
            else:
                await client.connect(direct, _ws_url(target.base), target.token(client.user), last_event_id=last)
                client.landed = target.name
            return
        except (aiohttp.ClientError, AssertionError, TimeoutError):
            assert time.monotonic() < deadline, f"{client} could not reconnect"
            await asyncio.sleep(0.2)  # a browser's back-off between attempts


async def test_live_events_cross_instances_once_and_resume_after_a_sigkill(tmp_path: Path, pg_migrated: str) -> None:
    env = {"CONSULT_AUDIT_CHECKPOINT_SECONDS": "1", "CONSULT_METRICS_TOKEN": METRICS_TOKEN}
    with cluster_behind_nginx(tmp_path, pg_migrated, **env) as (cluster, edge):
        a, b, _ = cluster.instances
        progress = Progress()
        status, created = a.call("POST", "/api/v1/consultations", "kela.aino", {
            "topic": "application_intake", "urgency": "immediate", "question": "Is the attachment enough?",
            "purpose": "general", "target_org": "vantaa", "pool": "toimeentulotuki"})
        assert status == 201, created
        cid = created["id"]
        status, claimed = b.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna")
        assert status == 200, claimed

        async with aiohttp.ClientSession() as direct, edge_session(edge) as https:
            # Both users on every instance directly, and through nginx: its round-robin puts
            # consecutive sockets on different instances.
            clients: list[Client] = []
            for instance in cluster.instances:
                for user in USERS:
                    client = Client(user, instance.name, progress)
                    await client.connect(direct, _ws_url(instance.base), instance.token(user))
                    clients.append(client)
            for user in (*USERS, *USERS):
                clients.append(await _through_nginx(cluster, edge, https, direct, user, progress))
            proxied = [cl for cl in clients if cl.via == "nginx"]
            assert len({cl.landed for cl in proxied}) >= 2, [cl.landed for cl in proxied]
            for user in USERS:
                assert len({cl.landed for cl in proxied if cl.user == user}) == 2, "one user's sockets on one instance"

            # 1. Busy traffic: every socket sees every acknowledged message once.
            acked: list[str] = []
            failed: list[Any] = []
            stop = asyncio.Event()
            traffic = asyncio.create_task(_traffic(edge, cluster, cid, acked, failed, stop, progress))
            await progress.until(lambda: len(acked) >= 60 or traffic.done(), 30, "60 messages")
            stop.set()
            await traffic
            assert not failed, failed[:5]
            expected = set(acked)
            assert len(expected) == len(acked)
            await progress.until(lambda: all(set(cl.messages(cid)) >= expected for cl in clients), 20,
                                 "every message seen")
            for client in clients:
                client.check_once_each(cid, expected)

            # 2. SIGKILL the instance holding the most sockets through nginx, mid-traffic; its
            # clients resume elsewhere.
            victim = cluster[max(sorted({cl.landed for cl in proxied}),
                                 key=lambda name: sum(cl.landed == name for cl in proxied))]
            survivors = [i for i in cluster.instances if i is not victim]
            orphans = [cl for cl in clients if cl.landed == victim.name]
            assert {cl.user for cl in orphans} == set(USERS) and any(cl.via == "nginx" for cl in orphans)
            latecomers: list[Client] = []
            stop = asyncio.Event()
            traffic = asyncio.create_task(_traffic(edge, cluster, cid, acked, failed, stop, progress))
            try:
                await progress.until(lambda: len(acked) >= len(expected) + 15, 30, "traffic before the late sockets")
                # Late sockets, opened mid-traffic without resuming, start where their ready says.
                for n, user in enumerate(USERS):
                    late = Client(user, survivors[n].name, progress)
                    await late.connect(direct, _ws_url(survivors[n].base), survivors[n].token(user))
                    latecomers.append(late)
                await progress.until(lambda: len(acked) >= len(expected) + 30, 30, "traffic before the kill")
                victim.kill()  # SIGKILL: no shutdown hook runs, no socket is closed by the server
                before_kill = len(acked)
                await asyncio.gather(*(_resume_elsewhere(cl, edge, https, direct, survivors[n % 2])
                                       for n, cl in enumerate(orphans)))
                resumed_at = len(acked)
                await progress.until(lambda: len(acked) >= resumed_at + 30, 30, "traffic after the resume")
            finally:
                stop.set()
                await asyncio.wait_for(traffic, 60)
            assert len(acked) > before_kill, "no message acknowledged after the kill"

            readable = all_message_ids(survivors[0], cid)
            assert set(acked) <= readable, f"{len(set(acked) - readable)} acknowledged messages lost"
            # readable may hold a message the victim committed but could not answer: it is
            # delivered like any other, so each client must see exactly what is readable.
            await progress.until(lambda: all(set(cl.messages(cid)) >= readable for cl in clients), 20,
                                 "every message seen after the kill")
            for client in clients:
                client.check_once_each(cid, readable)
            for client in orphans:
                assert client.sockets == 2
                [resumed] = client.resumed()
                assert resumed["complete"] is True, resumed
                second = [f for s, f in client.frames if s == 2]
                replayed = second[1:second.index(resumed)]
                assert resumed["replayed"] == len(replayed) and all("event_id" in f for f in replayed)
                assert resumed["from"] == max(f["event_id"] for s, f in client.frames if s == 1 and "event_id" in f)
            assert any(cl.resumed()[0]["replayed"] for cl in orphans), "nobody missed anything while away"
            for late in latecomers:
                # what a socket of the same user that was there all along saw after the late one's ready
                along = next(cl for cl in clients if cl.user == late.user and cl.sockets == 1)
                at = {f["message"]["id"]: f["event_id"] for _, f in along.frames if f.get("type") == "message.created"}
                [(_, ready)] = [(s, f) for s, f in late.frames if f["type"] == "ready"]
                after_ready = {m for m, i in at.items() if i > ready["last_event_id"]}
                assert after_ready and len(after_ready) < len(readable), "the late socket opened mid-traffic"
                await progress.until(lambda late=late, want=after_ready: set(late.messages(cid)) >= want, 20, f"{late}")
                assert all(i > ready["last_event_id"] for i in late.event_ids()), f"{late}: events before its ready"
                late.check_once_each(cid, after_ready)
            for client in [*clients, *latecomers]:
                await client.close()

        cluster.stop()  # the survivors stop cleanly, each signing what it wrote
    sizes = [int(r[0]) for r in cluster.sql("SELECT tree_size FROM audit_checkpoints ORDER BY seq")]
    assert len(sizes) == len(set(sizes)), "a tree size was signed twice"
    result = cluster.cli("audit", "verify")
    assert result.returncode == 0 and "intact" in result.stdout, result.stdout + result.stderr
