"""/metrics: Prometheus text behind a bearer secret, with route templates and no personal data."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consult.errors import ConfigError
from consult.config import load_settings
from consult.http.app import create_app
from tests.api.wsutil import connect, next_event
from tests.conftest import Api
from tests.synthetic import hetu

SECRET = "m" * 40


@pytest.fixture
async def api(aiohttp_client, settings):
    return Api(await aiohttp_client(create_app(replace(settings, metrics_token=SECRET))))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(api: Api) -> str:
    r = await api.client.get("/metrics", headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    return await r.text()


async def test_metrics_do_not_exist_unless_configured(aiohttp_client, settings):
    """Not public by default: without CONSULT_METRICS_TOKEN /metrics is an unknown path."""
    client = await aiohttp_client(create_app(settings))
    r = await client.get("/metrics")
    assert r.status == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {SECRET}", f"Bearer {SECRET}x"])
async def test_metrics_need_the_secret(api, header):
    headers = {"Authorization": header} if header else {}
    r = await api.client.get("/metrics", headers=headers)
    assert r.status == 404
    assert "konsulta_" not in await r.text()


async def test_metrics_count_requests_by_template_sockets_events_decisions_audit_and_db(api):
    """Requests by route template and status with latencies, open sockets, delivered events,
    policy decisions by effect, the audit tree and its checkpoint age, database time — and no
    raw path, id, client reference or identity code in any label."""
    sanna = await connect(api, "vantaa.sanna")
    code = hetu(7)
    client_ref = await api.register(code)
    created = await api.open_consultation(pool="toimeentulotuki", client_ref=client_ref)
    await next_event(sanna, "consultation.offered")
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"text": "The rent attachment is still missing.",
                         "data": [{"category": "application.status", "value": "waiting for attachments"}]})
    await api.call("GET", f"/api/v1/consultations/{code}", "vantaa.sanna", expect=404)
    await api.call("GET", "/api/v1/audit/checkpoint", "vantaa.ville", expect=200)

    text = await scrape(api)
    for secret in (cid, client_ref, code, "kela.aino", "vantaa.sanna", "attachments"):
        assert secret not in text, secret
    got = samples(text)
    one = ("konsulta_http_requests_total",
           (("method", "GET"), ("route", "/api/v1/consultations/{id}"), ("status", "200")))
    assert got[one] == 1
    assert got[("konsulta_http_requests_total",
                (("method", "GET"), ("route", "/api/v1/consultations/{id}"), ("status", "404")))] == 1
    assert got[("konsulta_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/api/v1/consultations/{id}")))] == 2
    assert got[("konsulta_websockets_open", ())] == 1
    assert got[("konsulta_ws_events_delivered_total", (("type", "consultation.offered"),))] >= 1
    assert got[("konsulta_policy_decisions_total", (("effect", "permit"),))] >= 1
    assert got[("konsulta_audit_tree_size", ())] > 0
    assert got[("konsulta_audit_checkpoint_age_seconds", ())] >= 0
    assert got[("konsulta_db_statement_duration_seconds_count", ())] > 0
    await sanna.close()


def test_metrics_token_must_be_long():
    with pytest.raises(ConfigError, match="CONSULT_METRICS_TOKEN"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_METRICS_TOKEN": "short"})

