"""Routing under a rush: 500 immediate consultations opened at once, offered to 50 on-duty
experts, each claimed exactly once — Konsulta next to a bare offer-and-claim server in the same run.

Offer latency is the time from the advisor starting its POST to an expert's WebSocket frame
``consultation.offered``, with authentication, the agreement check, routing (duty, load limit,
expected wait), encryption, storage and audit in Konsulta's path. Three experts race to claim each
consultation (409 for the losers); the run checks that every consultation was claimed exactly
once, by the answers and by the database afterwards. Both servers run as separate processes on
loopback; the one client process drives both the same way.

    python bench/routing_bench.py [--consultations 500] [--experts 50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery_bench import cpu_seconds, free_port, percentile, start, wait_up  # noqa: E402
from consult.auth.dev import DevIssuer  # noqa: E402

CONTENDERS = 3
ADVISORS = 20


def contenders(cid: str, experts: int) -> set[int]:
    first = zlib.crc32(cid.encode()) % experts
    return {(first + k) % experts for k in range(CONTENDERS)}


class Konsulta:
    name = "konsulta"

    def __init__(self, base: str, issuer: DevIssuer, pid: int, experts: int) -> None:
        self.base, self.issuer, self.pid, self.n = base, issuer, pid, experts
        self.expert_tokens = [issuer.mint(sub=f"bench.e{i:02}", org="vantaa", roles=["expert"], name=f"Expert {i}")
                              for i in range(experts)]
        self.advisor_tokens = [issuer.mint(sub=f"bench.a{i:02}", org="kela", roles=["advisor"], name=f"Advisor {i}")
                               for i in range(ADVISORS)]

    async def setup(self, http: aiohttp.ClientSession) -> None:
        admin = {"Authorization": "Bearer " + self.issuer.mint(sub="vantaa.admin", org="vantaa", roles=["admin"])}
        # The pool first: experts are named only to pools that exist.
        async with http.put(f"{self.base}/api/v1/pools/vantaa/bench", json={"max_open_per_expert": 0},
                            headers=admin) as r:
            assert r.status == 200, await r.text()
        for i in range(self.n):
            body = {"name": f"Expert {i}", "topics": ["other"], "pools": ["bench"], "on_duty": True}
            async with http.put(f"{self.base}/api/v1/experts/bench.e{i:02}", json=body, headers=admin) as r:
                assert r.status == 200, await r.text()

    async def connect(self, http: aiohttp.ClientSession, i: int) -> aiohttp.ClientWebSocketResponse:
        ws = await http.ws_connect(f"{self.base}/api/v1/ws")
        await ws.send_json({"type": "auth", "token": self.expert_tokens[i]})
        assert (await ws.receive_json())["type"] == "ready"
        return ws

    async def create(self, http: aiohttp.ClientSession, i: int) -> str:
        body = {"topic": "other", "urgency": "immediate", "question": f"Rush question {i}", "purpose": "general",
                "target_org": "vantaa", "pool": "bench"}
        headers = {"Authorization": f"Bearer {self.advisor_tokens[i % ADVISORS]}"}
        async with http.post(f"{self.base}/api/v1/consultations", json=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"konsulta answered {r.status}: {await r.text()}")
            return (await r.json())["id"]

    async def claim(self, http: aiohttp.ClientSession, expert: int, cid: str) -> int:
        headers = {"Authorization": f"Bearer {self.expert_tokens[expert]}"}
        async with http.post(f"{self.base}/api/v1/consultations/{cid}/claim", headers=headers) as r:
            await r.read()
            return r.status

    @staticmethod
    def stored_claims(db: Path, ids: set[str]) -> Counter[str]:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT consultation_id FROM audit_events WHERE action = 'consultation.claim'").fetchall()
            claimed = {r[0] for r in conn.execute("SELECT id FROM consultations WHERE status = 'claimed'")}
        counts = Counter(r[0] for r in rows if r[0] in ids)
        return Counter({cid: counts[cid] if cid in claimed else 0 for cid in ids})


class Reference:
    name = "reference"

    def __init__(self, base: str, pid: int, experts: int) -> None:
        self.base, self.pid, self.n = base, pid, experts

    async def setup(self, http: aiohttp.ClientSession) -> None:
        return None

    async def connect(self, http: aiohttp.ClientSession, i: int) -> aiohttp.ClientWebSocketResponse:
        ws = await http.ws_connect(f"{self.base}/ws")
        assert (await ws.receive_json())["type"] == "ready"
        return ws

    async def create(self, http: aiohttp.ClientSession, i: int) -> str:
        async with http.post(f"{self.base}/offer", json={"question": f"Rush question {i}"}) as r:
            if r.status != 201:
                raise RuntimeError(f"reference answered {r.status}")
            return (await r.json())["id"]

    async def claim(self, http: aiohttp.ClientSession, expert: int, cid: str) -> int:
        async with http.post(f"{self.base}/claim/{cid}?by=e{expert}") as r:
            await r.read()
            return r.status

    @staticmethod
    def stored_claims(db: Path, ids: set[str]) -> Counter[str]:
        with sqlite3.connect(db) as conn:
            claimed = {r[0] for r in conn.execute("SELECT id FROM consultations WHERE status = 'claimed'")}
        return Counter({cid: int(cid in claimed) for cid in ids})


async def rush(target: Konsulta | Reference, consultations: int, experts: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=consultations + 4 * experts)
    async with aiohttp.ClientSession(connector=connector) as http:
        await target.setup(http)
        sockets = [await target.connect(http, i) for i in range(experts)]
        arrivals: dict[tuple[str, int], float] = {}
        answers: dict[str, list[int]] = {}
        claims: list[asyncio.Task[None]] = []
        all_claimed = asyncio.Event()
        wanted = {"count": 0}

        async def claim(expert: int, cid: str) -> None:
            status = await target.claim(http, expert, cid)
            answers.setdefault(cid, []).append(status)
            if status == 200:
                wanted["count"] -= 1
                if wanted["count"] == 0:
                    all_claimed.set()

        async def listen(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = msg.json()
                if event.get("type") != "consultation.offered":
                    continue
                cid = event["consultation"]["id"]
                if (cid, i) in arrivals:
                    continue  # a re-offer; the first frame counts
                arrivals[(cid, i)] = time.perf_counter()
                if i in contenders(cid, experts):
                    claims.append(asyncio.create_task(claim(i, cid)))

        listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]

        # Warm-up: a few consultations through the whole path, then forget them.
        wanted["count"] = 10
        await asyncio.gather(*(target.create(http, i) for i in range(10)))
        await asyncio.wait_for(all_claimed.wait(), 60)
        await asyncio.gather(*claims)
        arrivals.clear(), answers.clear(), claims.clear()
        all_claimed.clear()

        wanted["count"] = consultations
        starts: dict[int, float] = {}
        cpu0 = cpu_seconds(target.pid)

        async def open_one(i: int) -> tuple[int, str]:
            starts[i] = time.perf_counter()
            return i, await target.create(http, i)

        began = time.perf_counter()
        created = await asyncio.gather(*(open_one(i) for i in range(consultations)))
        await asyncio.wait_for(all_claimed.wait(), 180)
        done = time.perf_counter() - began
        await asyncio.gather(*claims)
        await asyncio.sleep(0.5)  # late frames, late losers
        cpu = cpu_seconds(target.pid) - cpu0
        for task in listeners:
            task.cancel()
        for ws in sockets:
            await ws.close()

    start_of = {cid: starts[i] for i, cid in created}
    frames = [(t - start_of[cid]) * 1000 for (cid, _e), t in arrivals.items() if cid in start_of]
    first: dict[str, float] = {}
    for (cid, _e), t in arrivals.items():
        if cid in start_of:
            first[cid] = min(first.get(cid, t), t)
    firsts = [(t - start_of[cid]) * 1000 for cid, t in first.items()]
    wins = Counter({cid: sum(1 for s in answers.get(cid, []) if s == 200) for cid in start_of})
    return {
        "ids": set(start_of), "frames": len(frames), "expected_frames": consultations * experts,
        "p50": statistics.median(frames), "p99": percentile(frames, 0.99),
        "first_p50": statistics.median(firsts), "first_p99": percentile(firsts, 0.99),
        "claimed_once": sum(1 for n in wins.values() if n == 1), "double": sum(1 for n in wins.values() if n > 1),
        "conflicts": sum(1 for a in answers.values() for s in a if s == 409),
        "all_claimed_s": done, "cpu_ms": cpu * 1000 / consultations,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consultations", type=int, default=500)
    parser.add_argument("--experts", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 consultations over 20 experts")
    args = parser.parse_args()
    if args.quick:
        args.consultations, args.experts = 100, 20

    with tempfile.TemporaryDirectory(prefix="konsulta-routing-bench-") as tmp:
        work = Path(tmp)
        kport, rport = free_port(), free_port()
        env = {**os.environ, "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(work),
               "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'konsulta.db'}",
               "CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_POLICY_DIR": str(ROOT / "policies"),
               "CONSULT_PORT": str(kport)}
        konsulta = start([sys.executable, "-m", "consult", "serve", "--demo"], env, work / "konsulta.log")
        reference = start([sys.executable, str(ROOT / "bench" / "reference_offers.py"), str(rport),
                           str(work / "reference.db")], dict(os.environ), work / "reference.log")
        try:
            await wait_up(f"http://127.0.0.1:{kport}/healthz")
            await wait_up(f"http://127.0.0.1:{rport}/healthz")
            issuer = DevIssuer(work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
            k_target = Konsulta(f"http://127.0.0.1:{kport}", issuer, konsulta.pid, args.experts)
            r_target = Reference(f"http://127.0.0.1:{rport}", reference.pid, args.experts)
            k = await rush(k_target, args.consultations, args.experts)
            r = await rush(r_target, args.consultations, args.experts)
        finally:
            for proc in (konsulta, reference):
                proc.terminate()
                proc.wait(timeout=30)
        k_stored = Konsulta.stored_claims(work / "konsulta.db", k["ids"])
        r_stored = Reference.stored_claims(work / "reference.db", r["ids"])

    n = args.consultations
    print(f"routing benchmark: {n} immediate consultations at once, {args.experts} on-duty experts, "
          f"{CONTENDERS} claimants each, SQLite, loopback, {os.cpu_count()} cores")
    print(f"{'figure':40}{'konsulta':>12}{'reference':>12}{'ratio':>9}")
    for label, key in (("offer latency p50 (ms)", "p50"), ("offer latency p99 (ms)", "p99"),
                       ("first offer of each, p50 (ms)", "first_p50"), ("first offer of each, p99 (ms)", "first_p99"),
                       ("all claimed after (s)", "all_claimed_s"), ("server CPU per consultation (ms)", "cpu_ms")):
        print(f"{label:40}{k[key]:12.2f}{r[key]:12.2f}{k[key] / r[key]:9.2f}")
    for label, key in (("offer frames delivered", "frames"), ("claimed exactly once (answers)", "claimed_once"),
                       ("claimed more than once (answers)", "double"), ("claim conflicts answered 409", "conflicts")):
        print(f"{label:40}{k[key]:12d}{r[key]:12d}")
    k_once = sum(1 for v in k_stored.values() if v == 1)
    r_once = sum(1 for v in r_stored.values() if v == 1)
    print(f"{'claimed exactly once (database)':40}{k_once:12d}{r_once:12d}")
    ok = (k["claimed_once"] == n and k["double"] == 0 and k_once == n and k["frames"] == k["expected_frames"])
    print("every consultation claimed exactly once: " + ("yes" if ok else "NO"))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
