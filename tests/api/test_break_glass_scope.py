"""Break-glass stays inside the officer's own organisation's rights (docs/capabilities.md: C5, data categories).

A privacy officer's break-glass opens a consultation's content only as the officer's organisation
may see it through the policy: what the organisation wrote, in full; what another organisation
wrote, item by item as the policy lets the organisation's parties to the consultation see it. An
item withheld from the organisation stays withheld — its category, that it was withheld, the rule
and its basis are shown, its value nowhere.
"""

from __future__ import annotations

import json

from consult.http import keys
from consult.storage import audit_log
from tests.synthetic import hetu

KELA_PO, VANTAA_PO = "kela.tuula", "vantaa.ville"
WHY = "Complaint 2026-7 from the client needs the whole exchange reviewed."


async def _exchange(api, n: int) -> tuple[str, str]:
    """A Kela–Vantaa client consultation: Vantaa answers with items a Kela advisor may not see,
    Kela writes an item Vantaa may not see without consent."""
    ref = await api.register(hetu(n))
    cid = (await api.open_consultation(purpose="tt.application_intake", client_ref=ref))["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201, json={
        "text": "Päätös on tehty.", "data": [
            {"category": "decision.content", "value": "VANTAA-DECISION-CONTENT"},
            {"category": "child_welfare", "value": "VANTAA-CHILD-WELFARE"},
            {"category": "decision.period", "value": "VANTAA-PERIOD-2026-06"},
        ]})
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "Kelan tiedot.", "data": [
            {"category": "application.status", "value": "KELA-STATUS"},
            {"category": "health", "value": "KELA-HEALTH-NO-CONSENT"},
        ]})
    return cid, ref


def _items(opened: dict, author_org: str) -> dict[str, dict]:
    [message] = [m for m in opened["messages"] if m["author"]["org"] == author_org]
    return {d["category"]: d for d in message["data"]}


async def test_kela_break_glass_never_returns_vantaa_decision_content_or_child_welfare(api):
    """The hard rules hold under break-glass: decision content and child-welfare data of Vantaa
    never reach Kela, not even its privacy officer; what Kela may see (the period) and what Kela
    wrote itself are shown."""
    cid, _ref = await _exchange(api, 40)
    opened = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", KELA_PO, expect=200,
                            json={"justification": WHY})
    raw = json.dumps(opened)
    assert "VANTAA-DECISION-CONTENT" not in raw and "VANTAA-CHILD-WELFARE" not in raw
    vantaa = _items(opened, "vantaa")
    for category, rule in (("decision.content", "kela-never-decision-content"),
                           ("child_welfare", "child-welfare-never-crosses")):
        item = vantaa[category]
        assert item["withheld"] is True and "value" not in item
        assert item["rule"] == rule and item["basis"] == f"rule:{rule}" and item["citation"]
    assert vantaa["decision.period"]["value"] == "VANTAA-PERIOD-2026-06"
    kela = _items(opened, "kela")
    assert kela["application.status"]["value"] == "KELA-STATUS"
    assert kela["health"]["value"] == "KELA-HEALTH-NO-CONSENT"  # Kela's own record, in full


async def test_vantaa_break_glass_withholds_what_vantaa_may_not_receive(api):
    """Symmetric: Vantaa's officer sees Vantaa's own items in full, and a Kela health item
    sent without consent stays withheld from Vantaa."""
    cid, _ref = await _exchange(api, 41)
    opened = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", VANTAA_PO, expect=200,
                            json={"justification": WHY})
    assert "KELA-HEALTH-NO-CONSENT" not in json.dumps(opened)
    kela = _items(opened, "kela")
    assert kela["health"]["withheld"] is True and kela["health"]["basis"]
    assert kela["application.status"]["value"] == "KELA-STATUS"
    vantaa = _items(opened, "vantaa")
    assert vantaa["decision.content"]["value"] == "VANTAA-DECISION-CONTENT"
    assert vantaa["child_welfare"]["value"] == "VANTAA-CHILD-WELFARE"


async def test_break_glass_record_names_only_the_categories_opened(api):
    """The flagged break-glass record lists the categories actually shown to the officer."""
    cid, _ref = await _exchange(api, 42)
    opened = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", KELA_PO, expect=200,
                            json={"justification": WHY})
    async with api.client.app[keys.DB].read() as conn:
        rows = await audit_log.for_consultation(conn, cid)
    [bg] = [r for r in rows if r["action"] == "break_glass"]
    assert bg["leaf_index"] == opened["audit"]["leaf_index"]
    assert set(bg["categories"]) == {"decision.period", "application.status", "health"}
