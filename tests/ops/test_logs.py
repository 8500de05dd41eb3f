"""Logs: JSON lines on request, at a configurable level, with ids and never personal data."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request

import pytest

from consult.errors import ConfigError
from consult.config import load_settings
from consult.logs import JsonFormatter, configure
from tests.serverproc import ServerProcess
from tests.synthetic import hetu


@pytest.fixture
def server(tmp_path):
    proc = ServerProcess(tmp_path, CONSULT_LOG_FORMAT="json", CONSULT_LOG_LEVEL="info").start()
    yield proc
    proc.stop()


def test_a_request_with_identity_codes_in_path_and_body_leaves_none_in_the_json_log(server, tmp_path):
    """No HETU in the log however a request carries one (path, query, JSON body, a body that is not
    JSON); each request is one JSON line with request id, user id, route template, status and time."""
    codes = [hetu(n) for n in range(40, 46)]
    server.call("GET", f"/api/v1/clients/{codes[0]}", "kela.aino")
    server.call("GET", f"/api/v1/consultations/{codes[1]}?q={codes[1]}", "kela.aino")
    status, _ = server.call("POST", "/api/v1/clients", "kela.aino", {"hetu": codes[2]})
    assert status == 201
    server.call("POST", "/api/v1/clients", "kela.aino", {"hetu": codes[3] + "x"})
    question = f"Does {codes[4]} need a new rent attachment?"
    server.call("POST", "/api/v1/consultations", "kela.aino", {
        "topic": "application_intake", "urgency": "normal", "question": question, "purpose": "general",
        "target_org": "vantaa"})
    broken = urllib.request.Request(f"{server.base}/api/v1/clients", data=f'{{"hetu": "{codes[5]}"'.encode(),
                                    method="POST", headers={"Authorization": f"Bearer {server.token('kela.aino')}",
                                                            "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(broken, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    server.stop()

    text = (tmp_path / "server.log").read_text()
    for code in codes:
        assert code not in text and code[:6] + code[7:] not in text, code
    assert "rent attachment" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("route") is not None and line["logger"] == "consult.http"]
    assert len(requests) >= 6
    by_route = {(r["method"], r["route"], r["status"]) for r in requests}
    assert ("GET", "/api/v1/consultations/{id}", 404) in by_route
    assert ("POST", "/api/v1/clients", 201) in by_route
    for r in requests:
        assert len(r["request_id"]) >= 8 and r["user_id"] in ("kela.aino", "-") and r["ms"] >= 0
        assert r["level"] == "INFO" and r["time"]


def test_log_level_drops_lower_lines(capsys):
    configure("json", "warning")
    try:
        logging.getLogger("consult.test").info("not shown")
        logging.getLogger("consult.test").warning("shown id=%s", "abc")
    finally:
        configure("text", "INFO")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and json.loads(err[0])["message"] == "shown id=abc"


def test_an_exception_is_written_without_its_message():
    """An exception's message can quote input: the JSON line keeps its type and place only."""
    code = hetu(50)
    try:
        raise ValueError(f"bad value {code}")
    except ValueError:
        record = logging.LogRecord("consult.x", logging.ERROR, __file__, 1, "failed %s", (code,), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError" and code not in json.dumps(line)
    assert line["message"] == "failed [masked]"


@pytest.mark.parametrize("key,value", [("CONSULT_LOG_FORMAT", "xml"), ("CONSULT_LOG_LEVEL", "loud")])
def test_bad_log_settings_stop_start_up(key, value):
    with pytest.raises(ConfigError, match=key):
        load_settings({"CONSULT_DEV": "1", key: value})
