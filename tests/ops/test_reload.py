"""SIGHUP reloads the policy files and the JWKS without dropping connections; a policy that fails
to load leaves the one in force, with one log line."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from consult.http import keys
from consult.http.app import create_app, reload_configuration
from consult.policy.model import ItemRequest, Party
from tests.conftest import ROOT
from tests.serverproc import ServerProcess

RULE = "vantaa-assessment-only-by-social-worker"


def drop_rule(policies: Path, rule_id: str) -> None:
    path = policies / "vantaa.toml"
    blocks = path.read_text().split("[[rule]]")
    path.write_text("[[rule]]".join(b for b in blocks if f'"{rule_id}"' not in b))


def break_policy(policies: Path) -> None:
    with (policies / "vantaa.toml").open("a") as fh:
        fh.write('\n[[rule]]\nid = "broken"\neffect = "maybe"\n')


def assessment_to_kela() -> ItemRequest:
    return ItemRequest(Party("vantaa", "expert"), Party("kela", "advisor"), "social_work.assessment", "general",
                       "cl_x", None, (), None, datetime.now(UTC))


async def test_reload_changes_decisions_and_a_broken_policy_keeps_the_old(aiohttp_client, settings, tmp_path, caplog):
    """The running engine decides by the reloaded files; a broken file changes nothing and says so once."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    client = await aiohttp_client(create_app(replace(settings, policy_dir=policies)))
    app = client.app
    engine = app[keys.POLICY]
    assert engine.decide(assessment_to_kela()).rule_id == RULE
    drop_rule(policies, RULE)
    await reload_configuration(app)
    assert app[keys.POLICY] is engine
    assert engine.decide(assessment_to_kela()).rule_id != RULE
    version = engine.version
    break_policy(policies)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="consult.app"):
        await reload_configuration(app)
    refused = [r for r in caplog.records if "policy reload refused" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage()
    assert engine.version == version


async def _wait_for_line(log: Path, fragment: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(fragment in line for line in log.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, f"no {fragment!r} in the server log"
        await asyncio.sleep(0.1)


async def test_sighup_to_a_running_server_keeps_its_websocket_and_reloads_policy(tmp_path):
    """A real `consult serve`: SIGHUP reloads the policy (the listing changes), a WebSocket opened
    before stays open across both reloads, and an invalid policy leaves the previous one in force."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    server = ServerProcess(tmp_path, CONSULT_POLICY_DIR=str(policies), CONSULT_LOG_FORMAT="json")
    await asyncio.to_thread(server.start)
    log = tmp_path / "server.log"
    headers = {"Authorization": f"Bearer {server.token('vantaa.sanna')}"}
    try:
        async with aiohttp.ClientSession() as session:
            async def policy() -> dict:
                async with session.get(f"{server.base}/api/v1/policy", headers=headers) as r:
                    assert r.status == 200
                    return await r.json()

            async def alive(ws: aiohttp.ClientWebSocketResponse) -> None:
                await ws.send_json({"type": "ping"})
                while (msg := await ws.receive_json(timeout=10))["type"] != "pong":
                    pass

            ws = await session.ws_connect(f"ws://127.0.0.1:{server.port}/api/v1/ws")
            await ws.send_json({"type": "auth", "token": server.token("vantaa.sanna")})
            assert (await ws.receive_json(timeout=10))["type"] == "ready"
            before = await policy()
            assert RULE in {r["id"] for r in before["items"]}

            drop_rule(policies, RULE)
            server.proc.send_signal(signal.SIGHUP)
            await _wait_for_line(log, "policy reloaded")
            after = await policy()
            assert after["version"] != before["version"]
            assert RULE not in {r["id"] for r in after["items"]}
            await alive(ws)

            break_policy(policies)
            server.proc.send_signal(signal.SIGHUP)
            await _wait_for_line(log, "policy reload refused")
            assert (await policy())["version"] == after["version"]
            await alive(ws)
            assert not ws.closed
            await ws.close()
    finally:
        await asyncio.to_thread(server.stop)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert sum("policy reload refused" in line["message"] for line in lines) == 1


async def test_reload_replaces_the_trusted_keys_from_the_jwks(aiohttp_client, settings, tmp_path):
    """After a reload the identity provider's new key is trusted and a dropped key is not."""
    from consult.auth.dev import DevIssuer

    jwks, iss = tmp_path / "jwks.json", "https://idp.example.org/realms/staff"
    old, new = (DevIssuer(tmp_path / f"idp-{n}.pem", issuer=iss, audience=settings.audience)
                for n in ("old", "new"))
    jwks.write_text(json.dumps({"keys": [old.jwk]}))
    client = await aiohttp_client(create_app(replace(settings, jwks=str(jwks), issuer=iss)))

    async def status(issuer: DevIssuer) -> int:
        token = issuer.mint(sub="kela.aino", org="kela", roles=["advisor"])
        r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return r.status

    assert (await status(old), await status(new)) == (200, 401)
    jwks.write_text(json.dumps({"keys": [new.jwk]}))
    await reload_configuration(client.app)
    assert (await status(old), await status(new)) == (401, 200)
