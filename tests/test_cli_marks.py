"""`consult audit export` tells the operator that what it writes is secret (621/1999 § 24(1)
25 k.), on standard error, and leaves the CSV exactly parseable."""

from __future__ import annotations

import csv

from consult.model import secrecy
from tests.test_cli import _run
from tests.test_cli_keys import _env


def test_cli_export_is_marked_beside_the_data(settings, tmp_path):
    env = _env(settings)
    assert _run(["init"], env, settings.data_dir).returncode == 0
    out = tmp_path / "audit.csv"
    result = _run(["audit", "export", "--format", "csv", "-o", str(out)], env, settings.data_dir)
    assert result.returncode == 0, result.stderr
    assert secrecy.MARKING["fi"] in result.stderr and secrecy.MARKING["sv"] in result.stderr
    with out.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header[0] != secrecy.MARKING["fi"] and "leaf_hash" in header
