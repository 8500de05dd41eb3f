"""The security floor (docs/capabilities.md): the OpenAPI document is fuzzed (schemathesis) with no 5xx
and no response outside it.

A real demo server runs in a subprocess; every documented operation gets generated requests —
valid and invalid — as an advisor, an expert and a privacy officer. Each answer must not be a
5xx, must have a documented status and content type, and must match the documented schema.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("KONSULTA_FUZZ_EXAMPLES") or examples(12, 60))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Not plain HTTP operations: the WebSocket upgrade and the development-only endpoints.
SKIP_PATHS = ("/api/v1/ws", "/api/v1/dev/users", "/api/v1/dev/token")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update({"CONSULT_DATA_DIR": str(tmp), "CONSULT_KEY_FILE": str(tmp / "keys.json"),
                "CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}",
                "CONSULT_POLICY_DIR": str(ROOT / "policies")})
    log = (tmp / "server.log").open("w")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "consult", "serve", "--demo", "--port", str(port)],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()
    err = (tmp / "server.log").read_text()
    # The server's own log must not show an unhandled error for anything the fuzzer sent.
    assert "Traceback" not in err, err[-4000:]


def _token(base: str, user: str) -> str:
    request = urllib.request.Request(f"{base}/api/v1/dev/token", data=json.dumps({"user_id": user}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["token"]


@pytest.mark.parametrize("user", ["kela.aino", "vantaa.sanna", "kela.tuula"])
def test_openapi_fuzz_finds_no_5xx_and_no_undocumented_answer(server: str, user: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {_token(server, user)}"}
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIP_PATHS:
            continue
        tested += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=server, headers=headers, checks=CHECKS, timeout=15)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert tested > 40
    assert not failures, "\n\n".join(failures)
