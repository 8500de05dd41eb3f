"""Identifiers in free text (docs/capabilities.md C2, C3): a HETU never stored, other identifiers per reader."""

from __future__ import annotations

from consult.http import keys
from tests.synthetic import hetu


async def _raw_texts(api) -> str:
    """Everything the database file holds, as text (content columns are ciphertext)."""
    path = api.client.app[keys.SETTINGS].database_url.split("///", 1)[1]
    async with api.client.app[keys.DB].read() as conn:
        from sqlalchemy import text
        await conn.execute(text("SELECT 1"))
    raw = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as fh:
                raw += fh.read()
        except FileNotFoundError:
            pass
    return raw.decode("latin-1")


async def test_hetu_in_question_and_message_becomes_the_client_link(api):
    code = hetu(20)
    ref = await api.register(code)
    created = await api.open_consultation(purpose="tt.application_intake", client_ref=ref,
                                          question=f"Client {code} asks about rent")
    assert created["question"] == f"Client [client:{ref}] asks about rent"
    assert created["identifiers"] == [{"kind": "hetu", "action": "replaced_by_client_link", "client_ref": ref}]
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    other = hetu(21)
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                          json={"text": f"Also spouse {other.lower()} applied"})
    assert other not in sent["text"] and other.lower() not in sent["text"] and "[client:cl_" in sent["text"]
    raw = await _raw_texts(api)
    assert code not in raw and other not in raw and other.lower() not in raw


async def test_hetu_in_general_consultation_is_removed_not_registered(api):
    code = hetu(22)
    created = await api.open_consultation(purpose="general", question=f"What about {code}?")
    assert code not in created["question"] and "poistettu" in created["question"]
    assert created["identifiers"] == [{"kind": "hetu", "action": "removed"}]
    again = await api.call("POST", "/api/v1/clients", "kela.aino", json={"hetu": code}, expect=201)
    assert again["created"] is True  # the earlier mention did not register anyone


async def test_preview_warns_before_sending_and_stores_nothing(api):
    ref = await api.register(hetu(23))
    created = await api.open_consultation(purpose="tt.application_intake", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    preview = await api.call("POST", f"/api/v1/consultations/{cid}/messages/preview", "vantaa.sanna", expect=200,
                             json={"text": f"id {hetu(23)}", "data": [{"category": "decision.content", "value": "v"}]})
    assert preview["identifiers"][0]["action"] == "replaced_by_client_link"
    assert preview["policy"]["withheld"][0]["rule"] == "kela-never-decision-content"
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    assert page["items"] == []
    scan = await api.call("POST", "/api/v1/scan", "kela.aino", expect=200,
                          json={"text": "mail matti.meikalainen@example.fi", "purpose": "general"})
    assert scan["identifiers"][0]["kind"] == "email"


async def test_other_identifiers_follow_the_policy_per_reader(api):
    """In a general consultation an e-mail address reaches the other organisation only as a marker."""
    created = await api.open_consultation(purpose="general")
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                          json={"text": "write to matti.meikalainen@example.fi or call 040 1234567"})
    assert "matti.meikalainen@example.fi" in sent["text"]  # the author sees what they wrote
    assert {w["category"] for w in sent["policy"]["withheld"]} == {"identifier.email", "identifier.phone"}
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    shown = page["items"][0]["text"]
    assert "example.fi" not in shown and "1234567" not in shown and "[email withheld]" in shown
