"""The limits SECURITY.md states, proven both ways: someone who can rewrite both the database and
the checkpoint file (without the signing key) can roll both back unseen by every local check, and
a holder of the signing key can rewrite and re-sign the whole history — but a checkpoint a witness
(or an auditor) holds from before still catches either."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from aiohttp import web

from consult.audit.checkpoint import checkpoint_body, sign_note
from consult.audit.merkle import MerkleTree
from consult.crypto import signing
from consult.http import keys
from consult.http.app import create_app
from tests.audit_log.test_audit_log_restore import _cli
from tests.audit_log.test_audit_log_tamper import _rehash
from tests.conftest import Api
from tests.synthetic import hetu

PO = "kela.tuula"
ORIGIN = "konsulta.local/audit"


async def _witnessed_log(aiohttp_client, aiohttp_server, settings) -> tuple[list[str], Path]:
    """A log served with a witness: three checkpoints, each POSTed to it."""
    received: list[str] = []

    async def add(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.Response(status=200)

    witness = web.Application()
    witness.router.add_post("/add", add)
    server = await aiohttp_server(witness)
    api = Api(await aiohttp_client(create_app(settings.with_overrides(witness_url=str(server.make_url("/add"))))))
    for n in range(3):
        ref = await api.register(hetu(40 + n))
        await api.open_consultation(client_ref=ref)
        await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
        trail = api.client.app[keys.AUDIT]
        for _ in range(100):
            if not trail.anchor.witness.pending:
                break
            await asyncio.sleep(0.02)
    await api.client.close()
    return received, Path(settings.database_url.split("///", 1)[1])


def _file(work: Path) -> Path:
    return work / "audit-checkpoints.jsonl"


async def test_database_and_file_rolled_back_together_pass_locally_but_not_against_the_witness(
        aiohttp_client, aiohttp_server, settings, tmp_path):
    """File-system access (the database file and the checkpoint file), no signing key: both cut
    back to an earlier checkpoint agree with each other; only the witness's newer copy tells."""
    received, db = await _witnessed_log(aiohttp_client, aiohttp_server, settings)
    lines = _file(tmp_path).read_text().splitlines()
    assert len(received) == len(lines) >= 3  # the witness holds every checkpoint the file holds
    keep = json.loads(lines[0])["size"]
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM audit_events WHERE leaf_index >= ?", (keep,))
        con.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (keep,))
        con.execute("UPDATE audit_head SET size = ?", (keep,))
    _file(tmp_path).write_text(lines[0] + "\n")
    local = _cli(tmp_path, db, "audit", "verify")
    assert local.returncode == 0, local.stdout + local.stderr  # every local check passes
    saved = tmp_path / "witness-copy.txt"
    saved.write_text(received[-1])
    caught = _cli(tmp_path, db, "audit", "verify", "--checkpoint", str(saved))
    assert caught.returncode == 1 and "records were deleted" in caught.stdout, caught.stdout


async def test_a_signing_key_holder_defeats_every_local_check_but_not_an_earlier_witness_copy(
        aiohttp_client, aiohttp_server, settings, tmp_path):
    """Database, file system and the signing key: a record rewritten, every hash and checkpoint
    recomputed and re-signed, the checkpoint file replaced. Nothing local can tell; a checkpoint
    the witness took before the rewrite still does."""
    received, db = await _witnessed_log(aiohttp_client, aiohttp_server, settings)
    seed = signing.load_signing_key(tmp_path / "audit-signing.key")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE audit_events SET actor_id = 'someone.else' WHERE leaf_index = 1")
        _rehash(con, 1)
        tree = MerkleTree(bytes(h) for (h,) in con.execute("SELECT leaf_hash FROM audit_events ORDER BY leaf_index"))
        note = sign_note(checkpoint_body(ORIGIN, tree.size, tree.root()), ORIGIN, seed)
        con.execute("UPDATE audit_checkpoints SET note = ?, tree_size = ?, root_hash = ?",
                    (note, tree.size, tree.root()))
    _file(tmp_path).write_text(json.dumps({"kind": "checkpoint", "size": tree.size, "note": note}) + "\n")
    local = _cli(tmp_path, db, "audit", "verify")
    assert local.returncode == 0, local.stdout + local.stderr  # every local check passes
    saved = tmp_path / "witness-copy.txt"
    saved.write_text(received[0])
    caught = _cli(tmp_path, db, "audit", "verify", "--checkpoint", str(saved))
    assert caught.returncode == 1 and "external checkpoint" in caught.stdout, caught.stdout
