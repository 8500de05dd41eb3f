"""Anomaly flags for the privacy officer (docs/capabilities.md C5), with the clock pinned: many distinct clients
per user per hour (configurable), access outside office hours in Helsinki, every break-glass and
every § 35(2) referral without consent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consult.http.app import create_app
from consult.model import FixedClock
from consult.services.anomalies import AccessAnomalies, AnomalyRules
from tests.conftest import Api
from tests.synthetic import hetu

PO = "kela.tuula"
# Tuesday 3 March 2026, 10:15 in Helsinki (UTC+2).
OFFICE = datetime(2026, 3, 3, 8, 15, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(OFFICE)


@pytest.fixture
async def api(aiohttp_client, settings, clock) -> Api:
    app = create_app(settings.with_overrides(audit_clients_per_hour=3), clock=clock)
    return Api(await aiohttp_client(app))


async def _touch(api: Api, n: int, user: str = "kela.aino") -> str:
    ref = await api.register(hetu(n), user)
    await api.call("GET", f"/api/v1/clients/{ref}/consents", user, expect=200)
    return ref


async def _anomalies(api: Api, user: str = PO, query: str = "") -> list[dict]:
    return (await api.call("GET", f"/api/v1/audit/anomalies{query}", user, expect=200))["items"]


async def test_many_distinct_clients_in_an_hour(api, clock):
    for n in range(3):
        await _touch(api, n)
    assert not [a for a in await _anomalies(api) if a["kind"] == "many_clients"]  # 3 is the threshold
    await _touch(api, 3)
    [flag] = [a for a in await _anomalies(api) if a["kind"] == "many_clients"]
    assert flag["actor"] == {"id": "kela.aino", "org": "kela"} and flag["count"] == 4 and flag["threshold"] == 3
    assert flag["at"] == "2026-03-03T08:00:00.000Z"
    # The next hour starts afresh; the same clients again are not new clients.
    clock.advance(hours=1)
    for n in range(4):
        await api.call("GET", f"/api/v1/clients/{await api.register(hetu(n))}/consents", "kela.aino", expect=200)
    assert len([a for a in await _anomalies(api) if a["kind"] == "many_clients"]) == 2


async def test_off_hours_access_in_helsinki_time(api, clock):
    await _touch(api, 10)
    assert not [a for a in await _anomalies(api) if a["kind"] == "off_hours"]
    clock.advance(hours=10)  # 20:15 in Helsinki
    await _touch(api, 11)
    clock.advance(days=4, hours=-6)  # Saturday 14:15
    await _touch(api, 12)
    flags = [a for a in await _anomalies(api) if a["kind"] == "off_hours"]
    assert sorted(f["date"] for f in flags) == ["2026-03-03", "2026-03-07"]
    assert all(f["actor"]["id"] == "kela.aino" for f in flags)


async def test_privacy_officers_own_queries_are_not_access_anomalies(api, clock):
    clock.advance(hours=12)  # 22:15
    for n in range(5):
        ref = await _touch(api, 20 + n, user="kela.eero")
        await api.call("GET", f"/api/v1/clients/{ref}/access-report", PO, expect=200)
    flags = await _anomalies(api)
    assert {f["actor"]["id"] for f in flags} == {"kela.eero"}


async def test_referral_without_consent_is_listed_for_both_organisations(api):
    ref = await api.register(hetu(30))
    created = await api.open_consultation(purpose="sh.referral", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)  # the intake
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "urgent referral", "data": [{
            "category": "service_need.referral", "value": "NEEDS-HELP",
            "referral": {"condition": "unable_to_look_after_self",
                         "justification": "Cannot manage own affairs.",
                         "why_no_consent": "No one reachable to consent."}}]})
    for officer in (PO, "vantaa.ville"):
        [flag] = [a for a in await _anomalies(api, officer) if a["kind"] == "referral_without_consent"]
        assert flag["client_ref"] == ref and flag["consultation_id"] == cid and flag["recipient_org"] == "vantaa"
    await api.call("GET", "/api/v1/audit/anomalies?from=2026-03-01&to=2026-03-02", PO, expect=200)
    await api.call("GET", "/api/v1/audit/anomalies?from=2025-01-01&to=2026-03-02", PO, expect=422)
    await api.call("GET", "/api/v1/audit/anomalies?from=nonsense", PO, expect=400)


def test_rules_are_pure_and_configurable():
    rules = AnomalyRules(clients_per_hour=1, office_hours=(8, 16), office_days=(1, 4))
    folded = AccessAnomalies(rules)
    thursday_morning = datetime(2026, 3, 5, 6, 30, tzinfo=UTC)  # 08:30 Helsinki
    friday = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    folded.feed([(0, thursday_morning, "u1", "kela", "c-1", "consultation.read"),
                 (1, thursday_morning, "u1", "kela", "c-2", "consultation.read"),
                 (2, friday, "u2", "kela", "c-3", "messages.read"),
                 (3, friday, "po", "kela", "c-3", "audit.access_report")])
    kinds = sorted((a["kind"], a["actor"]["id"]) for a in folded.results())
    assert kinds == [("many_clients", "u1"), ("off_hours", "u2")]
