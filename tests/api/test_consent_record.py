"""Consents a lawyer would sign off (docs/capabilities.md C3): who records one, the organisations and the one
purpose it names, bounded validity, the evidence of an oral consent, what the disclosing
organisation sees and confirms, purpose binding at recording, and the receipt in plain language."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from consult.http import keys
from tests.synthetic import hetu

SOON = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
# Kela passes its own observation to the county, recorded at Kela's counter, in writing.
K2M = {"categories": ["social_work.assessment"], "disclosing_org": "kela", "recipient_orgs": ["vantaa"],
       "purpose": "sh.referral", "method": "written", "valid_until": SOON}
# The county's assessment to a Kela advisor, recorded at Kela's counter: Kela is the receiver.
M2K = {**K2M, "disclosing_org": "vantaa", "recipient_orgs": ["kela"], "purpose": "tt.service_guidance"}
ORAL = {"method": "oral", "witnessed_by": "Eero Neuvoja, palveluneuvoja", "evidence_ref": "Kelan asiakasmerkintä 2026-04"}


async def _record(api, ref, body, user="kela.aino", expect=201):
    return await api.call("POST", f"/api/v1/clients/{ref}/consents", user, json=body, expect=expect)


async def _audit_actions(api, consent_id):
    async with api.client.app[keys.DB].read() as conn:
        return (await conn.execute(text(
            "SELECT action FROM audit_events WHERE consent_id = :c AND action NOT IN ('consent.read', 'consent.receipt')"
            " ORDER BY seq"), {"c": consent_id})).scalars().all()


# -- who records ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["vantaa.sanna", "kela.tuula", "vantaa.admin"])
async def test_only_advisors_and_social_workers_record(api, user):
    """Property: a benefits expert, a privacy officer or an admin cannot record a consent (403)."""
    ref = await api.register(hetu(30))
    err = await _record(api, ref, {**M2K, "recipient_orgs": ["vantaa"], "disclosing_org": "kela"}, user, expect=403)
    assert err["error"]["code"] == "role"


async def test_recorder_must_belong_to_a_party(api):
    """Property: staff record a consent only for a disclosure their own organisation makes or
    receives; a consent between two other organisations is refused (403)."""
    ref = await api.register(hetu(31))
    # Kela is neither the disclosing nor the receiving organisation here.
    err = await _record(api, ref, {**K2M, "disclosing_org": "vantaa", "recipient_orgs": ["vantaa"]}, expect=403)
    assert err["error"]["code"] == "not_party"


# -- what it names ---------------------------------------------------------------------------------


async def test_consent_names_disclosing_and_receiving_organisations(api):
    ref = await api.register(hetu(32))
    consent = await _record(api, ref, M2K)
    assert consent["disclosing_org"] == "vantaa" and consent["recipient_orgs"] == ["kela"]
    # Without a disclosing organisation named, the recording organisation discloses.
    implied = await _record(api, ref, {k: v for k, v in K2M.items() if k != "disclosing_org"})
    assert implied["disclosing_org"] == "kela"
    # When the recorder's organisation is a recipient, the disclosing one must be named.
    err = await _record(api, ref, {k: v for k, v in M2K.items() if k != "disclosing_org"}, expect=422)
    assert "disclosing_org" in err["error"]["message"]


async def test_consent_is_for_one_specific_purpose(api):
    ref = await api.register(hetu(33))
    body = {**K2M, "purposes": ["sh.referral", "sh.multidisciplinary"]}
    body.pop("purpose")
    err = await _record(api, ref, body, expect=422)
    assert err["error"]["code"] == "one_purpose"


async def test_consent_covers_only_its_disclosing_organisation(api):
    """Property: a consent naming Kela as the discloser does not let the county disclose to Kela."""
    ref = await api.register(hetu(34))
    created = await api.open_consultation(purpose="sh.multidisciplinary", client_ref=ref)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    body = {**K2M, "categories": ["health"], "purpose": "sh.multidisciplinary", "recipient_orgs": ["vantaa", "kela"]}
    consent = await _record(api, ref, body)
    refused = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=403, json={
        "text": "", "data": [{"category": "health", "value": "H-1", "consent_id": consent["id"]}]})
    assert refused["error"]["code"] == "policy_denied"
    # The same consent covers Kela's own disclosure to the county.
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "text": "", "data": [{"category": "health", "value": "H-2", "consent_id": consent["id"]}]})
    assert not sent["policy"]["withheld"], sent["policy"]


# -- bounded validity -------------------------------------------------------------------------------


async def test_open_ended_consent_is_refused(api):
    ref = await api.register(hetu(35))
    body = {k: v for k, v in K2M.items() if k != "valid_until"}
    err = await _record(api, ref, body, expect=422)
    assert err["error"]["code"] == "open_ended"


async def test_validity_is_bounded_by_the_configured_maximum(api):
    ref = await api.register(hetu(36))
    limit = api.client.app[keys.SETTINGS].consent_max_days
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ok = {**K2M, "valid_from": start.isoformat(), "valid_until": (start + timedelta(days=limit)).isoformat()}
    await _record(api, ref, ok)
    long = {**ok, "valid_until": (start + timedelta(days=limit, seconds=1)).isoformat()}
    err = await _record(api, ref, long, expect=422)
    assert err["error"]["code"] == "validity_too_long" and str(limit) in err["error"]["message"]


async def test_consent_max_days_is_configurable():
    from consult.config import load_settings
    from consult.errors import ConfigError

    assert load_settings({"CONSULT_DEV": "1"}).consent_max_days == 365
    assert load_settings({"CONSULT_DEV": "1", "CONSULT_CONSENT_MAX_DAYS": "30"}).consent_max_days == 30
    with pytest.raises(ConfigError, match="CONSULT_CONSENT_MAX_DAYS"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_CONSENT_MAX_DAYS": "0"})
    with pytest.raises(ConfigError, match="CONSULT_CONSENT_MAX_DAYS"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_CONSENT_MAX_DAYS": "3651"})


# -- oral consent ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["witnessed_by", "evidence_ref"])
async def test_oral_consent_needs_witness_and_evidence(api, missing):
    ref = await api.register(hetu(37))
    body = {**K2M, **ORAL}
    body.pop(missing)
    err = await _record(api, ref, body, expect=422)
    assert err["error"]["code"] == "oral_evidence" and missing in err["error"]["message"]


async def test_oral_consent_records_witness_and_evidence(api):
    ref = await api.register(hetu(38))
    consent = await _record(api, ref, {**K2M, **ORAL})
    assert consent["witnessed_by"] == ORAL["witnessed_by"] and consent["evidence_ref"] == ORAL["evidence_ref"]
    blank = await _record(api, ref, {**K2M, **ORAL, "witnessed_by": "   "}, expect=422)
    assert blank["error"]["code"] in ("oral_evidence", "invalid_field")


# -- the disclosing organisation sees and confirms ------------------------------------------------------


async def test_disclosing_organisation_sees_and_confirms_the_consent(api):
    """Property: the organisation whose data a consent releases can read it and record, audited,
    that it has checked it; before this it got 404."""
    ref = await api.register(hetu(39))
    consent = await _record(api, ref, M2K)  # recorded by Kela, the county discloses
    cid = consent["id"]
    seen = await api.call("GET", f"/api/v1/consents/{cid}", "vantaa.paula", expect=200)
    assert seen["disclosing_org"] == "vantaa" and seen["confirmed_at"] is None
    listing = await api.call("GET", f"/api/v1/clients/{ref}/consents", "vantaa.paula", expect=200)
    assert cid in [c["id"] for c in listing["items"]]
    receipt = await api.client.get(f"/api/v1/consents/{cid}/receipt", headers=api.auth("vantaa.paula"))
    assert receipt.status == 200

    confirmed = await api.call("POST", f"/api/v1/consents/{cid}/confirm", "vantaa.paula", expect=200)
    assert confirmed["confirmed_at"] and confirmed["confirmed_by"] == "vantaa.paula"
    await api.call("POST", f"/api/v1/consents/{cid}/confirm", "vantaa.paula", expect=409)
    full = await api.call("GET", f"/api/v1/consents/{cid}", "kela.aino", expect=200)
    assert [e["event"] for e in full["events"]] == ["created", "confirmed"]
    assert full["confirmed_at"] == confirmed["confirmed_at"]
    assert await _audit_actions(api, cid) == ["consent.created", "consent.confirmed"]


@pytest.mark.parametrize("user,status", [
    ("kela.aino", 403),      # the receiving organisation does not confirm for the discloser
    ("vantaa.sanna", 404),   # a benefits expert does not see consents
    ("vantaa.ville", 403),   # nor a privacy officer
    ("vantaa.admin", 404),   # an admin does not see consents at all
])
async def test_only_the_disclosing_organisations_case_staff_confirm(api, user, status):
    ref = await api.register(hetu(40))
    consent = await _record(api, ref, M2K)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/confirm", user, expect=status)


async def test_a_consent_recorded_by_the_discloser_counts_as_confirmed(api):
    ref = await api.register(hetu(44))
    consent = await _record(api, ref, K2M)  # Kela records and discloses
    assert consent["disclosing_org"] == "kela"
    seen = await api.call("GET", f"/api/v1/consents/{consent['id']}", "kela.eero", expect=200)
    assert seen["confirmed_at"] == consent["created_at"] and seen["confirmed_by"] == "kela.aino"
    await api.call("POST", f"/api/v1/consents/{consent['id']}/confirm", "kela.eero", expect=409)


async def test_a_withdrawn_consent_cannot_be_confirmed_and_either_party_records_withdrawal(api):
    ref = await api.register(hetu(41))
    consent = await _record(api, ref, M2K)
    # The client may tell either organisation: the disclosing one records the withdrawal.
    await api.call("POST", f"/api/v1/consents/{consent['id']}/revoke", "vantaa.paula", expect=200)
    await api.call("POST", f"/api/v1/consents/{consent['id']}/confirm", "vantaa.paula", expect=409)


# -- purpose binding ----------------------------------------------------------------------------------------


async def test_consent_whose_purpose_cannot_carry_its_categories_is_refused(api):
    """Property: a consent that the policy could never use is refused when recorded, naming the
    categories its purpose cannot carry, instead of being stored and silently useless."""
    ref = await api.register(hetu(42))
    engine = api.client.app[keys.POLICY]
    body = {**K2M, "categories": ["income.kela_benefit", "health", "social_work.assessment"],
            "purpose": "tt.application_intake"}
    assert not engine.purpose_allows("tt.application_intake", "health")
    err = await _record(api, ref, body, expect=422)
    assert err["error"]["code"] == "purpose_binding"
    message = err["error"]["message"]
    assert "health" in message and "social_work.assessment" in message and "income.kela_benefit" not in message


# -- the receipt -------------------------------------------------------------------------------------------------

CODES = re.compile(r"\b(self|oral|written|e_service|guardian|legal_representative|active|withdrawn|suspended|"
                   r"expired|kela|vantaa|advisor|social_worker|expert)\b|\b(tt|sh)\.[a-z_]+|\b[a-z_]+\.[a-z_]+\b")


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
async def test_receipt_is_plain_language_with_controllers_rights_and_consequences(api, lang):
    """Property: the receipt a client is handed names the controllers and how to reach them, what
    is disclosed by whom to whom and why, the right to withdraw and what follows from refusing,
    in the client's language, with no internal codes."""
    ref = await api.register(hetu(43))
    consent = await _record(api, ref, {**M2K, **ORAL, "recipient_roles": ["advisor"]})
    response = await api.client.get(f"/api/v1/consents/{consent['id']}/receipt?lang={lang}",
                                    headers=api.auth("kela.aino"))
    assert response.status == 200
    body = await response.text()
    settings = api.client.app[keys.SETTINGS]
    for org in ("kela", "vantaa"):
        controller = settings.controllers[org]
        assert controller.name[lang] in body
        assert controller.address in body and controller.privacy_contact in body
    expected = {
        "fi": ["Rekisterinpitäjät", "sosiaalityön", "Voit peruuttaa", "Jos et anna suostumusta", "suullisesti",
               "todistaja", "Eero Neuvoja"],
        "sv": ["Personuppgiftsansvariga", "socialarbete", "Du kan återkalla", "Om du inte ger ditt samtycke",
               "muntligt", "Vittne", "Eero Neuvoja"],
        "en": ["Controllers", "social work", "You may withdraw", "If you do not give consent", "orally",
               "witnessed", "Eero Neuvoja"],
    }[lang]
    for phrase in expected:
        assert phrase in body, phrase
    # No internal codes: grantor, method, status, purpose, category, role or organisation ids.
    stripped = body
    for org in ("kela", "vantaa"):
        c = settings.controllers[org]
        for part in (c.address, c.phone, c.privacy_contact, c.web):
            stripped = stripped.replace(part, "")
    stripped = stripped.replace(consent["id"], "")
    assert not CODES.search(stripped), CODES.search(stripped)


async def test_every_category_and_purpose_has_a_plain_label(api):
    """Property: whatever the policy can name, the receipt can say in Finnish, Swedish and English."""
    from consult.services.receipts import PLAIN

    engine = api.client.app[keys.POLICY]
    for lang in ("fi", "sv", "en"):
        missing = [c for c in engine.item_categories if c not in PLAIN[lang]["category"]]
        missing += [p for p in engine.known_purposes if p not in PLAIN[lang]["purpose"]]
        assert not missing, (lang, missing)


# -- consents recorded before 0013_consent -------------------------------------------------------------------


def test_consents_recorded_before_0013_are_read_with_a_discloser_where_clear_and_an_end(tmp_path):
    """An old consent recorded by a non-recipient is read with its recorder as discloser; one whose
    recorder is also a recipient names none (and covers nothing); an open-ended one ends 365 days
    after it became valid. The migration leaves the rows as they were: the audit log vouches for
    them."""
    import sqlite3

    from consult.model.consents import ConsentVersion
    from consult.services.consents import answer, as_policy_consent
    from consult.storage import migrate

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url, "0012_close_flags")
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO clients (client_ref, hetu_index, hetu_sealed, created_at, created_by, created_org)"
                    " VALUES ('cl_00000000000000000001', 'i1', x'00', '2024-01-01 00:00:00', 'u', 'kela')")
        for cid, recipients, until in (("c-clear", '["vantaa"]', None),
                                       ("c-ambiguous", '["kela", "vantaa"]', "2024-06-01 00:00:00.000000")):
            con.execute(
                "INSERT INTO consents (id, version, client_ref, grantor, categories, recipient_orgs, recipient_roles,"
                " recipient_users, purposes, valid_from, valid_until, method, evidence_ref, recorded_by,"
                " recorded_org, status, status_changed_at, created_at) VALUES (?, 1, 'cl_00000000000000000001',"
                " 'self', '[\"health\"]', ?, '[]', '[]', '[\"sh.multidisciplinary\"]',"
                " '2024-01-01 00:00:00.000000', ?, 'oral', NULL, 'u', 'kela', 'active',"
                " '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000')", (cid, recipients, until))
    migrate.upgrade(url)
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in con.execute("SELECT * FROM consents")}
    assert rows["c-clear"]["disclosing_org"] is None and rows["c-clear"]["valid_until"] is None  # untouched
    for row in rows.values():
        for key in ("valid_from", "valid_until", "created_at", "status_changed_at"):
            if row[key]:
                row[key] = datetime.fromisoformat(row[key]).replace(tzinfo=UTC)
        for key in ("categories", "recipient_orgs", "recipient_roles", "recipient_users", "purposes"):
            row[key] = __import__("json").loads(row[key])
    versions = {cid: ConsentVersion(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
                for cid, row in rows.items()}
    now = datetime(2024, 3, 1, tzinfo=UTC)
    clear, ambiguous = as_policy_consent(versions["c-clear"], now), as_policy_consent(versions["c-ambiguous"], now)
    assert clear.disclosing_org == "kela" and clear.valid_until == datetime(2024, 12, 31, tzinfo=UTC)
    assert ambiguous.disclosing_org is None
    assert answer(versions["c-clear"], datetime(2025, 1, 1, tzinfo=UTC)).wire()["status"] == "expired"


def test_controller_details_are_configured_per_organisation(tmp_path):
    """Property: every configured organisation has controller details for the receipt, from the
    TOML file; start-up refuses an organisation without them, naming the key."""
    from consult.config import load_settings
    from consult.errors import ConfigError

    with pytest.raises(ConfigError, match="CONSULT_ORGS: espoo"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_ORGS": "kela,vantaa,espoo"})
    config = tmp_path / "konsulta.toml"
    config.write_text('[controllers.espoo]\nname_fi = "Länsi-Uudenmaan hyvinvointialue"\n'
                      'name_sv = "Västra Nylands välfärdsområde"\nname_en = "Western Uusimaa wellbeing services county"\n'
                      'address = "PL 1, 02070 ESPOO"\nphone = "09 000 000"\nprivacy_contact = "dpo@example.invalid"\n'
                      'web = "example.invalid"\n', encoding="utf-8")
    settings = load_settings({"CONSULT_DEV": "1", "CONSULT_ORGS": "kela,vantaa,espoo", "CONSULT_CONFIG": str(config)})
    assert settings.controllers["espoo"].name["sv"] == "Västra Nylands välfärdsområde"
    assert settings.controllers["kela"].name["fi"] == "Kansaneläkelaitos (Kela)"
    config.write_text('[controllers.espoo]\nname_fi = "X"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="controllers.espoo"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_CONFIG": str(config)})
