"""Smoke run of bench/scale_bench.py --quick: the benchmark of many instances on PostgreSQL starts
its targets, measures them and prints a figure for each, delivers no message twice, and drops the
databases it created. It asserts that the benchmark ran, never how fast anything was. Skipped, saying so, when no
PostgreSQL server is reachable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PG_URL, ROOT

ADMIN_URL = PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
ROWS = ("latency p50 (ms)", "latency p99 (ms)", "server CPU per message, one at a time (ms)",
        "server CPU per message, 32 senders (ms)", "throughput, 32 senders (msg/s)")


async def _bench_databases() -> set[str]:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'kwtc\\_%'")}
    finally:
        await conn.close()


def test_the_quick_scale_benchmark_prints_every_figure_for_every_target(tmp_path: Path) -> None:
    try:
        before = asyncio.run(_bench_databases())
    except (OSError, asyncpg.PostgresError):
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_BENCH_PG_URL": ADMIN_URL, "TMPDIR": str(tmp_path)})
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "scale_bench.py"), "--quick"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.splitlines()
    assert "VACUUM (ANALYZE) run on it after the warm-up, before measuring" in run.stdout
    for row in ROWS:
        line = next((line for line in lines if line.startswith(row)), None)
        assert line is not None, f"no row {row!r} in:\n{run.stdout}"
        # (a) relay, (b) one instance, (c) three instances: each a number; b / a, c / b: a number, or
        # n/a where the figure divided by is 0 (a quick run's CPU can stay under one clock tick)
        values = line[len(row):].split()
        assert len(values) == 5, line
        figures = [float(v) for v in values[:3]]
        for ratio, divisor in zip(values[3:], figures[:2], strict=True):
            assert (ratio == "n/a") == (divisor == 0), line
            if ratio != "n/a":
                float(ratio)
    throughput = next(line for line in lines if line.startswith(ROWS[-1]))
    assert all(float(v) > 0 for v in throughput[len(ROWS[-1]):].split()[:3]), "a target delivered nothing"
    twice = next(line for line in lines if line.startswith("frames of a message delivered twice"))
    assert twice.split()[6:9] == ["0", "0", "0"], twice  # once to each connection, on one instance or across
    assert asyncio.run(_bench_databases()) <= before, "the benchmark left a database behind"
