"""Acts of the command line name a person in the audit log: the operating-system user, or `--actor`."""

from __future__ import annotations

import asyncio
import getpass
import sqlite3

from tests.test_cli import _run
from tests.test_cli_keys import _db_path, _env
from tests.test_deployment_keys import _serve_once


def _records(settings, action: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(_db_path(settings)) as conn:
        return list(conn.execute("SELECT actor_id, actor_role, source FROM audit_events WHERE action = ? "
                                 "ORDER BY leaf_index", (action,)))


async def test_key_acts_record_the_os_user_or_the_named_actor(aiohttp_client, settings):
    """A key rotation from the command line is recorded as system:cli:<OS user>, not an anonymous
    system:keys; with --actor the named person is the actor and the OS user stays the source."""
    await _serve_once(aiohttp_client, settings)
    env, me = _env(settings), getpass.getuser()
    rotated = await asyncio.to_thread(_run, ["keys", "rotate"], env, settings.data_dir)
    assert rotated.returncode == 0, rotated.stderr
    retired = await asyncio.to_thread(_run, ["keys", "retire", "1", "--actor", "kela.admin"], env, settings.data_dir)
    assert retired.returncode == 0, retired.stderr
    assert _records(settings, "keys.rotate") == [(f"system:cli:{me}", "operator", f"cli:{me}")]
    assert _records(settings, "keys.retire") == [("kela.admin", "operator", f"cli:{me}")]


async def test_retention_run_takes_an_actor_and_refuses_a_malformed_one(aiohttp_client, settings):
    await _serve_once(aiohttp_client, settings)
    env = _env(settings)
    ok = await asyncio.to_thread(_run, ["retention", "run", "--actor", "vantaa.admin"], env, settings.data_dir)
    assert ok.returncode == 0, ok.stderr
    bad = await asyncio.to_thread(_run, ["retention", "run", "--actor", "two words"], env, settings.data_dir)
    assert bad.returncode == 2 and bad.stderr.startswith("usage: --actor"), bad.stderr
