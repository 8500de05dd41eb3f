"""The checkpoint file and the witness: every signed checkpoint is appended, one signed note per
line, to a file outside the database (and offered to a witness), and neither ever holds up a
write."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web

from consult.audit.checkpoint import open_checkpoint
from consult.config import load_settings
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from consult.storage.checkpoint_file import CheckpointFile
from tests.conftest import Api
from tests.synthetic import hetu

PO = "kela.tuula"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def _activity(api: Api, n: int = 0) -> str:
    ref = await api.register(hetu(n))
    await api.open_consultation(client_ref=ref)
    return ref


async def test_every_checkpoint_is_appended_to_the_file_as_a_signed_line(api, settings):
    """The file beside the database holds each signed checkpoint the database holds, one per line,
    each verifying with the log's verifier key."""
    path = settings.effective_checkpoint_file
    assert path == settings.data_dir / "audit-checkpoints.jsonl"
    await _activity(api, 1)
    first = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await _activity(api, 2)
    second = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    vkey = await api.call("GET", "/api/v1/audit/verifier-key", PO, expect=200)
    lines = _lines(path)
    assert [line["note"] for line in lines] == [first, second]
    for line in lines:
        head = open_checkpoint(line["note"], vkey.strip(), origin="konsulta.local/audit")
        assert (head.size, head.root.hex(), line["kind"]) == (line["size"], line["root"], "checkpoint")
    db = Path(settings.database_url.split("///", 1)[1])
    await api.client.close()
    with sqlite3.connect(db) as con:
        stored = [note for (note,) in con.execute("SELECT note FROM audit_checkpoints ORDER BY seq")]
    assert [line["note"] for line in _lines(path)] == stored  # the shutdown checkpoint too


async def test_checkpoint_file_is_configurable(aiohttp_client, settings, tmp_path):
    elsewhere = tmp_path / "anchors" / "konsulta.checkpoints"
    assert load_settings({"CONSULT_DEV": "1", "CONSULT_CHECKPOINT_FILE": str(elsewhere)}).checkpoint_file == elsewhere
    api = Api(await aiohttp_client(create_app(settings.with_overrides(checkpoint_file=elsewhere))))
    await _activity(api)
    note = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    assert _lines(elsewhere)[-1]["note"] == note
    assert not (settings.data_dir / "audit-checkpoints.jsonl").exists()


def test_torn_last_line_is_cut_before_the_next_append(tmp_path):
    """A crash in the middle of a write leaves a line without its newline; it was never
    acknowledged, so the next append replaces it instead of gluing onto it."""
    file = CheckpointFile(tmp_path / "cp.jsonl")
    file.append({"size": 1, "note": "a"})
    with open(file.path, "ab") as fh:
        fh.write(b'{"size": 2, "no')
    assert file.last().data == {"size": 1, "note": "a"}
    file.append({"size": 3, "note": "c"})
    assert [line.data["size"] for line in file.lines()] == [1, 3]
    assert [line.data["size"] for line in file.backwards()] == [3, 1]


def test_append_refuses_when_another_process_appended_since_the_last_read(tmp_path):
    file = CheckpointFile(tmp_path / "cp.jsonl")
    file.append({"size": 1})
    seen = file.end()
    file.append({"size": 2})  # another process
    assert file.append({"size": 3}, expect_end=seen) is False
    assert [line.data["size"] for line in file.lines()] == [1, 2]


async def test_a_checkpoint_file_of_another_deployment_stops_start_up(aiohttp_client, settings):
    """Configuration, not tampering: the file names another origin."""
    path = settings.effective_checkpoint_file
    path.write_text(json.dumps({"kind": "checkpoint", "note": "konsulta.other/audit\n1\nAAAA\n\n— x y\n"}) + "\n")
    with pytest.raises(ConfigError, match="CONSULT_CHECKPOINT_FILE.*konsulta.other/audit"):
        await aiohttp_client(create_app(settings))


async def test_an_unwritable_checkpoint_file_stops_start_up(aiohttp_client, settings, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    api = Api(await aiohttp_client(create_app(settings)))
    await _activity(api)
    await api.client.close()
    with pytest.raises(ConfigError, match="CONSULT_CHECKPOINT_FILE"):
        await aiohttp_client(create_app(settings.with_overrides(checkpoint_file=blocked / "cp.jsonl")))


async def test_start_up_anchors_a_tail_a_crash_left_without_a_checkpoint(aiohttp_client, settings):
    """Records committed after the last checkpoint of a killed server are anchored when it starts."""
    api = Api(await aiohttp_client(create_app(settings)))
    await _activity(api)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await _activity(api, 5)
    size = await api.client.app[keys.AUDIT].sync()
    path = settings.effective_checkpoint_file
    kept = path.read_bytes()
    await api.client.close()
    path.write_bytes(kept)  # as if the process had died before its shutdown checkpoint
    assert _lines(path)[-1]["size"] < size
    await aiohttp_client(create_app(settings))
    assert _lines(path)[-1]["size"] == size


class _WitnessServer:
    """A witness run by someone else: keeps what it is sent; can be told to fail."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.fail = False
        self.content_types: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail:
            return web.Response(status=503)
        self.content_types.append(request.content_type)
        self.received.append(await request.text())
        return web.Response(status=200)


async def _witnessed(aiohttp_client, aiohttp_server, settings):
    witness = _WitnessServer()
    app = web.Application()
    app.router.add_post("/add-checkpoint", witness.handle)
    server = await aiohttp_server(app)
    url = str(server.make_url("/add-checkpoint"))
    api = Api(await aiohttp_client(create_app(settings.with_overrides(witness_url=url))))
    return api, witness


async def _settled(api: Api) -> None:
    anchor = api.client.app[keys.AUDIT].anchor
    for _ in range(100):
        task = anchor.witness._task
        if task is None or task.done():
            return
        await asyncio.sleep(0.02)


async def test_checkpoints_are_posted_to_the_witness(aiohttp_client, aiohttp_server, settings):
    api, witness = await _witnessed(aiohttp_client, aiohttp_server, settings)
    await _activity(api)
    note = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await _settled(api)
    assert witness.received == [note] and witness.content_types == ["text/plain"]


async def test_a_failing_witness_never_blocks_writes_and_is_retried(aiohttp_client, aiohttp_server, settings,
                                                                    caplog):
    """The witness answers 503: writes and checkpoints go on, the failure is logged without any
    personal data or the URL, and the next checkpoint is sent once the witness is back."""
    api, witness = await _witnessed(aiohttp_client, aiohttp_server, settings)
    witness.fail = True
    caplog.set_level(logging.WARNING, logger="consult.audit")
    ref = await _activity(api, 1)
    await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await _settled(api)
    assert witness.received == []
    failures = [r.getMessage() for r in caplog.records if "witness" in r.getMessage()]
    assert failures and all("503" in m for m in failures)
    for message in failures:
        assert ref not in message and hetu(1) not in message and "127.0.0.1" not in message
    await _activity(api, 2)  # writes are not held up
    witness.fail = False
    latest = await api.call("GET", "/api/v1/audit/checkpoint", PO, expect=200)
    await _settled(api)
    assert witness.received == [latest]  # only the newest is sent


def test_witness_url_must_be_https_except_on_localhost():
    with pytest.raises(ConfigError, match="CONSULT_WITNESS_URL"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_WITNESS_URL": "http://witness.example/add"})
    assert load_settings({"CONSULT_DEV": "1", "CONSULT_WITNESS_URL": "https://witness.example/add"}).witness_url
    assert "witness.example" not in repr(load_settings({"CONSULT_DEV": "1",
                                                        "CONSULT_WITNESS_URL": "https://witness.example/a"}))


async def test_a_missing_checkpoint_file_stops_start_up_once_checkpoints_were_kept_in_one(aiohttp_client, settings):
    """A restore that forgot the checkpoint file must not start a new one silently: that would
    drop the history the old file pinned."""
    api = Api(await aiohttp_client(create_app(settings)))
    await _activity(api)
    await api.client.close()
    path = settings.effective_checkpoint_file
    kept = _lines(path)[-1]["size"]
    path.unlink()
    with pytest.raises(ConfigError, match=f"CONSULT_CHECKPOINT_FILE: .* up to size {kept} .*acknowledge-restore"):
        await aiohttp_client(create_app(settings))
