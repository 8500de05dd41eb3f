"""Searching one's own consultations on the server (GET /api/v1/consultations?q=): every word
must be found in what the caller may read of a consultation; the questions are sealed, so the
server opens them, a bounded number per request; only the listed ones are recorded as read, and
the search text reaches neither the logs nor the audit log."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from consult.http import keys
from consult.services import consultations
from consult.storage import audit_log

URL = "/api/v1/consultations"


async def _ask(api, question: str, user: str = "kela.aino") -> str:
    return (await api.open_consultation(user, question=question))["id"]


async def _audit(api) -> list[dict]:
    async with api.client.app[keys.DB].read() as conn:
        rows = []
        async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
            rows += part
    return rows


def _ours(caplog) -> str:
    """The service's own log lines (the test client adds aiohttp's access log, which the
    service turns off: consult serve runs with access_log=None)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("consult"))


async def test_search_finds_every_word_beyond_the_first_page(api):
    """A search reaches older consultations than a list page holds, case-insensitively, all words."""
    old = await _ask(api, "Lumenluonti taloyhtiön pihalla: kuuluuko vuokraan?")
    for n in range(4):
        await _ask(api, f"Vuokravakuus numero {n}?")
    page = await api.call("GET", f"{URL}?limit=2", "kela.aino", expect=200)
    assert old not in [c["id"] for c in page["items"]]
    found = await api.call("GET", f"{URL}?q=LUMENLUONTI%20pihalla", "kela.aino", expect=200)
    assert [c["id"] for c in found["items"]] == [old] and found["next"] is None
    assert found["items"][0]["question"].startswith("Lumenluonti")
    none = await api.call("GET", f"{URL}?q=lumenluonti%20kissa", "kela.aino", expect=200)
    assert none == {"items": [], "next": None}
    # Pages of a search go on with next, in the list's order.
    ids, cursor = [], None
    while True:
        got = await api.call("GET", f"{URL}?q=vuokravakuus&limit=3" + (f"&cursor={cursor}" if cursor else ""),
                             "kela.aino", expect=200)
        ids += [c["id"] for c in got["items"]]
        cursor = got["next"]
        if cursor is None:
            break
    assert len(ids) == 4 and len(set(ids)) == 4


async def test_search_sees_only_what_the_caller_may_see(api):
    """Another advisor's consultation is not found, whatever the words."""
    mine = await _ask(api, "Omaishoidon tuki ja toimeentulotuki?")
    await _ask(api, "Omaishoidon tuki eri asiakkaalla?", user="kela.eero")
    found = await api.call("GET", f"{URL}?q=omaishoidon", "kela.aino", expect=200)
    assert [c["id"] for c in found["items"]] == [mine]
    also = await api.call("GET", f"{URL}?q=omaishoidon&status=closed", "kela.aino", expect=200)
    assert also["items"] == []


async def test_search_is_bounded_per_request_and_goes_on(api, monkeypatch):
    """At most SEARCH_SCAN consultations are opened per request; next goes on from the last one looked at."""
    monkeypatch.setattr(consultations, "SEARCH_SCAN", 3)
    oldest = await _ask(api, "Harvinainen sana: kaamosvalo?")
    for n in range(4):
        await _ask(api, f"Tavallinen kysymys {n}?")
    first = await api.call("GET", f"{URL}?q=kaamosvalo", "kela.aino", expect=200)
    assert first["items"] == [] and first["next"]
    second = await api.call("GET", f"{URL}?q=kaamosvalo&cursor={first['next']}", "kela.aino", expect=200)
    assert [c["id"] for c in second["items"]] == [oldest] and second["next"] is None


async def test_only_the_listed_are_recorded_and_the_words_go_nowhere(api, caplog):
    """Audited as the list is (consultation.list for each one listed); the search text is in no log
    line and no audit record, and an over-long search is 422 without echoing it."""
    caplog.set_level(logging.DEBUG)
    hit = await _ask(api, "Kysymys sanasta revontulirahoitus?")
    await _ask(api, "Muu kysymys ilman hakusanaa?")
    before = len(await _audit(api))
    found = await api.call("GET", f"{URL}?q=revontulirahoitus", "kela.aino", expect=200)
    assert [c["id"] for c in found["items"]] == [hit]
    listed = [r for r in (await _audit(api))[before:] if r["action"] == "consultation.list"]
    assert [r["consultation_id"] for r in listed] == [hit]
    assert "revontulirahoitus" not in json.dumps(await _audit(api), default=str).replace(
        "Kysymys sanasta revontulirahoitus?", "")
    assert "revontulirahoitus" not in _ours(caplog)
    long = "pitkähaku" * 30
    err = await api.call("GET", f"{URL}?q={quote(long)}", "kela.aino", expect=422)
    assert err["error"]["code"] == "invalid_field" and "pitkähaku" not in json.dumps(err)
    assert "pitkähaku" not in _ours(caplog)
