"""Many instances, one service: message delivery on PostgreSQL, side by side in one run — (a) the
bare relay (bench/reference_relay.py) committing each message to PostgreSQL, (b) one Konsulta
instance, (c) three Konsulta instances on one database with the senders posting to the first and
the recipient's WebSocket open on the second, so every message crosses instances (LISTEN/NOTIFY).

Per target: delivery latency p50/p99 (sender's POST to the recipient's frame), server CPU per
message summed over the target's processes (read from /proc; one message at a time, and under 32
senders), and throughput with 32 concurrent senders — with the ratios of (b) to (a) and of (c) to
(b). Each target gets a fresh database (``kwtc_…``), dropped afterwards; after the warm-up the
script runs ``VACUUM (ANALYZE)`` on it before measuring, since autovacuum may be off.

    python bench/scale_bench.py [--messages 300] [--throughput-messages 1600] [--quick]

``CONSULT_BENCH_PG_URL`` names the PostgreSQL server's maintenance database (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the script exits with status 2, saying so,
when it cannot reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import delivery_bench as delivery  # noqa: E402
from consult.auth.dev import DevIssuer  # noqa: E402

ADMIN_URL = os.environ.get("CONSULT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "kwtc_"
SENDERS = 32
UNREACHABLE = 2
STARTED = time.monotonic()
LABELS = {"relay": "(a) reference relay", "one": "(b) 1 Konsulta instance", "three": "(c) 3 Konsulta instances"}


class Database:
    """A database of this run on the PostgreSQL server of ``ADMIN_URL``."""

    def __init__(self, label: str, template: Database | None = None) -> None:
        self.name = f"{PREFIX}{label}_{uuid.uuid4().hex[:8]}"
        self.url = ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        self.template = template

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create(self) -> None:
        of = "" if self.template is None else f' TEMPLATE "{self.template.name}"'
        await admin(f'CREATE DATABASE "{self.name}"{of}')

    async def drop(self) -> None:
        await admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def vacuum(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("VACUUM (ANALYZE)")
        finally:
            await conn.close()


async def admin(statement: str) -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        return str(await conn.fetchval(statement) if statement.startswith("SHOW") else await conn.execute(statement))
    finally:
        await conn.close()


@asynccontextmanager
async def fresh(label: str, template: Database | None = None) -> AsyncIterator[Database]:
    db = Database(label, template)
    await db.create()
    try:
        yield db
    finally:
        await db.drop()


class Processes:
    """The server processes of one target, each with its log in ``work``; all stopped on leaving
    the stack they are pushed on, each log's end printed when leaving on an error."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    async def start(self, name: str, cmd: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[bytes]:
        log = self.work / f"{name}.log"
        proc = delivery.start(cmd, env, log)
        self.running.append((proc, log))
        try:
            await delivery.wait_up(ready)
        except RuntimeError:
            raise RuntimeError(f"{name} did not come up:\n{log.read_text()[-3000:]}") from None
        return proc

    def __call__(self, failed: type[BaseException] | None, *_exc: object) -> None:
        self.stop()
        if failed is not None:
            for _proc, log in self.running:
                text = log.read_text()
                first = text.find(" ERROR ")
                where = "from its first error" if first >= 0 else "its end"
                shown = text[max(0, text.rfind("\n", 0, first)):][:4000] if first >= 0 else text[-3000:]
                print(f"--- {log.name}, {where}:\n{shown}", file=sys.stderr)
                warnings = [line for line in text.splitlines() if " WARNING " in line]
                if warnings:
                    print(f"--- {log.name}: {len(warnings)} warnings, the first:\n" + "\n".join(warnings[:20]),
                          file=sys.stderr)

    def stop(self) -> None:
        for proc, _log in self.running:
            proc.terminate()
        for proc, _log in self.running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def konsulta_env(work: Path, db: Database, instance: str, port: int = 0) -> dict[str, str]:
    """One instance's settings: the data directory (keys, checkpoint file, development issuer) is
    the target's and shared by its instances, as README "Several instances" asks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    return {**env, "PYTHONPATH": str(ROOT), "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(work),
            "CONSULT_KEY_FILE": str(work / "keys.json"), "CONSULT_POLICY_DIR": str(ROOT / "policies"),
            "CONSULT_DATABASE_URL": db.sqlalchemy_url, "CONSULT_INSTANCE_ID": instance,
            **({"CONSULT_PORT": str(port)} if port else {})}


async def upgraded_template(work: Path) -> Database:
    """A database at the migration head, the template of every Konsulta target's database (one
    `consult db upgrade` for the run)."""
    template = Database("template")
    await template.create()
    upgrade = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "consult", "db", "upgrade", cwd=ROOT, env=konsulta_env(work, template, "upgrade"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, errors = await upgrade.communicate()
    if upgrade.returncode != 0:
        await template.drop()
        raise RuntimeError(f"consult db upgrade failed:\n{errors.decode()[-3000:]}")
    progress(f"{template.name}: upgraded")
    return template


async def instances(stack: AsyncExitStack, work: Path, db: Database, count: int) -> tuple[list[str], list[int]]:
    """``count`` `consult serve --demo` processes on ``db``, stopped when ``stack`` closes: the first
    starts alone (it creates the keys of the new database), the others together after it. Their
    base URLs and process ids, in order."""
    procs = Processes(work)
    stack.push(procs)
    names, ports = "abcdefgh"[:count], [delivery.free_port() for _ in range(count)]

    async def one(name: str, port: int) -> subprocess.Popen[bytes]:
        return await procs.start(name, [sys.executable, "-m", "consult", "serve", "--demo"],
                                 konsulta_env(work, db, name, port), f"http://127.0.0.1:{port}/readyz")

    first = await one(names[0], ports[0])
    rest = await asyncio.gather(*(one(name, port) for name, port in zip(names[1:], ports[1:], strict=True)))
    return [f"http://127.0.0.1:{port}" for port in ports], [first.pid, *(p.pid for p in rest)]


async def konsulta(stack: AsyncExitStack, work: Path, db: Database, count: int) -> delivery.Konsulta:
    """Konsulta on ``count`` instances: senders on the first, the reader on the second when there
    are several."""
    bases, pids = await instances(stack, work, db, count)
    issuer = DevIssuer(work / "dev-issuer-key.pem", issuer="konsulta-dev", audience="consult")
    return delivery.Konsulta(bases[0], issuer, pids[0], reader_base=bases[1 if count > 1 else 0], pids=pids)


async def relay(stack: AsyncExitStack, work: Path, db: Database) -> delivery.Relay:
    procs = Processes(work)
    stack.push(procs)
    port = delivery.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    proc = await procs.start("relay", [sys.executable, str(ROOT / "bench" / "reference_relay.py"), str(port), db.url],
                             env, f"http://127.0.0.1:{port}/healthz")
    return delivery.Relay(f"http://127.0.0.1:{port}", proc.pid)


async def measure(target: delivery.Target, db: Database, args: argparse.Namespace) -> dict[str, float]:
    """Warm up (every path and table touched), vacuum and analyse, then measure."""
    await delivery.throughput(target, SENDERS, max(1, args.warmup // SENDERS))
    await db.vacuum()
    progress(f"{target.name}: warmed up; VACUUM (ANALYZE) done")
    # What the processes use with no message in flight (heartbeats, leases, the live feed): the
    # one-at-a-time CPU figure includes it for the time each message takes.
    cpu0 = delivery.server_cpu(target)
    await asyncio.sleep(args.idle)
    result = {"idle_ms_s": (delivery.server_cpu(target) - cpu0) * 1000 / args.idle}
    result |= await delivery.latency(target, args.messages)
    under_load: dict[str, float] = {}
    result["tp32"] = await delivery.throughput(target, SENDERS, max(1, args.throughput_messages // SENDERS), under_load)
    result["cpu_ms_32"] = under_load["cpu_ms"]
    result["duplicates"] += under_load["duplicates"]
    progress(f"{target.name}: measured")
    return result


def progress(what: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {what}", file=sys.stderr, flush=True)


async def run_target(label: str, args: argparse.Namespace, template: Database) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"konsulta-scale-{label}-")))
        db = await stack.enter_async_context(fresh(label, None if label == "relay" else template))
        if label == "relay":
            target: delivery.Target = await relay(stack, work, db)
        else:
            target = await konsulta(stack, work, db, 1 if label == "one" else 3)
        target.name = LABELS[label]
        progress(f"{target.name}: up")
        return await measure(target, db, args)


def ratio(ours: float, reference: float) -> str:
    return f"{ours / reference:8.2f}" if reference else f"{'n/a':>8}"


def report(args: argparse.Namespace, version: str, autovacuum: str, figures: dict[str, dict[str, float]]) -> None:
    a, b, c = figures["relay"], figures["one"], figures["three"]
    print(f"scale benchmark: message delivery on PostgreSQL {version}, loopback, {os.cpu_count()} cores")
    print(f"  {args.messages} latency samples one at a time; throughput: {args.throughput_messages} messages "
          f"from {SENDERS} concurrent senders")
    print(f"  {LABELS['relay']}, {LABELS['one']}, {LABELS['three']}: senders post to instance a, "
          "the reader's WebSocket is on instance b")
    print(f"  each target on a fresh database ({PREFIX}*), dropped afterwards; VACUUM (ANALYZE) run on it after "
          f"the warm-up, before measuring (autovacuum is {autovacuum} on this server)")
    print(f"{'figure':44}{'(a) relay':>11}{'(b) 1 inst':>11}{'(c) 3 inst':>11}{'b / a':>8}{'c / b':>8}")
    rows = [
        ("latency p50 (ms)", "p50"),
        ("latency p99 (ms)", "p99"),
        ("server CPU per message, one at a time (ms)", "cpu_ms"),
        ("server CPU per message, 32 senders (ms)", "cpu_ms_32"),
        ("throughput, 32 senders (msg/s)", "tp32"),
        ("server CPU while idle (ms per second)", "idle_ms_s"),
    ]
    measured = args.messages + SENDERS * max(1, args.throughput_messages // SENDERS)
    for label, key in rows:
        print(f"{label:44}{a[key]:11.2f}{b[key]:11.2f}{c[key]:11.2f}{ratio(b[key], a[key])}{ratio(c[key], b[key])}")
    print(f"{'frames of a message delivered twice':44}" + "".join(f"{f['duplicates']:11d}" for f in (a, b, c))
          + f"   (of {measured} messages, each delivered once)")
    print("server CPU is summed over the target's processes (three for (c)); PostgreSQL's own CPU is not included")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="latency samples (default 300)")
    parser.add_argument("--throughput-messages", type=int, default=1600, help="messages from 32 senders")
    parser.add_argument("--warmup", type=int, default=320, help="messages from 32 senders before vacuuming")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured per target")
    parser.add_argument("--quick", action="store_true", help="small counts, for a CI smoke run")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.throughput_messages, args.warmup, args.idle = 10, 64, 32, 0.5
    try:
        version = await admin("SHOW server_version")
        autovacuum = await admin("SHOW autovacuum")
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"scale benchmark: PostgreSQL not reachable at CONSULT_BENCH_PG_URL ({type(exc).__name__}); "
              "nothing measured", file=sys.stderr)
        raise SystemExit(UNREACHABLE) from None
    with tempfile.TemporaryDirectory(prefix="konsulta-scale-") as tmp:
        template = await upgraded_template(Path(tmp))
    try:
        figures = {label: await run_target(label, args, template) for label in ("relay", "one", "three")}
    finally:
        await template.drop()
    report(args, version.split()[0], autovacuum, figures)


if __name__ == "__main__":
    asyncio.run(main())
