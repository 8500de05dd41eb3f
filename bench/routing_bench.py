"""Routing under a rush: 500 immediate consultations opened at once, offered to 50 on-duty
experts, each claimed exactly once — Konsulta next to a bare offer-and-claim server in the same run.

Offer latency is the time from the advisor starting its POST to an expert's WebSocket frame
``consultation.offered``, with authentication, the agreement check, routing (duty, load limit,
expected wait), encryption, storage and audit in Konsulta's path. Three experts race to claim each
consultation (409 for the losers); the run checks that every consultation was claimed exactly
once, by the answers and by the database afterwards. Both servers run as separate processes on
loopback; the one client process drives both the same way.

With ``--database postgresql`` the run is on PostgreSQL (``CONSULT_BENCH_PG_URL``, as for
bench/scale_bench.py), side by side: Konsulta on one instance, Konsulta on three instances of
one database — advisors, experts' WebSockets and claims spread over the three in turn, so most
offers cross instances — and the reference on PostgreSQL; each on a fresh database, vacuumed and
analysed after the warm-up, dropped afterwards.

    python bench/routing_bench.py [--consultations 500] [--experts 50] [--quick] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery_bench import cpu_seconds, free_port, percentile, start, wait_up  # noqa: E402
from bench.scale_bench import Database, Processes, fresh, instances, progress, upgraded_template  # noqa: E402
from consult.auth.dev import DevIssuer  # noqa: E402

CONTENDERS = 3
STALL = 60.0
ADVISORS = 20


def contenders(cid: str, experts: int) -> set[int]:
    first = zlib.crc32(cid.encode()) % experts
    return {(first + k) % experts for k in range(CONTENDERS)}


Store = Path | Database
"""Where a target keeps its rows: an SQLite file, or a PostgreSQL database."""


async def rows(store: Store, statement: str) -> list[tuple[str]]:
    if isinstance(store, Path):
        with sqlite3.connect(store) as conn:
            return list(conn.execute(statement).fetchall())
    conn = await asyncpg.connect(store.url)
    try:
        return [tuple(r) for r in await conn.fetch(statement)]
    finally:
        await conn.close()


class Konsulta:
    """Konsulta on one or more instances of one database: advisor ``i`` opens on instance ``i``
    modulo their number, expert ``i`` connects and claims there."""

    name = "konsulta"

    def __init__(self, bases: list[str], issuer: DevIssuer, pids: list[int], experts: int) -> None:
        self.bases, self.issuer, self.pids, self.n = bases, issuer, pids, experts
        self.base = bases[0]
        self.online_when_routed: dict[str, int] = {}  # consultation -> experts counted online as it was routed
        self.ready_last: dict[int, int | None] = {}  # expert -> the newest event id its first ready named
        self.admin = {"Authorization": "Bearer " + issuer.mint(sub="vantaa.admin", org="vantaa", roles=["admin"])}
        self.expert_tokens = [issuer.mint(sub=f"bench.e{i:02}", org="vantaa", roles=["expert"], name=f"Expert {i}")
                              for i in range(experts)]
        self.advisor_tokens = [issuer.mint(sub=f"bench.a{i:02}", org="kela", roles=["advisor"], name=f"Advisor {i}")
                               for i in range(ADVISORS)]

    def on(self, i: int) -> str:
        return self.bases[i % len(self.bases)]

    async def setup(self, http: aiohttp.ClientSession) -> None:
        admin = self.admin
        # The pool first: experts are named only to pools that exist.
        async with http.put(f"{self.base}/api/v1/pools/vantaa/bench", json={"max_open_per_expert": 0},
                            headers=admin) as r:
            assert r.status == 200, await r.text()
        for i in range(self.n):
            body = {"name": f"Expert {i}", "topics": ["other"], "pools": ["bench"], "on_duty": True}
            async with http.put(f"{self.base}/api/v1/experts/bench.e{i:02}", json=body, headers=admin) as r:
                assert r.status == 200, await r.text()

    async def connect(self, http: aiohttp.ClientSession, i: int,
                      last_event_id: int | None = None) -> aiohttp.ClientWebSocketResponse:
        """Expert ``i``'s socket; with ``last_event_id`` it resumes after that event, as the web
        app does when the server closed its socket."""
        ws = await http.ws_connect(f"{self.on(i)}/api/v1/ws")
        frame: dict[str, object] = {"type": "auth", "token": self.expert_tokens[i]}
        if last_event_id is not None:
            frame["last_event_id"] = last_event_id
        await ws.send_json(frame)
        ready = await ws.receive_json()
        assert ready["type"] == "ready"
        if last_event_id is None:
            self.ready_last[i] = ready.get("last_event_id")
        return ws

    async def settle(self, http: aiohttp.ClientSession) -> None:
        """Wait until every instance counts every expert online (presence crosses instances
        within about a second)."""
        deadline = time.monotonic() + 60
        for base in self.bases:
            while True:
                async with http.get(f"{base}/api/v1/pools?org=vantaa", headers=self.admin) as r:
                    pools = (await r.json())["items"]
                if next(p["on_duty_online"] for p in pools if p["name"] == "bench") >= self.n:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the experts are not counted online on every instance")
                await asyncio.sleep(0.2)

    async def create(self, http: aiohttp.ClientSession, i: int) -> str:
        body = {"topic": "other", "urgency": "immediate", "question": f"Rush question {i}", "purpose": "general",
                "target_org": "vantaa", "pool": "bench"}
        headers = {"Authorization": f"Bearer {self.advisor_tokens[i % ADVISORS]}"}
        async with http.post(f"{self.on(i)}/api/v1/consultations", json=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"konsulta answered {r.status}: {await r.text()}")
            created = await r.json()
            self.online_when_routed[created["id"]] = created["routing"].get("offered_online", self.n)
            return str(created["id"])

    async def claim(self, http: aiohttp.ClientSession, expert: int, cid: str) -> int:
        headers = {"Authorization": f"Bearer {self.expert_tokens[expert]}"}
        async with http.post(f"{self.on(expert)}/api/v1/consultations/{cid}/claim", headers=headers) as r:
            await r.read()
            return r.status

    @staticmethod
    async def stored_claims(store: Store, ids: set[str]) -> Counter[str]:
        audited = await rows(store, "SELECT consultation_id FROM audit_events WHERE action = 'consultation.claim'")
        claimed = {r[0] for r in await rows(store, "SELECT id FROM consultations WHERE status = 'claimed'")}
        counts = Counter(r[0] for r in audited if r[0] in ids)
        return Counter({cid: counts[cid] if cid in claimed else 0 for cid in ids})


class Reference:
    name = "reference"

    def __init__(self, base: str, pid: int, experts: int) -> None:
        self.base, self.pids, self.n = base, [pid], experts
        self.online_when_routed: dict[str, int] = {}  # every connected expert is offered, always

    async def setup(self, http: aiohttp.ClientSession) -> None:
        return None

    async def settle(self, http: aiohttp.ClientSession) -> None:
        return None

    async def connect(self, http: aiohttp.ClientSession, i: int,
                      last_event_id: int | None = None) -> aiohttp.ClientWebSocketResponse:
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
    async def stored_claims(store: Store, ids: set[str]) -> Counter[str]:
        claimed = {r[0] for r in await rows(store, "SELECT id FROM consultations WHERE status = 'claimed'")}
        return Counter({cid: int(cid in claimed) for cid in ids})


def server_cpu(target: Konsulta | Reference) -> float:
    return sum(cpu_seconds(pid) for pid in target.pids)


async def rush(target: Konsulta | Reference, consultations: int, experts: int,
               database: Database | None = None) -> dict[str, float]:
    """Warm up, then open ``consultations`` at once; on PostgreSQL, ``database`` is vacuumed and
    analysed between the two."""
    connector = aiohttp.TCPConnector(limit=consultations + 4 * experts)
    async with aiohttp.ClientSession(connector=connector) as http:
        await target.setup(http)
        sockets = [await target.connect(http, i) for i in range(experts)]
        await target.settle(http)
        arrivals: dict[tuple[str, int], float] = {}
        answers: dict[str, list[int]] = {}
        claims: list[asyncio.Task[None]] = []
        all_claimed, all_offered = asyncio.Event(), asyncio.Event()
        wanted = {"count": 0, "frames": 0}
        closes: Counter[str] = Counter()  # close code of each expert socket the server closed
        resumed: Counter[str] = Counter()  # live.resumed frames after reopening, complete or not

        async def claim(expert: int, cid: str) -> None:
            status = await target.claim(http, expert, cid)
            answers.setdefault(cid, []).append(status)
            if status == 200:
                wanted["count"] -= 1
                if wanted["count"] == 0:
                    all_claimed.set()

        async def listen(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            """Expert ``i``'s frames; a socket the server closes is opened again, resuming after the
            last event it delivered (a real client's reconnection), and the close is counted."""
            last: int | None = getattr(target, "ready_last", {}).get(i)
            while True:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = msg.json()
                    if isinstance(event.get("event_id"), int):
                        last = event["event_id"]
                    if event.get("type") == "live.resumed":
                        resumed["complete" if event.get("complete") else "incomplete"] += 1
                    on_frame(i, event)
                closes[str(ws.close_code)] += 1
                ws = await target.connect(http, i, last)
                sockets[i] = ws

        def on_frame(i: int, event: dict[str, object]) -> None:
            if event.get("type") != "consultation.offered":
                return
            cid = str(event["consultation"]["id"])  # type: ignore[index]
            if (cid, i) in arrivals:
                return  # a re-offer; the first frame counts
            arrivals[(cid, i)] = time.perf_counter()
            if len(arrivals) >= wanted["frames"]:
                all_offered.set()
            if i in contenders(cid, experts):
                claims.append(asyncio.create_task(claim(i, cid)))

        listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
        places = len(getattr(target, "bases", [target.base]))

        async def until(done: asyncio.Event, expected_frames: int, what: str, *, fail: bool = True) -> None:
            """Wait for ``done`` while offer frames or claim answers keep coming; after STALL seconds
            without either, say where things stand, and fail unless ``fail`` is false."""
            seen: tuple[int, int] | None = None
            while not done.is_set():
                now = (len(arrivals), sum(len(a) for a in answers.values()))
                if now == seen:
                    per_place = Counter(e % places for _c, e in arrivals)
                    statuses = Counter(s for a in answers.values() for s in a)
                    # Offers missing for every expert of one instance at once: routing counted them
                    # offline (presence), not frames lost one by one.
                    reached = {(c, e % places) for c, e in arrivals}
                    offered = {c for c, _e in arrivals}
                    unreached = sum(1 for c in offered for place in range(places) if (c, place) not in reached)
                    where = (f"{what}: nothing new for {STALL} s: {len(arrivals)} of {expected_frames} offer frames "
                             f"(by instance of the expert: {dict(sorted(per_place.items()))}; consultation and "
                             f"instance pairs with no frame to any of its experts: {unreached}), claim answers "
                             f"{dict(statuses)}, {wanted['count']} consultations still unclaimed")
                    if fail:
                        raise RuntimeError(where)
                    print(where, file=sys.stderr)
                    return
                seen = now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), STALL)

        # Warm-up: a few consultations through the whole path, then forget them.
        wanted["count"], wanted["frames"] = 10, 10 * experts
        await asyncio.gather(*(target.create(http, i) for i in range(10)))
        await until(all_claimed, wanted["frames"], "warm-up, claims")
        await until(all_offered, wanted["frames"], "warm-up, offers")
        await asyncio.gather(*claims)
        arrivals.clear(), answers.clear(), claims.clear()
        all_claimed.clear(), all_offered.clear()
        if database is not None:
            await database.vacuum()

        wanted["count"], wanted["frames"] = consultations, consultations * experts
        starts: dict[int, float] = {}
        cpu0 = server_cpu(target)

        async def open_one(i: int) -> tuple[int, str]:
            starts[i] = time.perf_counter()
            return i, await target.create(http, i)

        began = time.perf_counter()
        created = await asyncio.gather(*(open_one(i) for i in range(consultations)))
        await until(all_claimed, wanted["frames"], "rush, claims")
        done = time.perf_counter() - began
        await until(all_offered, wanted["frames"], "rush, offers", fail=False)  # the late frames too
        await asyncio.gather(*claims)  # and the late losers' answers
        cpu = server_cpu(target) - cpu0
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
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
        "routed_short": sum(1 for cid in start_of if target.online_when_routed.get(cid, experts) < experts),
        "conflicts": sum(1 for a in answers.values() for s in a if s == 409),
        "all_claimed_s": done, "cpu_ms": cpu * 1000 / consultations,
        "closed": sum(closes.values()), "close_codes": dict(closes), "resumed_incomplete": resumed["incomplete"],
    }


async def on_sqlite(args: argparse.Namespace) -> list[tuple[str, dict[str, float], Counter[str]]]:
    """Konsulta and the reference, one process each, each on an SQLite file."""
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
            k_target = Konsulta([f"http://127.0.0.1:{kport}"], issuer, [konsulta.pid], args.experts)
            r_target = Reference(f"http://127.0.0.1:{rport}", reference.pid, args.experts)
            k = await rush(k_target, args.consultations, args.experts)
            r = await rush(r_target, args.consultations, args.experts)
        finally:
            for proc in (konsulta, reference):
                proc.terminate()
                proc.wait(timeout=30)
        return [("konsulta", k, await Konsulta.stored_claims(work / "konsulta.db", k["ids"])),
                ("reference", r, await Reference.stored_claims(work / "reference.db", r["ids"]))]


async def konsulta_on_postgresql(count: int, template: Database, args: argparse.Namespace,
                                 ) -> tuple[dict[str, float], Counter[str]]:
    async with AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="konsulta-routing-bench-")))
        db = await stack.enter_async_context(fresh(f"routing{count}", template))
        bases, pids = await instances(stack, work, db, count)
        issuer = DevIssuer(work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
        progress(f"routing on {count} instance(s): up")
        result = await rush(Konsulta(bases, issuer, pids, args.experts), args.consultations, args.experts, db)
        progress(f"routing on {count} instance(s): measured")
        return result, await Konsulta.stored_claims(db, result["ids"])


async def reference_on_postgresql(args: argparse.Namespace) -> tuple[dict[str, float], Counter[str]]:
    async with AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="konsulta-routing-bench-")))
        db = await stack.enter_async_context(fresh("offers"))
        procs = Processes(work)
        stack.push(procs)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        proc = await procs.start("reference", [sys.executable, str(ROOT / "bench" / "reference_offers.py"),
                                               str(port), db.url], env, f"http://127.0.0.1:{port}/healthz")
        result = await rush(Reference(f"http://127.0.0.1:{port}", proc.pid, args.experts), args.consultations,
                            args.experts, db)
        progress("routing, reference: measured")
        return result, await Reference.stored_claims(db, result["ids"])


async def on_postgresql(args: argparse.Namespace) -> list[tuple[str, dict[str, float], Counter[str]]]:
    """Konsulta on each number of instances asked for (one and three), and the reference, each on a
    fresh database."""
    with tempfile.TemporaryDirectory(prefix="konsulta-routing-bench-") as tmp:
        template = await upgraded_template(Path(tmp))
    columns: list[tuple[str, dict[str, float], Counter[str]]] = []
    try:
        for count in args.instances:
            columns.append((f"{count} instance{'s' if count > 1 else ''}",
                            *await konsulta_on_postgresql(count, template, args)))
    finally:
        await template.drop()
    return [*columns, ("reference", *await reference_on_postgresql(args))]


def report(args: argparse.Namespace, store: str, columns: list[tuple[str, dict[str, float], Counter[str]]]) -> bool:
    """Print the figures, a column per target and the ratio of each Konsulta column to the
    reference (the last column); true when every consultation was claimed exactly once."""
    n = args.consultations
    *ours, (_, r, _) = columns
    print(f"routing benchmark: {n} immediate consultations at once, {args.experts} on-duty experts, "
          f"{CONTENDERS} claimants each, {store}, loopback, {os.cpu_count()} cores")
    heads = [name for name, _, _ in columns] + [f"{name} / ref" for name, _, _ in ours]
    w = max(14, *(len(h) + 2 for h in heads))
    print(f"{'figure':40}" + "".join(f"{h:>{w}}" for h in heads))
    for label, key in (("offer latency p50 (ms)", "p50"), ("offer latency p99 (ms)", "p99"),
                       ("first offer of each, p50 (ms)", "first_p50"), ("first offer of each, p99 (ms)", "first_p99"),
                       ("all claimed after (s)", "all_claimed_s"), ("server CPU per consultation (ms)", "cpu_ms")):
        values = [c[key] for _, c, _ in columns] + [c[key] / r[key] for _, c, _ in ours]
        print(f"{label:40}" + "".join(f"{v:{w}.2f}" for v in values))
    for label, key in (("offer frames delivered", "frames"), ("routed with an expert counted offline", "routed_short"),
                       ("claimed exactly once (answers)", "claimed_once"),
                       ("claimed more than once (answers)", "double"), ("claim conflicts answered 409", "conflicts")):
        print(f"{label:40}" + "".join(f"{c[key]:{w}d}" for _, c, _ in columns))
    for label, key in (("expert sockets closed by the server", "closed"),
                       ("  resumed incompletely (re-read)", "resumed_incomplete")):
        print(f"{label:40}" + "".join(f"{c[key]:{w}d}" for _, c, _ in columns))
    for name, c, _ in columns:
        if c["close_codes"]:
            print(f"  {name}: close codes {c['close_codes']} (each socket reopened, resuming after its last event)")
    once = [sum(1 for v in stored.values() if v == 1) for _, _, stored in columns]
    print(f"{'claimed exactly once (database)':40}" + "".join(f"{v:{w}d}" for v in once))
    ok = all(c["claimed_once"] == n and c["double"] == 0 and k_once == n and c["frames"] == c["expected_frames"]
             for (_, c, _), k_once in zip(ours, once, strict=False))
    print("every consultation claimed exactly once: " + ("yes" if ok else "NO"))
    return ok


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=500)
    parser.add_argument("--experts", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 consultations over 20 experts")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--instances", default="1,3", help="PostgreSQL: numbers of instances, comma-separated (1,3)")
    args = parser.parse_args()
    if args.quick:
        args.consultations, args.experts = 100, 20
    args.instances = [int(n) for n in args.instances.split(",")]
    if args.database == "sqlite":
        columns = await on_sqlite(args)
        store = "SQLite"
    else:
        columns = await on_postgresql(args)
        store = "PostgreSQL, each on a fresh database vacuumed and analysed after the warm-up"
    if not report(args, store, columns):
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
