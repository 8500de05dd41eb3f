"""Three `consult serve` processes on one PostgreSQL database behind Debian's nginx (the shipped
site, its upstream listing the three): all serve; one is SIGKILLed mid-traffic — the one running
the audit checkpoint — and no acknowledged message is lost, its expert stops counting as online
once its presence expires, another instance takes its jobs, no checkpoint is signed twice, and
the audit log verifies afterwards.

Skips without PostgreSQL or nginx on a developer's machine (nginx: fails in CI, which installs it).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.scale.cluster import Cluster, Instance, all_message_ids, cluster_behind_nginx, edge_session, wait_for
from tests.test_deploy_nginx import Nginx

LEASE_SECONDS = 3
PRESENCE_SECONDS = 3


def _auth(instance: Instance, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {instance.token(user)}"}


def _presence(instance: Instance, user: str) -> str:
    status, body = instance.call("GET", "/api/v1/experts?org=vantaa", "kela.aino")
    assert status == 200, body
    return str({e["id"]: e["presence"] for e in body["items"]}[user])


async def _messages(edge: Nginx, cluster: Cluster, cid: str, acked: list[str], failed: list[Any],
                    stop: asyncio.Event) -> None:
    """Messages through nginx, from both sides, until ``stop``: ids answered 201 go to ``acked``."""
    any_instance = cluster.instances[0]
    async with edge_session(edge) as https:
        async def sender(user: str, n: int) -> None:
            turn = 0
            while not stop.is_set():
                turn += 1
                try:
                    async with https.post(f"{edge.base}/api/v1/consultations/{cid}/messages",
                                          headers=_auth(any_instance, user),
                                          json={"text": f"Message {n}-{turn} over the cluster."}) as r:
                        if r.status == 201:
                            acked.append((await r.json())["id"])
                        else:
                            failed.append(r.status)  # 502 from nginx while an instance dies
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failed.append(type(exc).__name__)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(sender(user, n) for n, user in enumerate(["kela.aino", "vantaa.sanna"] * 3)))


async def test_three_instances_behind_nginx_survive_a_sigkill(tmp_path: Path, pg_migrated: str) -> None:
    env = {"CONSULT_LEASE_SECONDS": str(LEASE_SECONDS), "CONSULT_PRESENCE_SECONDS": str(PRESENCE_SECONDS),
           "CONSULT_AUDIT_CHECKPOINT_SECONDS": "1"}
    with cluster_behind_nginx(tmp_path, pg_migrated, **env) as (cluster, edge):
        # all three serve, directly and through nginx
        for instance in cluster.instances:
            status, me = instance.call("GET", "/api/v1/me", "kela.aino")
            assert status == 200 and me["id"] == "kela.aino", me
        async with edge_session(edge) as https:
            for _ in cluster.instances:
                async with https.get(f"{edge.base}/readyz") as r:
                    assert r.status == 200 and (await r.json())["status"] == "ready"
        wait_for(lambda: cluster.lease_holder("audit checkpoint") is not None, 10, "a checkpoint lease holder")
        victim = cluster[str(cluster.lease_holder("audit checkpoint"))]
        survivor = next(i for i in cluster.instances if i is not victim)

        # an expert connected only to the victim is online as another instance sees it
        async with aiohttp.ClientSession() as direct:
            ws = await direct.ws_connect(f"{victim.base}/api/v1/ws")
            await ws.send_json({"type": "auth", "token": victim.token("vantaa.mikko")})
            assert (await ws.receive_json(timeout=10))["type"] == "ready"
            wait_for(lambda: _presence(survivor, "vantaa.mikko") == "online", 10, "mikko online elsewhere")

            status, created = survivor.call("POST", "/api/v1/consultations", "kela.aino", {
                "topic": "application_intake", "urgency": "immediate", "question": "Is the attachment enough?",
                "purpose": "general", "target_org": "vantaa", "pool": "toimeentulotuki"})
            assert status == 201, created
            assert created["routing"]["offered_online"] == 1  # mikko, connected to the victim
            cid = created["id"]
            status, claimed = survivor.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna")
            assert status == 200, claimed

            acked: list[str] = []
            failed: list[Any] = []
            stop = asyncio.Event()
            traffic = asyncio.create_task(_messages(edge, cluster, cid, acked, failed, stop))
            try:
                deadline = time.monotonic() + 30
                while len(acked) < 60 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert len(acked) >= 20, f"no traffic through the cluster: {failed[:5]}"
                killed_at = time.monotonic()
                victim.kill()  # SIGKILL mid-traffic: no shutdown hook runs
                before_kill = len(acked)
                await asyncio.sleep(1.0)
                # another instance takes the victim's jobs, within the lease and a third of it
                await asyncio.to_thread(wait_for, lambda: cluster.lease_holder("audit checkpoint")
                                        not in (None, victim.name), LEASE_SECONDS * 4 / 3 + 5, "takeover")
                took_over = time.monotonic() - killed_at
                # the victim's expert stops counting once its presence expires
                await asyncio.to_thread(wait_for, lambda: _presence(survivor, "vantaa.mikko") == "offline",
                                        PRESENCE_SECONDS + 5, "mikko offline after the kill")
                while len(acked) < before_kill + 40 and time.monotonic() < deadline + 30:
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(traffic, 60)
            await ws.close()

        assert len(acked) > before_kill, "no message acknowledged after the kill"
        assert took_over <= LEASE_SECONDS * 4 / 3 + 5
        # every acknowledged message is readable through another instance
        readable = all_message_ids(survivor, cid)
        assert set(acked) <= readable, f"{len(set(acked) - readable)} acknowledged messages lost"

        cluster.stop()  # the survivors stop cleanly, each signing what it wrote
    sizes = [int(r[0]) for r in cluster.sql("SELECT tree_size FROM audit_checkpoints ORDER BY seq")]
    assert len(sizes) == len(set(sizes)), "a tree size was signed twice"
    result = cluster.cli("audit", "verify")
    assert result.returncode == 0 and "intact" in result.stdout, result.stdout + result.stderr
