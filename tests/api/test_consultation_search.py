"""Searching one's own consultations on the server (POST /api/v1/consultations/search): every word
must be found in what the caller may read of a consultation; the questions are sealed, so the
server opens them, a bounded number per request; only the listed ones are recorded as read, and
the search words travel in the body, so they reach no URL, no log line and no audit record."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from consult.http import keys
from consult.services import consultations
from consult.storage import audit_log

URL = "/api/v1/consultations"
SEARCH = "/api/v1/consultations/search"


async def _ask(api, question: str, user: str = "kela.aino") -> str:
    return (await api.open_consultation(user, question=question))["id"]


async def _search(api, q: str, user: str = "kela.aino", expect: int = 200, **fields: Any) -> Any:
    return await api.call("POST", SEARCH, user, json={"q": q, **fields}, expect=expect)


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


def _urls(caplog) -> list[str]:
    """The request lines of aiohttp's access log: each URL the server was asked for, query included."""
    return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]


async def test_search_finds_every_word_beyond_the_first_page(api):
    """A search reaches older consultations than a list page holds, case-insensitively, all words."""
    old = await _ask(api, "Lumenluonti taloyhtiön pihalla: kuuluuko vuokraan?")
    for n in range(4):
        await _ask(api, f"Vuokravakuus numero {n}?")
    page = await api.call("GET", f"{URL}?limit=2", "kela.aino", expect=200)
    assert old not in [c["id"] for c in page["items"]]
    found = await _search(api, "LUMENLUONTI pihalla")
    assert [c["id"] for c in found["items"]] == [old] and found["next"] is None
    assert found["items"][0]["question"].startswith("Lumenluonti")
    none = await _search(api, "lumenluonti kissa")
    assert none == {"items": [], "next": None}
    # Pages of a search go on with next, in the list's order.
    ids, cursor = [], None
    while True:
        got = await _search(api, "vuokravakuus", limit=3, **({"cursor": cursor} if cursor else {}))
        ids += [c["id"] for c in got["items"]]
        cursor = got["next"]
        if cursor is None:
            break
    assert len(ids) == 4 and len(set(ids)) == 4


async def test_search_sees_only_what_the_caller_may_see(api):
    """Another advisor's consultation is not found, whatever the words."""
    mine = await _ask(api, "Omaishoidon tuki ja toimeentulotuki?")
    await _ask(api, "Omaishoidon tuki eri asiakkaalla?", user="kela.eero")
    found = await _search(api, "omaishoidon")
    assert [c["id"] for c in found["items"]] == [mine]
    also = await _search(api, "omaishoidon", status="closed")
    assert also["items"] == []


async def test_search_is_bounded_per_request_and_goes_on(api, monkeypatch):
    """At most SEARCH_SCAN consultations are opened per request; next goes on from the last one looked at."""
    monkeypatch.setattr(consultations, "SEARCH_SCAN", 3)
    oldest = await _ask(api, "Harvinainen sana: kaamosvalo?")
    for n in range(4):
        await _ask(api, f"Tavallinen kysymys {n}?")
    first = await _search(api, "kaamosvalo")
    assert first["items"] == [] and first["next"]
    second = await _search(api, "kaamosvalo", cursor=first["next"])
    assert [c["id"] for c in second["items"]] == [oldest] and second["next"] is None


async def test_only_the_listed_are_recorded_and_the_words_go_nowhere(api, caplog):
    """Audited as the list is (consultation.list for each one listed); the search words are in no
    URL the server was asked for, no log line and no audit record, and a refused search (too long,
    too many words, blank) is 422 without echoing it."""
    caplog.set_level(logging.DEBUG)
    hit = await _ask(api, "Kysymys sanasta revontulirahoitus?")
    await _ask(api, "Muu kysymys ilman hakusanaa?")
    before = len(await _audit(api))
    found = await _search(api, "revontulirahoitus")
    assert [c["id"] for c in found["items"]] == [hit]
    listed = [r for r in (await _audit(api))[before:] if r["action"] == "consultation.list"]
    assert [r["consultation_id"] for r in listed] == [hit]
    assert "revontulirahoitus" not in json.dumps(await _audit(api), default=str).replace(
        "Kysymys sanasta revontulirahoitus?", "")
    assert any(SEARCH in line for line in _urls(caplog))  # the access log names every URL asked for
    assert not [line for line in _urls(caplog) if "revontulirahoitus" in line]
    assert "revontulirahoitus" not in "\n".join(r.getMessage() for r in caplog.records)
    for refused in ("pitkähaku" * 30, " ".join(["pitkähaku"] * 11), " \n\t "):
        err = await _search(api, refused, expect=422)
        assert err["error"]["code"] == "invalid_field" and err["error"]["message"].startswith("q")
        assert "pitkähaku" not in json.dumps(err)
    assert "pitkähaku" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_the_list_takes_no_search_words_in_its_url(api, caplog):
    """The list no longer searches: q in its URL is refused (422, not echoed) rather than
    silently ignored, so a client still putting words in a URL finds out."""
    caplog.set_level(logging.DEBUG)
    await _ask(api, "Kysymys sanasta tähtisumuavustus?")
    err = await api.call("GET", f"{URL}?q={quote('tähtisumuavustus')}", "kela.aino", expect=422)
    assert err["error"]["code"] == "invalid_field" and "tähtisumuavustus" not in json.dumps(err)
    assert "tähtisumuavustus" not in _ours(caplog)
    assert (await api.call("GET", f"{URL}?q=", "kela.aino", expect=422))["error"]["code"] == "invalid_field"


async def test_a_search_body_is_declared(api):
    """Unknown fields, a bad limit and a bad cursor are refused like any body."""
    assert (await _search(api, "sana", extra=1, expect=422))["error"]["code"] == "unknown_field"
    assert (await _search(api, "sana", limit=0, expect=422))["error"]["code"] == "invalid_field"
    assert (await _search(api, "sana", cursor="!", expect=400))["error"]["code"] == "bad_cursor"
    missing = await api.call("POST", SEARCH, "kela.aino", json={}, expect=422)
    assert missing["error"]["message"] == "q: is required"
    await api.call("POST", SEARCH, json={"q": "sana"}, expect=401)
