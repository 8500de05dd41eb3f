"""Statistics for the steering meeting (docs/capabilities.md C8), each figure checked against a data set built
here through the API with a controlled clock: months in Helsinki time, nearest-rank quantiles,
SLA kept, re-offers and escalations, outcomes, disclosures and referrals, CSV, no personal data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from tests.api.routingutil import routed_api
from tests.synthetic import hetu

# Monday 5 January 2026, 09:00 in Helsinki.
START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)


async def _claim(api, cid, user="vantaa.sanna"):
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", user, expect=200)


async def _close(api, cid, outcome, user="vantaa.sanna"):
    await api.call("POST", f"/api/v1/consultations/{cid}/close", user, json={"outcome": outcome}, expect=200)


@pytest.fixture
async def data_set(aiohttp_client, settings, monkeypatch):
    api = await routed_api(aiohttp_client, settings, monkeypatch, at=START)
    # A: claimed after 60 s, answered with a data item after 120 s, advice given.
    a_ref = await api.register(hetu(6))
    a = (await api.open_consultation(topic="application_intake", pool="toimeentulotuki", client_ref=a_ref))["id"]
    api.clock.advance(seconds=60)
    await _claim(api, a)
    api.clock.advance(seconds=60)
    await api.call("POST", f"/api/v1/consultations/{a}/messages", "vantaa.sanna", expect=201,
                   json={"text": "Hakemus on käsittelyssä.",
                         "data": [{"category": "application.status", "value": "käsittelyssä"}]})
    await _close(api, a, "advice_given")
    # B: claimed after 240 s, answered after 300 s, data disclosed.
    api.clock.advance(minutes=10)
    b = (await api.open_consultation(topic="attachments", pool="toimeentulotuki"))["id"]
    api.clock.advance(seconds=240)
    await _claim(api, b)
    api.clock.advance(seconds=60)
    await api.call("POST", f"/api/v1/consultations/{b}/messages", "vantaa.sanna", json={"text": "Katso liite."},
                   expect=201)
    await _close(api, b, "data_disclosed")
    # C: "today", claimed after 9,000 s (SLA 7,200 s missed), left open.
    api.clock.advance(minutes=10)
    c = (await api.open_consultation(topic="other", urgency="today"))["id"]
    api.clock.advance(seconds=9000)
    await _claim(api, c, "vantaa.mikko")
    # D: "normal", never claimed.
    api.clock.advance(minutes=10)
    await api.open_consultation(topic="other", urgency="normal")
    # E: re-offered at 300 s, escalated at 600 s, claimed by the backup expert at 700 s, referred.
    api.clock.advance(minutes=10)
    e = (await api.open_consultation(topic="urgent_assistance", pool="toimeentulotuki"))["id"]
    assert (await api.advance(seconds=300))["reoffered"] == 1
    assert (await api.advance(seconds=300))["escalated"] == 1
    api.clock.advance(seconds=100)
    await _claim(api, e, "vantaa.liisa")
    await _close(api, e, "referred", "vantaa.liisa")
    # F: 1 February 00:30 in Helsinki (still 31 January in UTC): a § 35 referral without consent.
    api.clock.advance(seconds=(datetime(2026, 1, 31, 22, 30, tzinfo=UTC) - api.clock.now()).total_seconds())
    ref = await api.register(hetu(7))
    f = (await api.open_consultation(topic="application_intake", purpose="sh.referral", client_ref=ref))["id"]
    api.clock.advance(seconds=30)
    await _claim(api, f, "vantaa.paula")  # the county's social-work intake
    await api.call("POST", f"/api/v1/consultations/{f}/messages", "kela.aino", expect=201, json={
        "text": "Ohjaus sosiaalihuoltoon.",
        "data": [{"category": "service_need.referral", "value": "tarvitsee apua",
                  "referral": {"condition": "unable_to_look_after_self", "justification": "ei selviydy",
                               "why_no_consent": "ei tavoitettu"}}]})
    await _close(api, f, "referred", "vantaa.paula")
    api.clock.advance(seconds=(datetime(2026, 3, 10, 10, tzinfo=UTC) - api.clock.now()).total_seconds())
    return api, ref


async def test_each_figure_matches_the_known_data_set(data_set):
    api, client_ref = data_set
    report = await api.call("GET", "/api/v1/stats?from=2026-01&to=2026-02", "kela.admin", expect=200)
    assert report["quantiles"] == "nearest-rank" and report["time_zone"] == "Europe/Helsinki"
    jan, feb = report["rows"]
    assert (jan["month"], jan["origin_org"], jan["target_org"]) == ("2026-01", "kela", "vantaa")
    assert jan["consultations"] == 5
    assert jan["by_topic"] == {"application_intake": 1, "attachments": 1, "other": 2, "urgent_assistance": 1}
    assert jan["by_urgency"] == {"immediate": 3, "normal": 1, "today": 1}
    # Claims after 60, 240, 9000 and 700 s: nearest-rank median is the 2nd of 4, p90 the 4th.
    assert jan["time_to_claim_seconds"] == {"count": 4, "median": 240, "p90": 9000}
    assert jan["time_to_first_response_seconds"] == {"count": 2, "median": 120, "p90": 300}
    assert jan["sla"] == {"measured": 5, "kept": 2, "missed": 3, "kept_share": 0.4}
    assert (jan["reoffered"], jan["escalated"]) == (1, 1)
    assert jan["outcomes"] == {"advice_given": 1, "data_disclosed": 1, "referred": 1}
    assert jan["disclosures"]["total"] == 1
    assert jan["disclosures"]["by_category"] == {"application.status": 1}
    assert sum(jan["disclosures"]["by_basis"].values()) == 1
    assert jan["referrals"] == {"outcome_referred": 1, "referral_items": 0, "without_consent": 0}

    assert (feb["month"], feb["consultations"]) == ("2026-02", 1)
    assert feb["time_to_claim_seconds"] == {"count": 1, "median": 30, "p90": 30}
    assert feb["sla"]["kept"] == 1 and feb["outcomes"] == {"referred": 1}
    assert feb["disclosures"]["by_category"] == {"service_need.referral": 1}
    assert feb["referrals"] == {"outcome_referred": 1, "referral_items": 1, "without_consent": 1}

    # Only January asked for: February's consultation (UTC 31 January) stays out.
    only_jan = await api.call("GET", "/api/v1/stats?from=2026-01&to=2026-01", "vantaa.ville", expect=200)
    assert [r["month"] for r in only_jan["rows"]] == ["2026-01"] and only_jan["rows"][0] == jan


async def test_statistics_hold_no_personal_data_and_export_as_csv(data_set):
    """Property: no user id, name, client reference or consent id appears in statistics."""
    api, client_ref = data_set
    for path in ("/api/v1/stats?from=2026-01&to=2026-02", "/api/v1/stats.csv?from=2026-01&to=2026-02"):
        body = str(await api.call("GET", path, "kela.tuula", expect=200))
        for personal in ("kela.aino", "vantaa.sanna", "vantaa.liisa", "Aino", client_ref, "consent:"):
            assert personal not in body, (path, personal)
    text = await api.call("GET", "/api/v1/stats.csv?from=2026-01&to=2026-02", "kela.admin", expect=200)
    rows = list(csv.DictReader(io.StringIO(text)))
    pick = {(r["month"], r["measure"], r["key"]): r["value"] for r in rows}
    assert pick[("2026-01", "time_to_claim_seconds", "median")] == "240.0"
    assert pick[("2026-01", "sla", "kept_share")] == "0.4"
    assert pick[("2026-02", "referrals", "without_consent")] == "1"
    assert pick[("2026-01", "by_topic", "other")] == "2"


async def test_statistics_are_for_admins_and_privacy_officers(data_set):
    api, _ = data_set
    for user in ("kela.aino", "vantaa.sanna", "vantaa.paula"):
        await api.call("GET", "/api/v1/stats", user, expect=403)
    await api.call("GET", "/api/v1/stats?from=2026-13", "kela.admin", expect=400)
    await api.call("GET", "/api/v1/stats?from=2026-03&to=2026-01", "kela.admin", expect=422)
    await api.call("GET", "/api/v1/stats?from=2020-01&to=2026-01", "kela.admin", expect=422)
    default = await api.call("GET", "/api/v1/stats", "kela.admin", expect=200)
    assert (default["from"], default["to"]) == ("2025-04", "2026-03")
