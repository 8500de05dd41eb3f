"""The composition root (consult/app.py): one helper runs every background job, and when the
server shuts down no task of ours is left behind."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consult import app as root
from consult.config import Settings
from consult.errors import ConfigError
from consult.http.app import create_app


async def test_a_failing_job_keeps_its_interval_and_logs_each_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    started: list[float] = []
    enough = asyncio.Event()

    async def job() -> None:
        started.append(loop.time())
        if len(started) == 3:
            enough.set()
        raise RuntimeError("the database is away")

    with caplog.at_level(logging.ERROR, logger="consult.app"):
        async with root.periodic("flaky job", 0.05, job) as task:
            await enough.wait()
        assert task.done() and task.cancelled()
    failures = [r for r in caplog.records if "flaky job" in r.getMessage()]
    assert len(failures) == len(started) >= 3
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in failures)
    # the schedule goes on at the interval after each failure (never sooner)
    assert all(later - earlier >= 0.05 * 0.9 for earlier, later in zip(started, started[1:]))


async def test_leaving_the_context_waits_until_the_job_has_stopped() -> None:
    running, stopped = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async with root.periodic("long job", 0, job, first=0):
        await running.wait()
    assert stopped.is_set()


async def test_no_task_of_ours_is_left_after_the_app_shuts_down(settings: Settings, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    settings = dataclasses.replace(settings, issuer="https://idp.example.test", jwks=str(jwks))
    before = asyncio.all_tasks()
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    ours = {t.get_name() for t in asyncio.all_tasks() - before}
    assert {"consult:routing tick", "consult:audit checkpoint", "consult:retention run",
            "consult:ended sessions refresh", "consult:identity provider keys refresh"} <= ours
    assert (await client.get("/healthz")).status == 200
    await client.close()
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == []


async def test_a_start_up_that_fails_half_way_releases_what_it_opened(settings: Settings) -> None:
    """The database (and its writer task) opened before the failing step is closed again."""
    settings = dataclasses.replace(settings, policy_profile="no-such-profile")
    before = asyncio.all_tasks()
    client = TestClient(TestServer(create_app(settings)))
    with pytest.raises(ConfigError, match="CONSULT_POLICY_PROFILE"):
        await client.start_server()
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    await client.close()
    assert left == []
