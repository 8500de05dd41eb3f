"""Secrecy markings (julkisuuslaki 621/1999 § 24(1) 25 k., § 25) on what carries client data out of
the service — consent receipts, access reports, log extracts, audit exports and searches, the
message view and break-glass — and the client-facing log extract (laki 703/2023 § 11)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from consult.model import secrecy
from tests.synthetic import hetu

KELA_PO = "kela.tuula"
SOON = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "written", "valid_until": SOON}
FI, SV, EN = secrecy.MARKING["fi"], secrecy.MARKING["sv"], secrecy.MARKING["en"]


async def _scenario(api, n: int = 40) -> tuple[str, str]:
    """A client consultation with one disclosure Kela → Vantaa and one read by Vantaa."""
    ref = await api.register(hetu(n))
    created = await api.open_consultation(purpose="tt.income_calculation", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "benefits", "data": [{"category": "income.kela_benefit", "value": "SECRET-AMOUNT-9"}]})
    await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=200)
    return cid, ref


async def _get(api, path: str, user: str):
    response = await api.client.get(path, headers=api.auth(user))
    return response, await response.text()


def test_one_source_three_languages():
    """The marking names the secrecy and its provision in each language (621/1999 § 25)."""
    assert FI == "SALASSA PIDETTÄVÄ, JulkL 24 § 1 mom. 25 k."
    assert SV == "SEKRETESSBELAGD, OffL 24 § 1 mom. 25 p."
    assert "621/1999" in EN and "24(1)(25)" in EN
    assert secrecy.marking("de") == FI and secrecy.HEADER_VALUE.isascii()
    text = secrecy.marked("body", "sv")
    assert text.startswith(SV + "\n") and text.rstrip().endswith(SV)


async def test_consent_receipt_is_marked_in_its_language(api):
    """A consent receipt handed to the client carries the marking first and last, and the header."""
    ref = await api.register(hetu(41))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    for lang, line in (("fi", FI), ("sv", SV), ("en", EN)):
        response, text = await _get(api, f"/api/v1/consents/{consent['id']}/receipt?lang={lang}", "kela.aino")
        assert response.status == 200 and response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
        lines = text.strip().splitlines()
        assert lines[0] == line and lines[-1] == line


async def test_access_report_carries_the_marking(api):
    """The privacy officer's access report: header and a secrecy field in every language."""
    _cid, ref = await _scenario(api)
    response, text = await _get(api, f"/api/v1/clients/{ref}/access-report", KELA_PO)
    assert response.status == 200 and response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
    assert json.loads(text)["secrecy"] == {"fi": FI, "sv": SV, "en": EN}


async def test_audit_export_is_marked_and_the_csv_still_parses(api):
    """Exports get the header, never a line in the data: the CSV's first row stays its header row."""
    _cid, ref = await _scenario(api)
    for fmt in ("csv", "jsonl"):
        response, text = await _get(api, f"/api/v1/audit/export?format={fmt}&client_ref={ref}", KELA_PO)
        assert response.status == 200 and response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
        assert FI not in text
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert rows and all(r["client_ref"] == ref for r in rows)
        else:
            assert all(json.loads(line)["client_ref"] == ref for line in text.splitlines())
    for path in ("/api/v1/audit/events", "/api/v1/audit/disclosures"):
        response, _ = await _get(api, f"{path}?client_ref={ref}", KELA_PO)
        assert response.status == 200 and response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE


async def test_message_view_and_break_glass_are_marked(api):
    """What shows message content carries the marking; an error answer and a plain answer do not."""
    cid, _ref = await _scenario(api, 42)
    response, text = await _get(api, f"/api/v1/consultations/{cid}/messages", "vantaa.sanna")
    assert response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
    assert json.loads(text)["secrecy"]["fi"] == FI
    one, _ = await _get(api, f"/api/v1/consultations/{cid}", "vantaa.sanna")
    assert one.status == 200 and one.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
    opened = await api.call("POST", f"/api/v1/consultations/{cid}/break-glass", KELA_PO, expect=200,
                            json={"justification": "Complaint by the client, case 2026-31 under review."})
    assert opened["secrecy"]["sv"] == SV
    denied, _ = await _get(api, f"/api/v1/consultations/{cid}/messages", "vantaa.paula")
    assert denied.status == 404 and secrecy.HEADER not in denied.headers
    plain, _ = await _get(api, "/api/v1/me", "kela.aino")
    assert secrecy.HEADER not in plain.headers


async def test_openapi_documents_the_header_on_marked_routes(api):
    doc = await api.call("GET", "/api/v1/openapi.json", expect=200)
    ok = doc["paths"]["/api/v1/clients/{ref}/access-report"]["get"]["responses"]["200"]
    assert secrecy.HEADER in ok["headers"]
    assert "headers" not in doc["paths"]["/api/v1/me"]["get"]["responses"]["200"]


# -- the client's log extract -------------------------------------------------------------------


async def test_log_extract_in_finnish_reads_without_codes(api):
    """The extract a client can read (703/2023 § 11): who (name, role, organisation), when, what in
    words and on what basis — no client reference, user id, action or category code, no content."""
    _cid, ref = await _scenario(api, 43)
    response, raw = await _get(api, f"/api/v1/clients/{ref}/log-extract?lang=fi", KELA_PO)
    assert response.status == 200 and response.headers[secrecy.HEADER] == secrecy.HEADER_VALUE
    body = json.loads(raw)
    text = body["text"]
    lines = text.strip().splitlines()
    assert lines[0] == FI and lines[-1] == FI
    assert "LOKITIETO-OTE" in text and "703/2023" in text and "11 §" in text
    assert "Aino Neuvoja, palveluneuvoja" in text
    assert "Kelan maksamat etuudet" in text and "luovutti tietoja" in text
    assert "avasi sinua koskevan neuvottelun toisen organisaation kanssa" in text
    [disclosed] = body["disclosed"]
    assert "etuuskäsittelijä" in disclosed["to"] and disclosed["basis"].startswith("laki")
    for code in (ref, "kela.aino", "vantaa.sanna", "income.kela_benefit", "consultation.create",
                 "tt.income_calculation", "statute:", "SECRET-AMOUNT-9", "advisor"):
        assert code not in text, code
    # Vantaa's own reading is Vantaa's log, not Kela's.
    assert "luki sinua koskevan neuvottelun viestit" not in text


async def test_log_extract_in_swedish_and_for_the_other_organisation(api):
    _cid, ref = await _scenario(api, 44)
    body = await api.call("GET", f"/api/v1/clients/{ref}/log-extract?lang=sv", "vantaa.ville", expect=200)
    text = body["text"]
    assert text.startswith(SV) and "LOGGUTDRAG" in text and "703/2023" in text
    assert "läste meddelandena i en konsultation om dig" in text
    assert "Vantaan ja Keravan hyvinvointialue" in text or "Vanda" in text


async def test_log_extract_is_the_officers_alone_and_is_audited(api):
    _cid, ref = await _scenario(api, 45)
    await api.call("GET", f"/api/v1/clients/{ref}/log-extract", "kela.aino", expect=403)
    await api.call("GET", f"/api/v1/clients/{ref}/log-extract?lang=en", KELA_PO, expect=400)
    await api.call("GET", f"/api/v1/clients/{ref}/log-extract?from=2015-01-01", KELA_PO, expect=422)
    await api.call("GET", f"/api/v1/clients/{ref}/log-extract", KELA_PO, expect=200)
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", KELA_PO, expect=200)
    assert ("kela.tuula", "audit.log_extract") in {(p["who"]["id"], p["action"]) for p in report["processing"]}
    again = await api.call("GET", f"/api/v1/clients/{ref}/log-extract", KELA_PO, expect=200)
    assert "laati lokitieto-otteen" in again["text"]


@pytest.mark.parametrize("lang", ["fi", "sv"])
async def test_every_action_and_category_has_words(lang):
    """No audited action the service writes about a client, and no category, falls back to a code."""
    from consult.model.vocabulary import CATEGORIES
    from consult.services import log_extract
    assert set(CATEGORIES) <= set(log_extract.CATEGORIES[lang])
    assert set(log_extract.ACTIONS["fi"]) == set(log_extract.ACTIONS["sv"])


async def test_log_extract_lists_only_what_happened(api):
    """An item the policy withheld was not disclosed: the extract does not list it as a disclosure,
    while the officer's access report keeps the refusal."""
    cid, ref = await _scenario(api, 47)
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "and health", "data": [{"category": "health", "value": "SECRET-HEALTH-1"}]})
    assert sent["policy"]
    report = await api.call("GET", f"/api/v1/clients/{ref}/access-report", KELA_PO, expect=200)
    assert [d for d in report["disclosures"] if d["categories"] == ["health"] and d["outcome"] != "permit"]
    extract = await api.call("GET", f"/api/v1/clients/{ref}/log-extract", KELA_PO, expect=200)
    assert all("terveystiedot" not in (d["data"] or "") for d in extract["disclosed"])
    assert "SECRET-HEALTH-1" not in extract["text"]
