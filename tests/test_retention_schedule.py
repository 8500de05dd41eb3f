"""Retention per record type and controller (docs/capabilities.md C4): unclosed consultations age out, ended
consents, revoked prohibitions and clients with nothing left are deleted, the audit log is never
deleted, and every close, shred and deletion is audited without personal data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from consult.config import load_settings
from consult.errors import ConfigError
from consult.http import keys
from consult.http.app import create_app
from consult.model import FixedClock
from consult.model.retention import DEFAULTS, KINDS, RetentionSchedule
from tests.conftest import Api
from tests.synthetic import hetu


async def _elapse(api: Api, clock: FixedClock, *, days: int) -> None:
    """Days pass at once on the pinned clock; a running service signs a checkpoint every
    interval meanwhile, so the log stays anchored (consult/audit/verify.py: unanchored records)."""
    await api.client.app[keys.AUDIT].checkpoint_now()
    clock.advance(days=days)

# The pinned clock starts on 5 January 2026: the consent runs to the end of that year.
CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "oral", "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä",
           "valid_until": "2026-12-31"}


def _schedule(**days: int) -> RetentionSchedule:
    return RetentionSchedule(days=days)


async def _api(aiohttp_client, settings, schedule: RetentionSchedule, clock: FixedClock) -> Api:
    return Api(await aiohttp_client(create_app(replace(settings, retention=schedule), clock=clock)))


async def _rows(api: Api, sql: str, **params) -> list:
    async with api.client.app[keys.DB].read() as conn:
        return list((await conn.execute(text(sql), params)).all())


def test_every_record_type_has_a_default_with_its_source():
    """Property: no period without a cited source; unverified ones say "to check"."""
    assert set(DEFAULTS) == set(KINDS)
    for kind, (days, source, happens) in DEFAULTS.items():
        assert source and happens, kind
    assert "703/2023" in DEFAULTS["audit_log"][1] and "to check" in DEFAULTS["audit_log"][1]
    assert "never deleted" in DEFAULTS["audit_log"][2]


def test_periods_are_per_controller_and_the_longest_party_wins():
    schedule = RetentionSchedule(days={"consultation_closed": 30}, orgs={"vantaa": {"consultation_closed": 3650}})
    assert schedule.period("consultation_closed", "kela") == 30
    assert schedule.period("consultation_closed", "kela", "vantaa") == 3650
    assert schedule.period("consent", "kela") == DEFAULTS["consent"][0]


def test_toml_section_configures_retention_and_bad_keys_stop_start_up(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[retention]\nconsultation_inactive_days = 14\n[retention.orgs.vantaa]\nconsent_days = 3650\n')
    settings = load_settings({"CONSULT_CONFIG": str(good), "CONSULT_DEV": "1", "CONSULT_RETENTION_DAYS": "45"})
    schedule = settings.retention_schedule
    assert schedule.period("consultation_inactive") == 14
    assert schedule.period("consent", "vantaa") == 3650
    assert schedule.period("consultation_closed") == 45  # CONSULT_RETENTION_DAYS still counts
    for body in ('[retention]\nforever_days = 1\n', '[retention]\nconsent_days = 0\n',
                 '[retention]\nconsent_days = "long"\n', '[retention.orgs.vantaa]\nclient = 3\n'):
        bad = tmp_path / "bad.toml"
        bad.write_text(body)
        with pytest.raises(ConfigError, match="retention"):
            load_settings({"CONSULT_CONFIG": str(bad), "CONSULT_DEV": "1"})


async def test_unclosed_consultations_age_out_then_follow_the_closed_rule(aiohttp_client, settings):
    """Property: a consultation never closed is not kept for ever; activity postpones it; legal hold stops it."""
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    api = await _api(aiohttp_client, settings, _schedule(consultation_inactive=10, consultation_closed=20), clock)
    ref = await api.register(hetu(91))
    idle = (await api.open_consultation(client_ref=ref, question="IDLE-QUESTION"))["id"]
    busy = (await api.open_consultation(client_ref=ref))["id"]
    held = (await api.open_consultation(client_ref=ref))["id"]
    await api.call("POST", f"/api/v1/consultations/{held}/legal-hold", "kela.tuula", json={"hold": True}, expect=200)
    retention = api.client.app[keys.RETENTION]
    await _elapse(api, clock, days=6)
    await api.call("POST", f"/api/v1/consultations/{busy}/messages", "kela.aino", expect=201,
                   json={"text": "still here"})
    await _elapse(api, clock, days=5)
    report = await retention.run()
    assert report.closed_inactive == [idle]
    closed = await api.call("GET", f"/api/v1/consultations/{idle}", "kela.aino", expect=200)
    assert closed["status"] == "closed" and closed["outcome"] is None
    assert (await api.call("GET", f"/api/v1/consultations/{busy}", "kela.aino", expect=200))["status"] != "closed"
    await _elapse(api, clock, days=21)
    report = await retention.run()
    assert idle in report.shredded and busy in report.closed_inactive and held not in report.closed_inactive
    actions = [a for (a,) in await _rows(api, "SELECT action FROM audit_events WHERE consultation_id = :c ORDER BY seq",
                                          c=idle)]
    assert [a for a in actions if a.startswith("retention.")] == ["retention.close", "retention.shred"]
    basis = await _rows(api, "SELECT basis FROM audit_events WHERE action = 'retention.close' AND consultation_id = :c",
                        c=idle)
    assert basis == [("retention:consultation_inactive:10d",)]


async def test_per_controller_period_keeps_a_consultation_for_the_longer_party(aiohttp_client, settings):
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    schedule = RetentionSchedule(days={"consultation_closed": 10, "consent": 10},
                                 orgs={"vantaa": {"consultation_closed": 40, "consent": 40}})
    api = await _api(aiohttp_client, settings, schedule, clock)
    ref = await api.register(hetu(92))
    cid = (await api.open_consultation(client_ref=ref))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino", json={"outcome": "advice_given"},
                   expect=200)
    consent = (await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201))["id"]
    await api.call("POST", f"/api/v1/consents/{consent}/revoke", "kela.aino", expect=200)
    await _elapse(api, clock, days=11)
    first = await api.client.app[keys.RETENTION].run()
    assert first.shredded == [] and first.consents_deleted == []  # vantaa, a recipient, keeps consents 40 days
    await _elapse(api, clock, days=30)
    second = await api.client.app[keys.RETENTION].run()
    assert second.shredded == [cid] and second.consents_deleted == [consent]


async def test_ended_consents_revoked_prohibitions_and_idle_clients_are_deleted_and_audited(aiohttp_client, settings):
    """Property: consents, prohibitions and registry entries end; each deletion is an audit record
    with ids only; an active prohibition and a consent still relied on stay."""
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    schedule = _schedule(consent=30, prohibition=30, client=60, consultation_closed=5000)
    api = await _api(aiohttp_client, settings, schedule, clock)
    code = hetu(93)
    ref = await api.register(code)
    ended = (await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201))["id"]
    await api.call("POST", f"/api/v1/consents/{ended}/revoke", "kela.aino", expect=200)
    kept = (await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201))["id"]
    revoked = (await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                              json={"category": "health", "org": "vantaa"}, expect=201))["id"]
    await api.call("POST", f"/api/v1/prohibitions/{revoked}/revoke", "kela.aino", expect=200)
    active = (await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                             json={"category": "debt", "org": "vantaa"}, expect=201))["id"]
    retention = api.client.app[keys.RETENTION]
    await _elapse(api, clock, days=29)
    first = await retention.run()
    assert first.consents_deleted == [] and first.prohibitions_deleted == []
    await _elapse(api, clock, days=2)
    second = await retention.run()
    assert second.consents_deleted == [ended] and second.prohibitions_deleted == [revoked]
    assert await _rows(api, "SELECT id FROM consents WHERE id = :i", i=ended) == []
    assert await _rows(api, "SELECT consent_id FROM consent_events WHERE consent_id = :i", i=ended) == []
    assert await _rows(api, "SELECT id FROM consents WHERE id = :i", i=kept)
    assert await _rows(api, "SELECT id FROM prohibitions WHERE id = :i", i=active)
    assert second.clients_deleted == 0  # the client still has a consent and a prohibition

    # With the rest ended and deleted, the registry entry ends once its last record is older than its period.
    await api.call("POST", f"/api/v1/consents/{kept}/revoke", "kela.aino", expect=200)
    await api.call("POST", f"/api/v1/prohibitions/{active}/revoke", "kela.aino", expect=200)
    await _elapse(api, clock, days=31)
    third = await retention.run()
    assert third.consents_deleted == [kept] and third.prohibitions_deleted == [active] and third.clients_deleted == 0
    await _elapse(api, clock, days=59)
    assert (await retention.run()).clients_deleted == 0
    await _elapse(api, clock, days=2)
    assert (await retention.run()).clients_deleted == 1
    assert await _rows(api, "SELECT client_ref FROM clients WHERE client_ref = :r", r=ref) == []

    deletions = await _rows(api, "SELECT client_ref, consent_id, basis FROM audit_events "
                                 "WHERE action = 'retention.delete' ORDER BY seq")
    assert (ref, ended, "retention:consent:30d") in deletions
    assert (ref, None, f"retention:prohibition:30d:{revoked}") in deletions
    assert deletions[-1] == (ref, None, "retention:client:60d")
    assert code not in json.dumps([list(r) for r in deletions])
    verified = await api.call("GET", "/api/v1/audit/verify", "kela.tuula", expect=200)
    assert verified["ok"] is True, json.dumps(verified)[:3000]


async def test_a_consent_relied_on_by_readable_content_is_kept(aiohttp_client, settings):
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    api = await _api(aiohttp_client, settings, _schedule(consent=10, consultation_closed=100), clock)
    ref = await api.register(hetu(94))
    consent = (await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201))["id"]
    cid = (await api.open_consultation(client_ref=ref, purpose="sh.multidisciplinary"))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "x", "data": [{"category": "health", "value": "H", "consent_id": consent}]})
    await api.call("POST", f"/api/v1/consents/{consent}/revoke", "kela.aino", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino", json={"outcome": "advice_given"},
                   expect=200)
    await _elapse(api, clock, days=11)
    assert (await api.client.app[keys.RETENTION].run()).consents_deleted == []
    await _elapse(api, clock, days=100)
    report = await api.client.app[keys.RETENTION].run()
    assert report.shredded == [cid] and report.consents_deleted == [consent]


async def test_the_audit_log_is_never_deleted_and_runs_report_records_past_its_period(aiohttp_client, settings):
    """Property: retention never removes an audit leaf; what is past the log's period is reported."""
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    api = await _api(aiohttp_client, settings, _schedule(audit_log=30, consultation_closed=1), clock)
    ref = await api.register(hetu(95))
    cid = (await api.open_consultation(client_ref=ref))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "kela.aino", json={"outcome": "advice_given"},
                   expect=200)
    (before,) = (await _rows(api, "SELECT count(*) FROM audit_events"))[0]
    await _elapse(api, clock, days=40)
    report = await api.client.app[keys.RETENTION].run()
    assert report.audit_past_period == before and report.as_json()["audit_records_deleted"] == 0
    (after,) = (await _rows(api, "SELECT count(*) FROM audit_events"))[0]
    assert after == before + 1  # the shred's own record
    assert (await api.call("GET", "/api/v1/audit/verify", "kela.tuula", expect=200))["ok"] is True
