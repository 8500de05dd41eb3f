"""POST /api/v1/clients/lookup: find a registered client by HETU without registering one, for the
privacy officer's access report (and staff), audited, never echoing the identity code."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text

from consult.http import keys
from tests.synthetic import hetu

LOOKUP = "/api/v1/clients/lookup"


async def _audit(api, action: str) -> list[dict]:
    async with api.client.app[keys.DB].read() as conn:
        rows = (await conn.execute(text(
            "SELECT * FROM audit_events WHERE action = :a ORDER BY seq"), {"a": action})).mappings().all()
    return [dict(r) for r in rows]


async def _client_count(api) -> int:
    async with api.client.app[keys.DB].read() as conn:
        return (await conn.execute(text("SELECT count(*) FROM clients"))).scalar_one()


async def test_officer_finds_a_registered_client_and_the_lookup_is_audited(api, caplog):
    caplog.set_level(logging.DEBUG)
    code = hetu(61)
    ref = await api.register(code)
    before = len(await _audit(api, "client.lookup"))
    found = await api.call("POST", LOOKUP, "kela.tuula", json={"hetu": code.lower()}, expect=200)
    assert found == {"client_ref": ref}
    rows = await _audit(api, "client.lookup")
    assert len(rows) == before + 1
    row = rows[-1]
    assert (row["actor_id"], row["actor_org"], row["client_ref"], row["outcome"]) == ("kela.tuula", "kela", ref, "permit")
    assert code not in json.dumps(found) and code not in caplog.text
    assert code not in json.dumps(row, default=str)
    # The privacy officer's own query is in the log the officers search.
    events = await api.call("GET", f"/api/v1/audit/events?action=client.lookup&client_ref={ref}", "kela.tuula",
                            expect=200)
    assert any(e["action"] == "client.lookup" and e["client_ref"] == ref for e in events["items"])


async def test_unknown_valid_hetu_is_404_registers_nothing_and_is_audited(api, caplog):
    caplog.set_level(logging.DEBUG)
    code = hetu(62)
    clients = await _client_count(api)
    before = len(await _audit(api, "client.lookup"))
    err = await api.call("POST", LOOKUP, "vantaa.ville", json={"hetu": code}, expect=404)
    assert err["error"]["code"] == "unknown_client"
    assert code not in json.dumps(err) and code not in caplog.text
    assert await _client_count(api) == clients
    rows = await _audit(api, "client.lookup")
    assert len(rows) == before + 1 and rows[-1]["client_ref"] is None and rows[-1]["actor_id"] == "vantaa.ville"
    # Looking again still finds nothing: the lookup never registered the client.
    await api.call("POST", LOOKUP, "kela.aino", json={"hetu": code}, expect=404)
    created = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": code}, expect=201)
    assert created["created"] is True


@pytest.mark.parametrize("bad", ["010190-9001", "311390-900A", "not a hetu", "", 12345, None, "010190-900X" * 3])
async def test_invalid_hetu_is_422_without_echo(api, bad):
    err = await api.call("POST", LOOKUP, "kela.tuula", json={"hetu": bad}, expect=422)
    assert err["error"]["code"] == "invalid_hetu"
    assert not bad or str(bad) not in json.dumps(err)


async def test_unknown_fields_and_bodies_are_refused(api):
    err = await api.call("POST", LOOKUP, "kela.tuula", json={"hetu": hetu(63), "register": True}, expect=422)
    assert err["error"]["code"] == "unknown_field"
    await api.call("POST", LOOKUP, "kela.tuula", json=[hetu(63)], expect=400)
    await api.call("POST", LOOKUP, "kela.tuula", data="hetu", headers={"Content-Type": "text/plain"}, expect=415)
    await api.call("POST", LOOKUP, json={"hetu": hetu(63)}, expect=401)


@pytest.mark.parametrize("user", ["kela.tuula", "vantaa.ville", "kela.aino", "vantaa.sanna", "vantaa.paula"])
async def test_staff_and_privacy_officers_may_look_up(api, user):
    ref = await api.register(hetu(64))
    assert (await api.call("POST", LOOKUP, user, json={"hetu": hetu(64)}, expect=200))["client_ref"] == ref


async def test_admins_may_not_look_up_and_their_attempt_leaves_no_trace(api):
    await api.register(hetu(65))
    before = len(await _audit(api, "client.lookup"))
    err = await api.call("POST", LOOKUP, "vantaa.admin", json={"hetu": hetu(65)}, expect=403)
    assert err["error"]["code"] == "role"
    assert len(await _audit(api, "client.lookup")) == before


async def test_privacy_officers_still_may_not_register(api):
    await api.call("POST", "/api/v1/clients", "kela.tuula", json={"hetu": hetu(66)}, expect=403)
    await api.call("POST", LOOKUP, "kela.tuula", json={"hetu": hetu(66)}, expect=404)
