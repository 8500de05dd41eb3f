"""The knowledge base (docs/capabilities.md C9): a closed consultation becomes a question-and-answer entry only
if the identifier scan finds nothing personal in it; another expert approves it; staff search it
in Finnish through the database (FTS5 on SQLite, to_tsvector on PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from consult.services.knowledge import fold, search_prefix
from consult.storage import knowledge as store
from consult.storage import migrate
from consult.storage.db import Database
from tests.synthetic import hetu

QUESTION = "Riittääkö vuokrasopimus liitteeksi toimeentulotukihakemukseen?"
ANSWER = "Vuokrasopimuksen kopio riittää, kun siitä näkyy vuokran määrä ja vuokranantaja."


async def _closed(api):
    created = await api.open_consultation(pool="toimeentulotuki")
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.sanna", json={"outcome": "advice_given"},
                   expect=200)
    return cid


async def test_entry_with_personal_data_is_refused_naming_kinds_and_positions(api):
    """Property: a refused entry's answer names what was found where, and never the value."""
    cid = await _closed(api)
    code = hetu(3)
    answer = f"Asiakkaan {code} tapauksessa soita 040 1234567."
    refused = await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.sanna", expect=422,
                             json={"question": "Kenelle soitan? [client:abc123]", "answer": answer})
    assert refused["error"]["code"] == "personal_data_found"
    found = refused["error"]["findings"]
    assert {(f["field"], f["kind"]) for f in found} == {("answer", "hetu"), ("answer", "phone"),
                                                        ("question", "client_ref")}
    start = answer.index(code)
    assert {"field": "answer", "kind": "hetu", "start": start, "end": start + len(code)} in found
    assert code not in str(refused) and "1234567" not in str(refused)
    drafts = await api.call("GET", "/api/v1/knowledge/drafts", "vantaa.mikko", expect=200)
    assert drafts["items"] == []


async def test_only_a_participating_expert_writes_and_another_approves(api):
    open_one = await api.open_consultation()
    await api.call("POST", f"/api/v1/consultations/{open_one['id']}/claim", "vantaa.sanna", expect=200)
    body = {"question": QUESTION, "answer": ANSWER}
    not_closed = await api.call("POST", f"/api/v1/consultations/{open_one['id']}/knowledge", "vantaa.sanna",
                                json=body, expect=409)
    assert not_closed["error"]["code"] == "not_closed"
    cid = await _closed(api)
    await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.mikko", json=body, expect=404)
    await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "kela.aino", json=body, expect=403)
    entry = await api.call("POST", f"/api/v1/consultations/{cid}/knowledge", "vantaa.sanna", json=body, expect=201)
    assert entry["status"] == "draft" and entry["source_consultation_id"] == cid
    assert (await api.call("GET", "/api/v1/knowledge?q=vuokrasopimus", "kela.aino", expect=200))["items"] == []
    await api.call("GET", f"/api/v1/knowledge/{entry['id']}", "kela.aino", expect=404)
    own = await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "vantaa.sanna", expect=403)
    assert own["error"]["code"] == "own_entry"
    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "kela.aino", expect=404)
    approved = await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "vantaa.mikko", expect=200)
    assert approved["status"] == "approved" and approved["approved_by"] == "vantaa.mikko"
    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/approve", "vantaa.liisa", expect=409)
    seen = await api.call("GET", f"/api/v1/knowledge/{entry['id']}", "kela.aino", expect=200)
    assert "source_consultation_id" not in seen and "created_by" not in seen

    # Advisors find it by inflected Finnish words, with or without the umlauts; the same search
    # with the words in a POST body (what the app uses: no URL holds them) finds the same.
    for query in ("vuokrasopimuksen liite", "toimeentulotukihakemus", "riittaako vuokrasopimus", "VUOKRANANTAJAN"):
        hits = await api.call("GET", f"/api/v1/knowledge?q={query}", "kela.aino", expect=200)
        assert [h["id"] for h in hits["items"]] == [entry["id"]], query
        posted = await api.call("POST", "/api/v1/knowledge/search", "kela.aino", json={"q": query}, expect=200)
        assert posted == hits, query
    posted = await api.call("POST", "/api/v1/knowledge/search", "kela.aino",
                            json={"q": "vuokrasopimus", "topic": entry["topic"], "limit": 1}, expect=200)
    assert [h["id"] for h in posted["items"]] == [entry["id"]]
    for bad in ({"q": "  "}, {"q": "x" * 201}, {"q": "vuokra", "topic": "no_such_topic"}, {"q": "vuokra", "limit": 0},
                {"q": "vuokra", "extra": 1}, {}):
        refused = await api.call("POST", "/api/v1/knowledge/search", "kela.aino", json=bad, expect=422)
        assert "vuokra" not in str(refused["error"]), bad
    assert (await api.call("GET", "/api/v1/knowledge?q=asumistuki", "kela.aino", expect=200))["items"] == []
    assert (await api.call("GET", "/api/v1/knowledge?q=\"*)(", "kela.aino", expect=200))["items"] != []  # no crash

    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/withdraw", "kela.admin", expect=403)
    await api.call("POST", f"/api/v1/knowledge/{entry['id']}/withdraw", "vantaa.admin", expect=200)
    assert (await api.call("GET", "/api/v1/knowledge?q=vuokrasopimus", "kela.aino", expect=200))["items"] == []


def test_search_prefix_is_a_crude_finnish_stem():
    assert [search_prefix(fold(w)) for w in ("Tuki", "liitteet", "liite", "Hakemuksen", "toimeentulotuen")] == [
        "tuki", "liit", "liit", "hakemu", "toimeentulo"]


async def _search_on(url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await db.start()
    now = datetime(2026, 3, 2, tzinfo=UTC)
    try:
        for i, (q, a, status) in enumerate([
            (QUESTION, ANSWER, "approved"),
            ("Miten asumistuki vaikuttaa?", "Asumistuki on tuloa laskelmassa.", "approved"),
            ("Vuokrasopimus luonnos", "Ei vielä hyväksytty.", "draft"),
        ]):
            row = {"id": str(uuid.uuid4()), "org": "vantaa", "topic": "attachments", "question": q, "answer": a,
                   "search_text": fold(f"{q}\n{a}"), "status": status, "source_consultation_id": None,
                   "created_by": "e", "created_at": now, "approved_by": None, "approved_at": None,
                   "withdrawn_at": None}
            await db.write(lambda conn, row=row: store.insert_entry(conn, row))
        async with db.read() as conn:
            hits = await store.search(conn, ["vuokrasopimu", "liit"], "vuokrasopimuksen liite", topic=None, limit=10)
            assert [h["question"] for h in hits] == [QUESTION]
            hits = await store.search(conn, ["asum"], "asumistuen", topic="attachments", limit=10)
            assert [h["question"] for h in hits] == ["Miten asumistuki vaikuttaa?"]
            assert await store.search(conn, ["asum"], "asumistuen", topic="other", limit=10) == []
    finally:
        await db.close()


async def test_full_text_search_on_sqlite(tmp_path):
    await _search_on(f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}")


async def test_full_text_search_on_postgresql(pg_migrated):
    """The same search through PostgreSQL's text search (skipped, saying so, if it is absent)."""
    await _search_on(pg_migrated)
