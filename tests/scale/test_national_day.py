"""Smoke run of bench/national_day.py --quick: three `consult serve` instances on one PostgreSQL
database, 22 counties, a few advisors at work, every expert on a socket. It asserts only what must
hold at any speed — no request failed (a 409 on a lost claim race is expected, not a failure) and
no live event was lost or delivered twice — never a timing. Skipped, saying so, when no PostgreSQL
server is reachable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_URL, ROOT


async def _reachable() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def test_a_quick_national_day_has_no_errors_and_loses_no_live_event(tmp_path) -> None:
    if not asyncio.run(_reachable()):
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; set CONSULT_TEST_PG_URL to run this")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "national_day.py"), "--quick", "--seconds", "6", "--active", "3",
         "--advisors", "30", "--logs", str(tmp_path / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "\nerrors: 0\n" in result.stdout, out
    assert "lost 0 (on 0 sockets), duplicates 0" in result.stdout, out
    assert "consultation.offered" in result.stdout and "message.created" in result.stdout, out
