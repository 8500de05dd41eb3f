"""Decide once: posting a message asks the policy engine once per item and reader, and once per
identifier kind and reader — the sender's warning, the sender's answer and every reader's live
event reuse that one decision (consult/services/disclosure.py ``Act``).

The engine itself is instrumented: its two deciding functions are wrapped to count the requests
they are asked, and still decide."""

from __future__ import annotations

from collections import Counter
from typing import Any

from consult.http import keys
from tests.api.wsutil import connect, next_event
from tests.synthetic import hetu

IBAN = "FI21 1234 5600 0007 85"
ITEMS = [
    {"category": "application.status", "value": f"in process, paid to {IBAN}"},
    {"category": "income.kela_benefit", "value": "basic assistance"},
    {"category": "debt", "value": "rent arrears"},
]


def _count(engine: Any, monkeypatch: Any) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    items: Counter[tuple[Any, ...]] = Counter()
    identifiers: Counter[tuple[Any, ...]] = Counter()
    decide, decide_identifier = engine.decide, engine.decide_identifier

    def counted_decide(req: Any) -> Any:
        items[(req.category, req.sender, req.recipient)] += 1
        return decide(req)

    def counted_identifier(kind: str, sender: Any, recipient: Any, *args: Any, **kwargs: Any) -> Any:
        identifiers[(kind, sender, recipient)] += 1
        return decide_identifier(kind, sender, recipient, *args, **kwargs)

    monkeypatch.setattr(engine, "decide", counted_decide)
    monkeypatch.setattr(engine, "decide_identifier", counted_identifier)
    return items, identifiers


async def test_one_post_asks_the_engine_once_per_item_and_reader(api, monkeypatch):
    """A message with N items to a consultation with K readers (all connected): at most one
    engine decision per item and reader, and per identifier kind and reader."""
    client_ref = await api.register(hetu(41))
    created = await api.open_consultation(client_ref=client_ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    for user in ("vantaa.mikko", "kela.eero"):
        await api.call("GET", "/api/v1/me", user, expect=200)
        await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.sanna",
                       json={"user_id": user}, expect=200)
    readers = ["kela.aino", "vantaa.sanna", "vantaa.mikko", "kela.eero"]
    sockets = {user: await connect(api, user) for user in readers}
    engine = api.client.app[keys.MESSAGES].disclosure.engine
    assert engine is api.client.app[keys.POLICY]
    items, identifiers = _count(engine, monkeypatch)

    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                          json={"text": f"Paid to {IBAN}.", "data": ITEMS})
    live = {user: await next_event(ws, "message.created") for user, ws in sockets.items()}
    for ws in sockets.values():
        await ws.close()

    # Every reader got the message; someone other than the sender saw an item, and the policy
    # withheld something from someone (the counts below are over real decisions).
    assert all(e["message"]["id"] == sent["id"] for e in live.values())
    assert any(not d.get("withheld") for user in readers[1:] for d in live[user]["message"]["data"])
    assert sent["policy"]["withheld"]
    others = len(readers) - 1  # the sender's own items are not decided for the sender
    assert sum(items.values()) <= len(ITEMS) * others, items
    assert max(items.values()) == 1, [k for k, n in items.items() if n > 1]
    assert len(items) == len(ITEMS) * others
    assert identifiers and max(identifiers.values()) == 1, [k for k, n in identifiers.items() if n > 1]
