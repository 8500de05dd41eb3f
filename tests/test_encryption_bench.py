"""Smoke run of bench/encryption_bench.py with small counts: it stores and reads sealed and plain
messages, then rotates the key-encryption key over a database whose keys were recorded as
`consult init` records them, and prints every figure. It asserts that the benchmark ran and what
rotation rewrapped, never how fast anything was."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_encryption_benchmark_rotates_the_keys_of_its_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env["TMPDIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "encryption_bench.py"), "--messages", "64",
                          "--rotation-messages", "200"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "store messages (msg/s)" in run.stdout and "read last 1,000 messages (ms)" in run.stdout
    rotation = re.search(r"key rotation: 200 messages in 10 consultations .*: (\d+) data keys rewrapped", run.stdout)
    assert rotation, run.stdout
    # One data key per consultation: the ten of the rotation part and the two of the first part.
    assert int(rotation.group(1)) >= 12
    assert not list(tmp_path.iterdir()), "the benchmark left files behind"
