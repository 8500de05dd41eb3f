"""The export for the county's client record: § 35 contacts and decision-relevant advice as JSON
Lines (schema konsulta.client-record/1), by a privacy officer or admin, only as the policy lets
the exporting organisation see it, and audited per consultation and client."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text

from consult.http import keys
from consult.http.app import create_app
from consult.model import FixedClock
from consult.storage import audit_log
from tests.conftest import Api
from tests.synthetic import hetu

REFERRAL = {"category": "service_need.referral", "value": "NEEDS-HELP-EXPORT",
            "referral": {"condition": "unable_to_look_after_self",
                         "justification": "Cannot manage own affairs.",
                         "why_no_consent": "No one reachable to consent."}}


async def _consultation(api, ref, *, purpose, outcome, data=(), text="note"):
    cid = (await api.open_consultation(purpose=purpose, client_ref=ref))["id"]
    # A § 35 contact reaches only the county's social-work intake; other questions its experts.
    county = "vantaa.paula" if purpose == "sh.referral" else "vantaa.sanna"
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", county, expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                   json={"text": text, "data": list(data)})
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", county, expect=201,
                   json={"text": "COUNTY-ADVICE: apply for supplementary assistance"})
    if outcome:
        await api.call("POST", f"/api/v1/consultations/{cid}/close", county, json={"outcome": outcome},
                       expect=200)
    return cid


async def _export(api, user, expect=200, **query):
    response = await api.client.get("/api/v1/retention/client-record", params=query, headers=api.auth(user))
    assert response.status == expect, await response.text()
    if expect != 200:
        return await response.json()
    assert response.content_type == "application/jsonl"
    return [json.loads(line) for line in (await response.text()).splitlines()]


async def test_export_holds_referrals_and_advice_in_the_documented_format(api):
    """Property: § 35 contacts and decision-relevant advice reach the county's record; declined,
    unclosed and other clients' consultations do not; no identity code is exported."""
    code = hetu(61)
    ref = await api.register(code)
    referral = await _consultation(api, ref, purpose="sh.referral", outcome="referred", data=[REFERRAL])
    advice = await _consultation(api, ref, purpose="tt.application_intake", outcome="advice_given")
    await _consultation(api, ref, purpose="tt.application_intake", outcome="declined")
    await _consultation(api, ref, purpose="tt.application_intake", outcome=None)
    other = await api.register(hetu(62))
    await _consultation(api, other, purpose="tt.application_intake", outcome="advice_given")

    lines = await _export(api, "vantaa.ville", client_ref=ref)
    header, *records = lines
    assert header["type"] == "header" and header["schema"] == "konsulta.client-record/1"
    assert header["organisation"] == "vantaa" and header["exported_by"] == "vantaa.ville"
    assert header["count"] == 2 and header["marking"].startswith("SALASSA PIDETTÄVÄ")
    by_id = {r["consultation_id"]: r for r in records}
    assert set(by_id) == {referral, advice}
    contact = by_id[referral]
    assert contact["kind"] == "section_35_contact" and contact["client_ref"] == ref
    assert contact["referrals"][0]["condition"] == "unable_to_look_after_self"
    assert contact["referrals"][0]["category"] == "service_need.referral"
    assert any(d.get("value") == "NEEDS-HELP-EXPORT" for m in contact["messages"] for d in m["data"])
    assert by_id[advice]["kind"] == "advice" and by_id[advice]["outcome"] == "advice_given"
    assert any("COUNTY-ADVICE" in m["text"] for m in by_id[advice]["messages"])
    assert code not in json.dumps(lines)

    everything = await _export(api, "vantaa.ville")
    assert everything[0]["count"] == 3  # the other client's advice too, without a client filter


async def test_export_shows_only_what_the_policy_lets_the_county_see(api):
    """Property: an item withheld from the county (health without consent) is exported withheld, its value nowhere."""
    ref = await api.register(hetu(63))
    cid = await _consultation(api, ref, purpose="sh.multidisciplinary", outcome="advice_given",
                              data=[{"category": "health", "value": "WITHHELD-HEALTH-VALUE"}])
    lines = await _export(api, "vantaa.ville", client_ref=ref)
    (record,) = lines[1:]
    assert record["consultation_id"] == cid
    assert "WITHHELD-HEALTH-VALUE" not in json.dumps(lines)
    assert any(d.get("withheld") and d["category"] == "health" for m in record["messages"] for d in m["data"])


async def test_export_is_for_privacy_officers_and_admins_and_is_audited(api):
    """Property: who exported which consultation of which client is in the audit log."""
    ref = await api.register(hetu(64))
    cid = await _consultation(api, ref, purpose="sh.referral", outcome="referred", data=[REFERRAL])
    for user in ("vantaa.sanna", "kela.aino"):
        err = await _export(api, user, expect=403)
        assert err["error"]["code"] == "role"
    await _export(api, "vantaa.ville", expect=400, client_ref="not a ref")
    await _export(api, "vantaa.ville", expect=400, **{"from": "yesterday"})
    await _export(api, "vantaa.admin", client_ref=ref)
    async with api.client.app[keys.DB].read() as conn:
        rows = await audit_log.for_consultation(conn, cid)
    exports = [r for r in rows if r["action"] == "retention.export_client_record"]
    assert len(exports) == 1
    assert exports[0]["actor_id"] == "vantaa.admin" and exports[0]["client_ref"] == ref
    assert exports[0]["purpose"] == "client_record_transfer" and exports[0]["recipient_org"] == "vantaa"


async def test_shredded_consultations_are_not_exported(aiohttp_client, settings):
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    api = Api(await aiohttp_client(create_app(settings, clock=clock)))
    ref = await api.register(hetu(65))
    cid = await _consultation(api, ref, purpose="sh.multidisciplinary", outcome="advice_given")
    retention = api.client.app[keys.RETENTION]
    clock.advance(days=retention.period.days + 1)
    assert cid in (await retention.run()).shredded
    lines = await _export(api, "vantaa.ville", client_ref=ref)
    assert lines[0]["count"] == 0
    async with api.client.app[keys.DB].read() as conn:
        rows = (await conn.execute(text(
            "SELECT actor_id, consultation_id, recipient_org FROM audit_events "
            "WHERE action = 'retention.export_client_record'"))).all()
    assert [tuple(r) for r in rows] == [("vantaa.ville", None, "vantaa")]  # an empty export is recorded too


async def test_command_line_export_writes_the_same_format_and_is_audited(api, settings, tmp_path):
    """Property: the operator's export from the command line is recorded under the operator and
    the organisation, and its file is readable by the owner only."""
    import asyncio
    import os
    import stat
    import subprocess
    import sys

    ref = await api.register(hetu(66))
    cid = await _consultation(api, ref, purpose="sh.referral", outcome="referred", data=[REFERRAL])
    env = {**os.environ, "CONSULT_DEV": "1", "CONSULT_DATA_DIR": str(settings.data_dir),
           "CONSULT_DATABASE_URL": settings.database_url, "CONSULT_KEY_FILE": str(settings.key_file),
           "CONSULT_POLICY_DIR": str(settings.policy_dir)}
    out = tmp_path / "record.jsonl"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "consult", "retention", "export-client-record", *args],
                              env=env, capture_output=True, text=True, timeout=120)

    done = await asyncio.to_thread(run, "--org", "vantaa", "--client-ref", ref, "--out", str(out))
    assert done.returncode == 0, done.stderr
    header, record = [json.loads(line) for line in out.read_text().splitlines()]
    assert header["schema"] == "konsulta.client-record/1" and header["organisation"] == "vantaa"
    assert record["consultation_id"] == cid and record["kind"] == "section_35_contact"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert (await asyncio.to_thread(run, "--org", "nowhere")).returncode == 2
    assert (await asyncio.to_thread(run, "--org", "vantaa", "--client-ref", "bad ref")).returncode == 2
    async with api.client.app[keys.DB].read() as conn:
        rows = await audit_log.for_consultation(conn, cid)
    (exported,) = [r for r in rows if r["action"] == "retention.export_client_record"]
    assert exported["actor_id"].startswith("system:cli:") and exported["actor_org"] == "vantaa"
    assert exported["client_ref"] == ref
