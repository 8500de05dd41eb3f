"""Several builds of Konsulta measured side by side: server CPU per message, block by block.

Each source tree given (a checkout or ``git archive`` of a revision) is served at once, each on a
fresh SQLite database; rounds then send every build in turn a block of sequential messages (one
sender, each waiting for its WebSocket frame) and a block from 32 concurrent senders. Load from
other jobs on the machine falls on all builds alike, so the medians compare builds even where
bench/delivery_bench.py's before/after runs differ by more than the change. Uses that bench's
client code. docs/performance.md shows what it printed.

    python bench/side_by_side_bench.py [--rounds 12] NAME=TREE [NAME=TREE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery_bench import Konsulta, cpu_seconds, free_port, wait_up  # noqa: E402
from consult.auth.dev import DevIssuer  # noqa: E402

SEQUENTIAL, SENDERS, PER_SENDER = 40, 32, 4


@dataclass
class Build:
    name: str
    tree: Path
    work: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    target: Konsulta | None = None
    arrivals: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, asyncio.Event] = field(default_factory=dict)
    sequential: list[float] = field(default_factory=list)
    concurrent: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None


def start(build: Build) -> None:
    build.port = free_port()
    env = {**os.environ, "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(build.work),
           "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{build.work / 'konsulta.db'}",
           "CONSULT_KEY_FILE": str(build.work / "keys.json"), "CONSULT_POLICY_DIR": str(build.tree / "policies"),
           "CONSULT_PORT": str(build.port)}
    with (build.work / "konsulta.log").open("wb") as log:
        build.process = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--demo"], env=env,
                                         cwd=build.tree, stdout=log, stderr=subprocess.STDOUT)


async def frames(ws: aiohttp.ClientWebSocketResponse, build: Build) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        event = msg.json()
        if event.get("type") == "message.created":
            text = event["message"]["text"]
            build.arrivals[text] = time.perf_counter()
            waiter = build.waiting.pop(text, None)
            if waiter is not None:
                waiter.set()


async def prepare(build: Build, http: aiohttp.ClientSession) -> None:
    assert build.process is not None
    await wait_up(f"http://127.0.0.1:{build.port}/healthz")
    issuer = DevIssuer(build.work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
    build.target = Konsulta(f"http://127.0.0.1:{build.port}", issuer, build.process.pid)
    await build.target.setup(http, SENDERS)
    ws = await build.target.connect(http)
    build.reader = asyncio.get_running_loop().create_task(frames(ws, build))
    for i in range(20):  # warm-up
        await build.target.send(http, 0, f"warm-{i}-{uuid.uuid4().hex}")


async def one_round(build: Build, http: aiohttp.ClientSession, r: int) -> None:
    target = build.target
    assert target is not None
    cpu = cpu_seconds(target.pid)
    for i in range(SEQUENTIAL):
        text = f"s-{r}-{i}-{uuid.uuid4().hex}"
        arrived = build.waiting[text] = asyncio.Event()
        sent = time.perf_counter()
        await target.send(http, 0, text)
        await arrived.wait()  # the frame usually beats the POST's response
        build.latency.append((build.arrivals[text] - sent) * 1000)
    build.sequential.append((cpu_seconds(target.pid) - cpu) * 1000 / SEQUENTIAL)

    async def sender(s: int) -> None:
        for i in range(PER_SENDER):
            await target.send(http, s, f"c-{r}-{s}-{i}-{uuid.uuid4().hex[:6]}")

    cpu, started = cpu_seconds(target.pid), time.perf_counter()
    await asyncio.gather(*(sender(s) for s in range(SENDERS)))
    build.rate.append(SENDERS * PER_SENDER / (time.perf_counter() - started))
    build.concurrent.append((cpu_seconds(target.pid) - cpu) * 1000 / (SENDERS * PER_SENDER))


def builds_in(specs: list[str], tmp: Path) -> list[Build]:
    builds = []
    for spec in specs:
        name, _, tree = spec.partition("=")
        (tmp / name).mkdir()
        builds.append(Build(name, Path(tree).resolve(), tmp / name))
    return builds


async def measure(builds: list[Build], rounds: int) -> None:
    try:
        for build in builds:
            start(build)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SENDERS * 2)) as http:
            for build in builds:
                await prepare(build, http)
            for r in range(rounds):
                for build in builds:
                    await one_round(build, http, r)
            for build in builds:
                if build.reader is not None:
                    build.reader.cancel()
    finally:
        for build in builds:
            if build.process is not None:
                build.process.terminate()
                build.process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("builds", nargs="+", metavar="NAME=TREE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="konsulta-side-") as tmp:
        builds = builds_in(args.builds, Path(tmp))
        asyncio.run(measure(builds, args.rounds))
    print(f"side by side: {args.rounds} rounds, medians; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'build':24}{'CPU/msg seq (ms)':>18}{'CPU/msg 32 (ms)':>17}{'p50 seq (ms)':>14}{'msg/s 32':>10}")
    for b in builds:
        print(f"{b.name:24}{statistics.median(b.sequential):18.3f}{statistics.median(b.concurrent):17.3f}"
              f"{statistics.median(b.latency):14.2f}{statistics.median(b.rate):10.1f}")


if __name__ == "__main__":
    main()
