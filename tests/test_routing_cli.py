"""`consult stats`: the steering-meeting statistics from the command line, as CSV or JSON."""

from __future__ import annotations

import json

from tests.test_cli import _run


def test_stats_prints_csv_and_json(tmp_path):
    env = {"CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(tmp_path), "CONSULT_KEY_FILE": str(tmp_path / "keys.json"),
           "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}"}
    result = _run(["stats", "--org", "vantaa", "--from", "2026-01", "--to", "2026-02"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["month,origin_org,target_org,measure,key,value"]
    result = _run(["stats", "--org", "vantaa", "--from", "2026-01", "--to", "2026-02", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == []
    bad = _run(["stats", "--org", "vantaa", "--from", "2026-13"], env, tmp_path)
    assert bad.returncode == 2 and "--from" in bad.stderr
