"""What the policy withheld from whom when a message was sent is kept for its author: a reload
shows the sender the same outcome the send answered with, decided then (not recomputed with
today's consents), and no other reader ever sees it."""

from __future__ import annotations

import json

from sqlalchemy import text

from consult.http import keys
from tests.api.test_minimisation import _claimed_consultation, _consent
from tests.api.wsutil import connect, next_event


async def _sent(api):
    cid, client_ref = await _claimed_consultation(api, "sh.multidisciplinary")
    consent_id = await _consent(api, client_ref, "health", "vantaa", "sh.multidisciplinary")
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "context", "data": [{"category": "health", "value": "HEALTH-SECRET", "consent_id": consent_id},
                                    {"category": "child_welfare", "value": "CW-SECRET"}]})
    return cid, consent_id, sent


async def test_author_reads_back_the_send_time_outcome(api):
    """The sender's view of what each recipient could not see survives a reload."""
    cid, _, sent = await _sent(api)
    withheld = sent["policy"]["withheld"]
    assert [(w["recipient"]["user_id"], w["index"], w["category"]) for w in withheld] == [
        ("vantaa.sanna", 1, "child_welfare")]
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert page["items"][-1]["policy"] == sent["policy"]
    assert "CW-SECRET" not in json.dumps(page["items"][-1]["policy"])


async def test_outcome_is_as_decided_at_send_time(api):
    """A consent withdrawn later changes what the reader sees, not what the sender was told then."""
    cid, consent_id, sent = await _sent(api)
    await api.call("POST", f"/api/v1/consents/{consent_id}/revoke", "kela.aino", expect=200)
    read = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    assert read["items"][-1]["data"][0]["withheld"] is True
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert page["items"][-1]["policy"] == sent["policy"]
    assert [w["category"] for w in page["items"][-1]["policy"]["withheld"]] == ["child_welfare"]


async def test_no_other_reader_sees_what_was_withheld_from_someone(api):
    """Only the author is told what was withheld from whom: not the recipient, not a participant
    added later, not in a live event, and not on someone else's message in the author's own view."""
    cid, _, _ = await _sent(api)
    await api.call("GET", "/api/v1/me", "vantaa.paula", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna",
                   json={"user_id": "vantaa.paula"}, expect=200)
    for reader in ("vantaa.sanna", "vantaa.paula"):
        page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", reader, expect=200)
        assert all("policy" not in m for m in page["items"]), reader
    ws = await connect(api, "vantaa.paula")
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                   json={"data": [{"category": "child_welfare", "value": "CW-2"}, {"category": "application.status",
                                                                                "value": "in progress"}]})
    live = await next_event(ws, "message.created")
    await ws.close()
    assert "policy" not in live["message"]
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                   json={"data": [{"category": "decision.content", "value": "DC"},
                                  {"category": "application.status", "value": "in progress"}]})
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert "policy" not in page["items"][-1] and "policy" in page["items"][-2]


async def test_kept_outcome_is_sealed(api):
    """The kept outcome is sealed under the consultation's key like the text: no category or
    rule name of it reads in the database."""
    cid, _, _ = await _sent(api)
    async with api.client.app[keys.DB].read() as conn:
        row = (await conn.execute(text("SELECT sent_policy_sealed FROM messages WHERE consultation_id = :c"),
                                  {"c": cid})).one()
    assert row[0] and b"child_welfare" not in bytes(row[0])
