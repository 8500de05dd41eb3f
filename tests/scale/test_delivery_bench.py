"""Smoke run of bench/delivery_bench.py --quick: Konsulta on SQLite and the reference relay are
started, measured and stopped, every figure is printed for both, and no message reaches the
recipient twice. It asserts that the benchmark ran, never how fast anything was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ROWS = ("latency p50 (ms)", "latency p99 (ms)", "server CPU per message, one at a time (ms)",
        "server CPU per message, 32 senders (ms)", "throughput, 1 sender (msg/s)",
        "throughput, 8 senders (msg/s)", "throughput, 32 senders (msg/s)")


def test_the_quick_delivery_benchmark_prints_every_figure_for_both_servers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env["TMPDIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "delivery_bench.py"), "--quick"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.splitlines()
    for row in ROWS:
        line = next((line for line in lines if line.startswith(row)), None)
        assert line is not None, f"no row {row!r} in:\n{run.stdout}"
        konsulta, reference, ratio = line[len(row):].split()[:3]
        assert float(konsulta) >= 0 and float(reference) >= 0, line
        assert (ratio == "n/a") == (float(reference) == 0), line
    for row in ROWS[-3:]:
        line = next(line for line in lines if line.startswith(row))
        assert all(float(v) > 0 for v in line[len(row):].split()[:2]), f"a server delivered nothing: {line}"
    twice = next(line for line in lines if line.startswith("frames of a message delivered twice"))
    assert twice.split()[-2:] == ["0", "0"], twice
    assert not list(tmp_path.iterdir()), "the benchmark left its working directory behind"
