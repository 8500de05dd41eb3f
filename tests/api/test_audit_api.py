"""The privacy officer's audit API (docs/capabilities.md: public API, C5) over the real app: tree heads, checkpoints and
proofs that an independent verifier accepts, searches, the client access report, exports,
break-glass — every one of them itself logged, and scoped to the officer's organisation."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consult.audit.entry import encode
from consult.http import keys
from consult.storage import audit_log
from tests.audit import rfc9162_reference as rfc
from tests.synthetic import hetu

KELA_PO, VANTAA_PO = "kela.tuula", "vantaa.ville"


async def _scenario(api, n: int = 0) -> tuple[str, str]:
    """A client consultation with one disclosure Kela → Vantaa and one read."""
    ref = await api.register(hetu(n))
    created = await api.open_consultation(purpose="tt.income_calculation", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "benefits", "data": [{"category": "income.kela_benefit", "value": "SECRET-AMOUNT-1"}]})
    await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    return cid, ref


async def _rows(api) -> list[dict]:
    async with api.client.app[keys.DB].read() as conn:
        rows = []
        async for part in audit_log.iter_query(conn, audit_log.EventFilter()):
            rows += part
        return rows


async def _size(api) -> int:
    return len(await _rows(api))


def _open_note(note: str, vkey: str) -> tuple[str, int, bytes]:
    """Check a C2SP signed note with the bare Ed25519 primitive, sharing no code with the service."""
    name, key_id_hex, key_b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1 and len(raw) == 33
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    lines = [line for line in signatures.split("\n") if line]
    ours = [line for line in lines if line.startswith(f"\u2014 {name} ")]
    assert len(ours) == 1
    blob = base64.b64decode(ours[0].split(" ")[2])
    assert blob[:4].hex() == key_id_hex
    assert hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4] == blob[:4]
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], text.encode())  # raises if forged
    origin, size, root = text.rstrip("\n").split("\n")[:3]
    assert origin == name
    return origin, int(size), base64.b64decode(root)


async def test_every_audit_endpoint_is_for_privacy_officers_only(api):
    """Role: the audit log is the privacy officer's; other roles get 403, nobody gets data."""
    for path in ["/api/v1/audit/events", "/api/v1/audit/disclosures", "/api/v1/audit/tree-head",
                 "/api/v1/audit/checkpoint", "/api/v1/audit/verifier-key", "/api/v1/audit/verify",
                 "/api/v1/audit/proof/inclusion?index=0", "/api/v1/audit/proof/consistency?first=0",
                 "/api/v1/audit/anomalies", "/api/v1/audit/export", "/api/v1/clients/c-x/access-report"]:
        for user in ("kela.aino", "vantaa.sanna", "vantaa.paula", "kela.admin"):
            await api.call("GET", path, user, expect=403)
        await api.call("GET", path, expect=401)
    await api.call("POST", "/api/v1/consultations/x/break-glass", "kela.aino", expect=403,
                   json={"justification": "a long enough justification text"})


async def test_tree_head_checkpoint_and_proofs_verify_independently(api):
    """Third-party verifiability: the signed checkpoint checks with bare Ed25519, and every
    inclusion and consistency proof from the API checks with the RFC 9162 transcription."""
    await _scenario(api)
    vkey = await api.call("GET", "/api/v1/audit/verifier-key", KELA_PO, expect=200)
    assert vkey.startswith("konsulta.local/audit+")
    note = await api.call("GET", "/api/v1/audit/checkpoint", KELA_PO, expect=200)
    origin, size, root = _open_note(note, vkey)
    assert size > 0
    rows = await _rows(api)
    assert [r["leaf_index"] for r in rows] == list(range(len(rows)))
    entries = [encode(r) for r in rows]
    for r, e in zip(rows, entries):
        assert bytes(r["leaf_hash"]) == rfc.HASH(b"\x00" + e)
    assert rfc.MTH(entries[:size]) == root

    for index in range(size):
        proof = await api.call("GET", f"/api/v1/audit/proof/inclusion?index={index}&size={size}", KELA_PO,
                               expect=200)
        assert proof["root_hash"] == root.hex() and proof["tree_size"] == size
        path = [bytes.fromhex(p) for p in proof["path"]]
        assert rfc.verify_inclusion(rfc.HASH(b"\x00" + entries[index]), index, size, path, root)
        assert not rfc.verify_inclusion(rfc.HASH(b"\x00" + entries[index] + b" "), index, size, path, root)

    # The log grows (a search is logged; proofs are not); the old head stays a prefix of the new.
    await api.call("GET", "/api/v1/audit/events", KELA_PO, expect=200)
    note2 = await api.call("GET", "/api/v1/audit/checkpoint", VANTAA_PO, expect=200)
    _, size2, root2 = _open_note(note2, vkey)
    assert size2 > size
    for first in range(1, size + 1):
        proof = await api.call("GET", f"/api/v1/audit/proof/consistency?first={first}&second={size2}", KELA_PO,
                               expect=200)
        entries = [encode(r) for r in await _rows(api)]
        first_root = rfc.MTH(entries[:first])
        assert proof["first_hash"] == first_root.hex() and proof["second_hash"] == root2.hex()
        path = [bytes.fromhex(p) for p in proof["path"]]
        if first < size2:
            assert rfc.verify_consistency(first, size2, first_root, root2, path)
    head = await api.call("GET", "/api/v1/audit/tree-head", KELA_PO, expect=200)
    assert head["tree_size"] >= size2 and len(head["root_hash"]) == 64 and head["timestamp"].endswith("Z")
    assert head["checkpoint"]["tree_size"] == size2


@pytest.mark.parametrize("query", [
    "index=-1", "index=abc", "index=", "index=1.5", "index=99999999999999999999999",
    "index=0&size=0", "index=5&size=3", "index=0&size=1000000", "size=1",
])
async def test_bad_inclusion_parameters_are_client_errors(api, query):
    """No 5xx on client input: malformed → 400, out of range → 422."""
    await _scenario(api)
    response = await api.client.get(f"/api/v1/audit/proof/inclusion?{query}", headers=api.auth(KELA_PO))
    assert response.status in (400, 422), (query, response.status)
    assert (await response.json())["error"]["code"]


@pytest.mark.parametrize("query", ["first=x", "first=5&second=2", "first=0&second=100000", "", "first=-3"])
async def test_bad_consistency_parameters_are_client_errors(api, query):
    response = await api.client.get(f"/api/v1/audit/proof/consistency?{query}", headers=api.auth(KELA_PO))
    assert response.status in (400, 422), (query, response.status)


async def test_events_and_disclosures_are_searchable_and_every_query_is_logged(api):
    """Every query a privacy officer makes is itself appended to the log (anti-profiling)."""
    cid, ref = await _scenario(api)
    before = await _size(api)
    page = await api.call("GET", f"/api/v1/audit/events?client_ref={ref}", KELA_PO, expect=200)
    actions = {e["action"] for e in page["items"]}
    assert {"consultation.create", "message.create", "disclose"} <= actions
    assert all(e["client_ref"] == ref for e in page["items"])
    assert "SECRET-AMOUNT-1" not in json.dumps(page)
    disclosed = await api.call("GET", f"/api/v1/audit/disclosures?client_ref={ref}", KELA_PO, expect=200)
    [d] = disclosed["items"]
    assert d["categories"] == ["income.kela_benefit"] and d["to"]["org"] == "vantaa"
    assert d["outcome"] == "permit" and d["basis"] and d["policy_version"] and d["rule_id"]
    by_actor = await api.call("GET", "/api/v1/audit/events?actor=kela.aino&action=disclose&outcome=permit"
                              "&category=income.kela_benefit&basis=statute", KELA_PO, expect=200)
    assert {e["action"] for e in by_actor["items"]} == {"disclose"}
    rows = await _rows(api)
    queries = [r for r in rows[before:] if r["action"].startswith("audit.")]
    assert [q["action"] for q in queries] == ["audit.query", "audit.disclosures", "audit.query"]
    assert queries[0]["client_ref"] == ref and queries[0]["actor_id"] == KELA_PO
    assert queries[2]["subject_user"] == "kela.aino"  # a search about a colleague is visible too


async def test_paging_with_cursor(api):
    await _scenario(api)
    seen, cursor = [], None
    while True:
        url = "/api/v1/audit/events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.call("GET", url, KELA_PO, expect=200)
        seen += [e["leaf_index"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    await api.call("GET", "/api/v1/audit/events?cursor=garbage", KELA_PO, expect=400)
    await api.call("GET", "/api/v1/audit/events?limit=0", KELA_PO, expect=400)
    await api.call("GET", "/api/v1/audit/events?from=yesterday", KELA_PO, expect=400)
    await api.call("GET", "/api/v1/audit/events?category=nonsense", KELA_PO, expect=400)


async def test_privacy_officers_see_only_their_own_organisation(api):
    """Org scoping: a privacy officer sees records whose actor or recipient is in their org."""
    _cid, ref = await _scenario(api)
    # A consultation only Kela staff touched in a way Vantaa is not part of: a Kela-side read.
    ref2 = await api.register(hetu(2))
    await api.call("GET", f"/api/v1/clients/{ref2}/consents", "kela.aino", expect=200)
    kela = await api.call("GET", "/api/v1/audit/events?limit=200", KELA_PO, expect=200)
    vantaa = await api.call("GET", "/api/v1/audit/events?limit=200", VANTAA_PO, expect=200)
    for e in vantaa["items"]:
        assert e["actor"]["org"] == "vantaa" or (e["recipient"] or {}).get("org") == "vantaa"
    for e in kela["items"]:
        assert e["actor"]["org"] == "kela" or (e["recipient"] or {}).get("org") == "kela"
    assert not [e for e in vantaa["items"] if e["client_ref"] == ref2]
    assert [e for e in kela["items"] if e["client_ref"] == ref2]
    # Both see the cross-border disclosure; Vantaa sees its own expert's read.
    assert [e for e in vantaa["items"] if e["action"] == "disclose" and e["client_ref"] == ref]
    assert [e for e in vantaa["items"] if e["action"] == "messages.read"]
    report = await api.call("GET", f"/api/v1/clients/{ref2}/access-report", VANTAA_PO, expect=200)
    assert report["processing"] == [] and report["disclosures"] == []


async def test_client_access_report(api, settings):
    """The client's right (703/2023, GDPR art. 15): who processed, to whom disclosed, when, on what basis."""
    cid, ref = await _scenario(api)
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", KELA_PO, expect=200)
    assert report["client_ref"] == ref and report["organisation"] == "kela"
    who = {(p["who"]["id"], p["action"]) for p in report["processing"]}
    assert ("kela.aino", "consultation.create") in who
    [d] = report["disclosures"]
    assert d["from"]["id"] == "kela.aino" and d["from"]["name"] == "Aino Neuvoja"
    assert d["to"]["org"] == "vantaa" and d["to"]["id"] == "vantaa.sanna"
    assert d["basis"] and d["categories"] == ["income.kela_benefit"] and d["at"].endswith("Z")
    assert report["summary"]["disclosed"] == 1
    assert "SECRET-AMOUNT-1" not in json.dumps(report)
    # Older than two years only with a written reason, which is recorded beside the log.
    await api.call("GET", f"/api/v1/clients/{ref}/access-report?from=2015-01-01", KELA_PO, expect=422)
    reason = "Client request by letter, reference 2026-17, covering 2015 onwards."
    older = await api.call("GET", f"/api/v1/clients/{ref}/access-report?from=2015-01-01&reason={reason}",
                           KELA_PO, expect=200)
    assert older["period"]["from"].startswith("2014-12-31T22:00")
    rows = await _rows(api)
    reports = [r for r in rows if r["action"] == "audit.access_report"]
    assert len(reports) == 2 and reports[-1]["reason_id"] and reports[-1]["reason_digest"] == \
        hashlib.sha256(reason.encode()).hexdigest()
    # The report itself shows that a privacy officer looked the client up.
    again = await api.call("GET", f"/api/v1/clients/{ref}/access-report", KELA_PO, expect=200)
    assert ("kela.tuula", "audit.access_report") in {(p["who"]["id"], p["action"]) for p in again["processing"]}


async def test_export_csv_and_jsonl_are_logged_and_recomputable(api):
    _cid, ref = await _scenario(api)
    response = await api.client.get(f"/api/v1/audit/export?format=jsonl&client_ref={ref}",
                                    headers=api.auth(KELA_PO))
    assert response.status == 200 and response.content_type == "application/jsonl"
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert lines and all(r["client_ref"] == ref for r in lines)
    for r in lines:  # anyone can recompute each leaf hash from the export
        assert hashlib.sha256(b"\x00" + encode(r)).hexdigest() == r["leaf_hash"]
    response = await api.client.get("/api/v1/audit/export?format=csv&action=disclose", headers=api.auth(VANTAA_PO))
    text = await response.text()
    assert response.status == 200 and text.startswith("leaf_index,id,at,")
    # Both formats are in the API description, so a client (or a fuzzer) may expect either.
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    documented = document["paths"]["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert response.content_type in documented and "application/jsonl" in documented
    assert "SECRET-AMOUNT-1" not in text
    await api.call("GET", "/api/v1/audit/export?format=xml", KELA_PO, expect=400)
    exports = [r for r in await _rows(api) if r["action"] == "audit.export"]
    assert [(e["actor_id"], e["client_ref"]) for e in exports] == [(KELA_PO, ref), (VANTAA_PO, None)]


async def test_break_glass_needs_justification_is_logged_and_flagged(api):
    """Content only through break-glass: a written justification, recorded and flagged first."""
    cid, ref = await _scenario(api)
    path = f"/api/v1/consultations/{cid}/break-glass"
    await api.call("POST", path, KELA_PO, expect=422, json={"justification": "too short"})
    await api.call("POST", path, KELA_PO, expect=422, json={})
    await api.call("POST", path, KELA_PO, expect=422,
                   json={"justification": f"Complaint about client {hetu(0)} needs review of the exchange."})
    await api.call("POST", "/api/v1/consultations/no-such/break-glass", KELA_PO, expect=404,
                   json={"justification": "Complaint 2026-4 needs the exchange reviewed."})
    text = "Complaint 2026-4 from the client needs the exchange reviewed in full."
    opened = await api.call("POST", path, KELA_PO, expect=200, json={"justification": text})
    assert opened["messages"][0]["data"][0]["value"] == "SECRET-AMOUNT-1"
    assert opened["audit"]["flagged"] is True
    rows = await _rows(api)
    [bg] = [r for r in rows if r["action"] == "break_glass"]
    assert bg["leaf_index"] == opened["audit"]["leaf_index"]
    assert bg["flags"] == ["break_glass"] and bg["consultation_id"] == cid and bg["client_ref"] == ref
    assert bg["reason_digest"] == hashlib.sha256(text.encode()).hexdigest()
    anomalies = await api.call("GET", "/api/v1/audit/anomalies", KELA_PO, expect=200)
    assert [a for a in anomalies["items"] if a["kind"] == "break_glass" and a["consultation_id"] == cid]
    # Vantaa's officer sees the break-glass of Kela's officer? No: it is Kela's act on its own side.
    other = await api.call("GET", "/api/v1/audit/anomalies", VANTAA_PO, expect=200)
    assert not [a for a in other["items"] if a["kind"] == "break_glass"]


async def test_break_glass_of_another_organisations_consultation_is_404(api):
    """Org scoping: a privacy officer of an organisation not party to it cannot even see it exists."""
    cid, _ref = await _scenario(api)
    trail = api.client.app[keys.AUDIT]
    from consult.model import Principal
    from consult.model.context import RequestContext
    from consult.errors import NotFound
    outsider = Principal("espoo.po", "espoo", frozenset({"privacy_officer"}), "Outside Officer")
    with pytest.raises(NotFound):
        await trail.break_glass(outsider, cid, "Complaint 2026-5 needs the exchange reviewed.",
                                RequestContext("t"))


async def test_verify_endpoint(api):
    await _scenario(api)
    await api.call("GET", "/api/v1/audit/checkpoint", KELA_PO, expect=200)
    result = await api.call("GET", "/api/v1/audit/verify", KELA_PO, expect=200)
    assert result["ok"] is True and result["size"] > 0 and len(result["root_hash"]) == 64
    assert result["checkpoints_verified"] >= 1 and result["problems"] == []
    assert (await _rows(api))[-1]["action"] == "audit.verify"


async def test_empty_log_has_a_signed_empty_head(api):
    vkey = await api.call("GET", "/api/v1/audit/verifier-key", KELA_PO, expect=200)
    head = await api.call("GET", "/api/v1/audit/tree-head", KELA_PO, expect=200)
    note = await api.call("GET", "/api/v1/audit/checkpoint", KELA_PO, expect=200)
    _, size, root = _open_note(note, vkey)
    assert size == head["tree_size"] and root.hex() == head["root_hash"]
    if size == 0:
        assert root == rfc.MTH([])
