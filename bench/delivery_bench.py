"""Delivery latency and throughput: Konsulta next to a bare aiohttp WebSocket relay, same run.

Latency is the time from the sender starting its POST to the recipient's WebSocket frame,
with authentication, policy, storage and audit in Konsulta's path (docs/capabilities.md, Figures). Both servers run
as separate processes on loopback; server CPU per message is read from /proc, both one message
at a time and over the span of 32 concurrent senders. Each message must reach the recipient once.

    python bench/delivery_bench.py [--messages 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult.auth.dev import DevIssuer  # noqa: E402

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def synthetic_hetu(n: int) -> str:
    """A valid identity code with a temporary individual number (900-999): never a real person."""
    individual = 900 + n % 100
    return f"010190-{individual}{CHECK[int(f'010190{individual}') % 31]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_up(url: str, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def server_cpu(target: Target) -> float:
    """CPU seconds used so far by all of the target's server processes."""
    return sum(cpu_seconds(pid) for pid in target.pids)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Target:
    """One server under test, with a sender API and a recipient socket; ``pids`` are its server
    processes (one, or every instance of a service), whose CPU time is summed."""

    name: str
    pid: int

    @property
    def pids(self) -> list[int]:
        return [self.pid]

    async def setup(self, http: aiohttp.ClientSession, senders: int) -> None: ...
    async def connect(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse: ...
    async def send(self, http: aiohttp.ClientSession, sender: int, text: str) -> None: ...


class Konsulta(Target):
    """Senders post to ``base``; the recipient's WebSocket opens on ``reader_base`` (another
    instance of the same service, when given)."""

    name = "konsulta"

    def __init__(self, base: str, issuer: DevIssuer, pid: int, *, reader_base: str | None = None,
                 pids: list[int] | None = None) -> None:
        self.base, self.issuer, self.pid = base, issuer, pid
        self.reader_base = reader_base or base
        self._pids = pids or [pid]
        self.expert = issuer.mint(sub="vantaa.sanna", org="vantaa", roles=["expert"], name="Sanna")
        self.senders: list[tuple[str, str]] = []

    @property
    def pids(self) -> list[int]:
        return self._pids

    async def setup(self, http: aiohttp.ClientSession, senders: int) -> None:
        # Sender i keeps its claimed consultation from one measurement to the next; new ones are
        # opened together.
        self.senders += await asyncio.gather(*(self._open(http, i) for i in range(len(self.senders), senders)))

    async def _open(self, http: aiohttp.ClientSession, i: int) -> tuple[str, str]:
        token = self.issuer.mint(sub=f"bench.advisor{i}", org="kela", roles=["advisor"], name=f"Advisor {i}")
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{self.base}/api/v1/clients", json={"hetu": synthetic_hetu(i)}, headers=auth) as r:
            assert r.status in (200, 201), await r.text()
            client_ref = (await r.json())["client_ref"]
        body = {"topic": "other", "urgency": "immediate", "question": "Benchmark question",
                "purpose": "tt.application_intake", "target_org": "vantaa", "expert_id": "vantaa.sanna",
                "client_ref": client_ref}
        async with http.post(f"{self.base}/api/v1/consultations", json=body, headers=auth) as r:
            assert r.status == 201, await r.text()
            cid = (await r.json())["id"]
        async with http.post(f"{self.base}/api/v1/consultations/{cid}/claim",
                             headers={"Authorization": f"Bearer {self.expert}"}) as r:
            assert r.status == 200, await r.text()
        return token, cid

    async def connect(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        ws = await http.ws_connect(f"{self.reader_base}/api/v1/ws")
        await ws.send_json({"type": "auth", "token": self.expert})
        assert (await ws.receive_json())["type"] == "ready"
        return ws

    async def send(self, http: aiohttp.ClientSession, sender: int, text: str) -> None:
        token, cid = self.senders[sender]
        body = {"text": text, "data": [{"category": "application.status", "value": "in process"}]}
        async with http.post(f"{self.base}/api/v1/consultations/{cid}/messages", json=body,
                             headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status != 201:
                raise RuntimeError(f"konsulta answered {r.status}: {await r.text()}")


class Relay(Target):
    name = "reference relay"

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid

    async def setup(self, http: aiohttp.ClientSession, senders: int) -> None:
        return None

    async def connect(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        ws = await http.ws_connect(f"{self.base}/ws?user=expert")
        assert (await ws.receive_json())["type"] == "ready"
        return ws

    async def send(self, http: aiohttp.ClientSession, sender: int, text: str) -> None:
        async with http.post(f"{self.base}/send", json={"from": f"s{sender}", "to": "expert", "text": text}) as r:
            if r.status != 201:
                raise RuntimeError(f"relay answered {r.status}")


async def receiver(ws: aiohttp.ClientWebSocketResponse, arrivals: dict[str, float], expected: int,
                   done: asyncio.Event, tally: dict[str, int] | None = None, arrived: asyncio.Event | None = None,
                   ) -> None:
    """Note each message's first frame; count in ``tally["duplicates"]`` the frames of a message
    already seen (every message is delivered once to each connection)."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        event = msg.json()
        if event.get("type") == "message.created":
            text = event["message"]["text"]
            if text in arrivals:
                if tally is not None:
                    tally["duplicates"] = tally.get("duplicates", 0) + 1
                continue
            arrivals[text] = time.perf_counter()
            if arrived is not None:
                arrived.set()
            if len(arrivals) >= expected:
                done.set()


async def latency(target: Target, count: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        await target.setup(http, 1)
        ws = await target.connect(http)
        arrivals: dict[str, float] = {}
        done, arrived = asyncio.Event(), asyncio.Event()
        tally = {"duplicates": 0}
        task = asyncio.create_task(receiver(ws, arrivals, count, done, tally, arrived))
        for i in range(20):  # warm-up
            await target.send(http, 0, f"warm-{i}-{uuid.uuid4().hex}")
        await asyncio.sleep(0.2)
        arrivals.clear()
        tally["duplicates"] = 0
        starts: dict[str, float] = {}
        cpu0 = server_cpu(target)
        for i in range(count):
            text = f"lat-{i}-{uuid.uuid4().hex}"
            starts[text] = time.perf_counter()
            await target.send(http, 0, text)
            while text not in arrivals:  # the frame usually beats the POST's response
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), 60)
                except TimeoutError:
                    raise RuntimeError(f"{target.name}: a message was not delivered within 60 s") from None
        cpu = server_cpu(target) - cpu0
        task.cancel()
        await ws.close()
    samples = [(arrivals[t] - s) * 1000 for t, s in starts.items()]
    return {"p50": statistics.median(samples), "p99": percentile(samples, 0.99),
            "mean": statistics.fmean(samples), "cpu_ms": cpu * 1000 / count, "duplicates": tally["duplicates"]}


async def throughput(target: Target, senders: int, per_sender: int, stats: dict[str, float] | None = None) -> float:
    """Messages per second from ``senders`` concurrent senders until the recipient has them all;
    ``stats``, when given, gets the server CPU per message over that span (``cpu_ms``) and the
    number of frames of a message already delivered (``duplicates``)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders + 4)) as http:
        await target.setup(http, senders)
        ws = await target.connect(http)
        arrivals: dict[str, float] = {}
        done = asyncio.Event()
        total = senders * per_sender
        tally = {"duplicates": 0}
        task = asyncio.create_task(receiver(ws, arrivals, total, done, tally))

        async def run(sender: int) -> None:
            for i in range(per_sender):
                await target.send(http, sender, f"tp-{senders}-{sender}-{i}-{uuid.uuid4().hex[:6]}")

        cpu0 = server_cpu(target)
        started = time.perf_counter()
        await asyncio.gather(*(run(s) for s in range(senders)))
        await asyncio.wait_for(done.wait(), timeout=60)
        elapsed = time.perf_counter() - started
        if stats is not None:
            stats["cpu_ms"] = (server_cpu(target) - cpu0) * 1000 / total
            stats["duplicates"] = tally["duplicates"]
        task.cancel()
        await ws.close()
    return total / elapsed


async def measure(target: Target, args: argparse.Namespace) -> dict[str, float]:
    result = await latency(target, args.messages)
    duplicates = result.pop("duplicates")
    for senders in (1, 8, 32):
        stats: dict[str, float] = {}
        result[f"tp{senders}"] = await throughput(target, senders, max(10, args.throughput_messages // senders), stats)
        duplicates += stats["duplicates"]
    result["cpu32_ms"] = stats["cpu_ms"]
    result["duplicates"] = duplicates
    return result


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300, help="latency samples (default 300)")
    parser.add_argument("--throughput-messages", type=int, default=1600, help="messages per throughput level")
    parser.add_argument("--quick", action="store_true", help="small counts, for a CI smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.throughput_messages = 50, 160

    with tempfile.TemporaryDirectory(prefix="konsulta-bench-") as tmp:
        work = Path(tmp)
        kport, rport = free_port(), free_port()
        env = {**os.environ, "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(work),
               "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'konsulta.db'}",
               "CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_POLICY_DIR": str(ROOT / "policies"),
               "CONSULT_PORT": str(kport)}
        konsulta = start([sys.executable, "-m", "consult", "serve", "--demo"], env, work / "konsulta.log")
        relay = start([sys.executable, str(ROOT / "bench" / "reference_relay.py"), str(rport),
                       str(work / "relay.db")], dict(os.environ), work / "relay.log")
        try:
            await wait_up(f"http://127.0.0.1:{kport}/healthz")
            await wait_up(f"http://127.0.0.1:{rport}/healthz")
            issuer = DevIssuer(work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
            k = await measure(Konsulta(f"http://127.0.0.1:{kport}", issuer, konsulta.pid), args)
            r = await measure(Relay(f"http://127.0.0.1:{rport}", relay.pid), args)
        finally:
            for proc in (konsulta, relay):
                proc.terminate()
                proc.wait(timeout=15)

    print(f"delivery benchmark: {args.messages} latency samples, SQLite, loopback, {os.cpu_count()} cores")
    print(f"{'figure':44}{'konsulta':>12}{'reference':>12}{'ratio':>9}   target")
    rows = [
        ("latency p50 (ms)", "p50", "<= 2"),
        ("latency p99 (ms)", "p99", "<= 6"),
        ("server CPU per message, one at a time (ms)", "cpu_ms", "<= 0.4"),
        ("server CPU per message, 32 senders (ms)", "cpu32_ms", "<= 0.4"),
        ("throughput, 1 sender (msg/s)", "tp1", ""),
        ("throughput, 8 senders (msg/s)", "tp8", ""),
        ("throughput, 32 senders (msg/s)", "tp32", ">= 2500"),
    ]
    for label, key, target in rows:
        ratio = f"{k[key] / r[key]:9.2f}" if r[key] else f"{'n/a':>9}"  # a quick run's CPU can stay under a tick
        print(f"{label:44}{k[key]:12.2f}{r[key]:12.2f}{ratio}   {target}")
    # Every message must reach the recipient's one connection once.
    print(f"{'frames of a message delivered twice':44}{k['duplicates']:12.0f}{r['duplicates']:12.0f}")


if __name__ == "__main__":
    asyncio.run(main())
