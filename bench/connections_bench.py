"""Concurrent WebSocket connections (target, docs/capabilities.md: 2,000 in one process, resident memory ≤ 400 MB).

Opens N authenticated WebSocket connections (first-frame auth, distinct users) to a demo server
and reads the server's resident memory, next to a bare aiohttp WebSocket relay holding the same
number of connections, measured in the same run. Then checks that one event still reaches one
of the connections.

    python bench/connections_bench.py [--connections 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery_bench import free_port, start, wait_up  # noqa: E402
from consult.auth.dev import DevIssuer  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def hold(url: str, n: int, first_frame) -> tuple[list[aiohttp.ClientWebSocketResponse], aiohttp.ClientSession, float]:  # type: ignore[no-untyped-def]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    started = time.perf_counter()
    for batch in range(0, n, 100):
        async def one(i: int) -> aiohttp.ClientWebSocketResponse:
            ws = await session.ws_connect(url(i), heartbeat=None)
            frame = first_frame(i)
            if frame is not None:
                await ws.send_json(frame)
            ready = await ws.receive_json(timeout=30)
            assert ready["type"] == "ready", ready
            return ws
        sockets += await asyncio.gather(*(one(i) for i in range(batch, min(n, batch + 100))))
    return sockets, session, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections + 256)), hard))
    n = args.connections

    with tempfile.TemporaryDirectory(prefix="konsulta-conn-bench-") as tmp:
        work = Path(tmp)
        kport, rport = free_port(), free_port()
        env = {**os.environ, "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(work),
               "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'konsulta.db'}",
               "CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_POLICY_DIR": str(ROOT / "policies"),
               "CONSULT_PORT": str(kport)}
        konsulta = start([sys.executable, "-m", "consult", "serve", "--demo"], env, work / "konsulta.log")
        relay = start([sys.executable, str(ROOT / "bench" / "reference_relay.py"), str(rport), str(work / "r.db")],
                      dict(os.environ), work / "relay.log")
        try:
            await wait_up(f"http://127.0.0.1:{kport}/healthz")
            await wait_up(f"http://127.0.0.1:{rport}/healthz")
            issuer = DevIssuer(work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
            tokens = [issuer.mint(sub=f"bench.user{i}", org="kela", roles=["advisor"]) for i in range(n)]
            k_idle, r_idle = rss_mb(konsulta.pid), rss_mb(relay.pid)
            k_socks, k_session, k_time = await hold(lambda _i: f"http://127.0.0.1:{kport}/api/v1/ws", n,
                                                    lambda i: {"type": "auth", "token": tokens[i]})
            r_socks, r_session, r_time = await hold(lambda i: f"http://127.0.0.1:{rport}/ws?user=u{i}", n,
                                                    lambda _i: None)
            await asyncio.sleep(1.0)
            k_rss, r_rss = rss_mb(konsulta.pid), rss_mb(relay.pid)
            # Still live: a ping on the last connection answers.
            await k_socks[-1].send_json({"type": "ping"})
            pong = await k_socks[-1].receive_json(timeout=10)
            for ws in k_socks + r_socks:
                await ws.close()
            await k_session.close()
            await r_session.close()
        finally:
            for proc in (konsulta, relay):
                proc.terminate()
                proc.wait(timeout=15)

    print(f"connections benchmark: {n} authenticated WebSocket connections held open, loopback")
    print(f"{'figure':40}{'konsulta':>12}{'reference':>12}   target")
    print(f"{'resident memory idle (MB)':40}{k_idle:12.1f}{r_idle:12.1f}")
    print(f"{'resident memory with all open (MB)':40}{k_rss:12.1f}{r_rss:12.1f}   <= 400")
    print(f"{'per connection (KB)':40}{(k_rss - k_idle) * 1024 / n:12.1f}{(r_rss - r_idle) * 1024 / n:12.1f}")
    print(f"{'time to open all (s)':40}{k_time:12.2f}{r_time:12.2f}")
    print(f"last connection still answers: {pong.get('type') == 'pong'}")


if __name__ == "__main__":
    asyncio.run(main())
