"""Referrals that do what the law says: a sosiaalihuoltolaki 1301/2014 35 § contact goes at once to
the county's social-work intake with its own service level and records why consent could not be
obtained; a child-welfare notification (lastensuojelulaki 417/2007 25 §) goes only to the
child-welfare intake, records its notifier and its statutory basis, and nothing flows back."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from consult.http import keys
from tests.api.gateutil import stored_texts
from tests.synthetic import hetu

WHY = "WHY-SENTINEL: the client left before consent could be asked and does not answer the phone."
GROUND = {"condition": "unable_to_look_after_self", "justification": "Asunnoton, ei kykene huolehtimaan itsestään.",
          "why_no_consent": WHY}
CONCERN = "CONCERN-SENTINEL: lapsi jäi yksin asiointipisteeseen pitkäksi aikaa."


async def _referral(api, n, **fields):
    ref = await api.register(hetu(n))
    return await api.open_consultation(purpose="sh.referral", client_ref=ref, topic="urgent_assistance",
                                       question="Asiakas tarvitsee sosiaalihuollon apua.", **fields), ref


async def _audit(api, where: str, **params):
    async with api.client.app[keys.DB].read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text(
            f"SELECT * FROM audit_events WHERE {where} ORDER BY seq"), params)).all()]


# -- § 35: where it goes and how fast -----------------------------------------------------------------


async def test_referral_goes_to_the_social_work_intake_not_a_benefits_expert(api):
    """Property: a § 35 contact is offered to the county's social-work intake (social workers on
    duty there), never to a benefits expert, and only a social worker claims it."""
    created, _ = await _referral(api, 1)
    cid = created["id"]
    assert created["pool"] == api.client.app[keys.SETTINGS].referral_pool
    assert created["urgency"] == "immediate"
    await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.sanna", expect=404)
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=404)
    listing = await api.call("GET", "/api/v1/consultations", "vantaa.sanna", expect=200)
    assert cid not in [c["id"] for c in listing["items"]]
    offered = await api.call("GET", "/api/v1/consultations", "vantaa.paula", expect=200)
    assert cid in [c["id"] for c in offered["items"]]
    claimed = await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)
    assert [(p["user_id"], p["role"]) for p in claimed["participants"] if p["org"] == "vantaa"] == [
        ("vantaa.paula", "social_worker")]
    # Nor can a benefits expert be added to it afterwards.
    await api.call("GET", "/api/v1/me", "vantaa.sanna", expect=200)
    err = await api.call("POST", f"/api/v1/consultations/{cid}/participants", "vantaa.paula",
                         json={"user_id": "vantaa.sanna"}, expect=422)
    assert err["error"]["code"] == "intake_role"


@pytest.mark.parametrize("fields,code", [
    ({"urgency": "today"}, "referral_urgency"),
    ({"urgency": "normal"}, "referral_urgency"),
    ({"pool": "toimeentulotuki"}, "referral_routing"),
    ({"expert_id": "vantaa.sanna"}, "referral_routing"),
])
async def test_referral_is_immediate_and_routed_only_to_the_intake(api, fields, code):
    ref = await api.register(hetu(2))
    err = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
        "topic": "urgent_assistance", "urgency": "immediate", "question": "q", "purpose": "sh.referral",
        "target_org": "vantaa", "client_ref": ref, **fields})
    assert err["error"]["code"] == code


async def test_referral_has_its_own_service_level(api):
    """Property: "viipymättä" is a service level of its own, shorter than an ordinary immediate one."""
    settings = api.client.app[keys.SETTINGS]
    assert settings.referral_sla_seconds < 300
    created, _ = await _referral(api, 3)
    assert created["routing"]["sla_seconds"] == settings.referral_sla_seconds
    ordinary = await api.open_consultation()
    assert ordinary["routing"]["sla_seconds"] == 300


async def test_referral_settings_are_configurable():
    from consult.config import load_settings
    from consult.errors import ConfigError

    s = load_settings({"CONSULT_DEV": "1", "CONSULT_REFERRAL_SLA_SECONDS": "60",
                       "CONSULT_REFERRAL_POOL": "sosiaalityo", "CONSULT_CHILD_WELFARE_POOL": "lastensuojelu"})
    assert (s.referral_sla_seconds, s.referral_pool, s.child_welfare_pool) == (60, "sosiaalityo", "lastensuojelu")
    with pytest.raises(ConfigError, match="CONSULT_REFERRAL_POOL"):
        load_settings({"CONSULT_DEV": "1", "CONSULT_REFERRAL_POOL": "lastensuojelu",
                       "CONSULT_CHILD_WELFARE_POOL": "lastensuojelu"})


async def test_only_social_workers_are_named_to_an_intake_pool(api):
    await api.call("GET", "/api/v1/me", "vantaa.sanna", expect=200)
    err = await api.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.admin", expect=422,
                         json={"pools": ["toimeentulotuki", "social_work_intake"]})
    assert err["error"]["code"] == "intake_role"


# -- § 35(2): why consent could not be obtained ------------------------------------------------------


async def test_referral_without_consent_records_why_consent_could_not_be_obtained(api):
    """Property: a § 35(2) contact without consent is refused unless it records why consent could
    not be obtained; the reason is kept sealed, never in clear in the database."""
    created, _ = await _referral(api, 4)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)
    item = {"category": "service_need.referral", "value": "Tarvitsee kiireellistä apua asumiseen."}
    for ground in ({k: v for k, v in GROUND.items() if k != "why_no_consent"}, {**GROUND, "why_no_consent": "  "}):
        err = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=422,
                             json={"data": [{**item, "referral": ground}]})
        assert "why_no_consent" in err["error"]["message"]
    sent = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201,
                          json={"data": [{**item, "referral": GROUND}]})
    assert not sent["policy"]["withheld"]
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert page["items"][-1]["data"][0]["value"] == item["value"]
    disclosed = await _audit(api, "consultation_id = :c AND action = 'disclose'", c=cid)
    assert disclosed and "referral_without_consent" in json.dumps(disclosed[-1]["flags"])
    where = [w for w, t in await stored_texts(api.client.app) if WHY in t]
    assert where == ["message_items.referral_why_no_consent (sealed)"]


def test_policy_counts_a_referral_recorded_only_with_its_reason():
    from consult.policy.model import Referral

    assert Referral("child_interest", "Synthetic.", "Synthetic: unreachable.").is_recorded
    assert not Referral("child_interest", "Synthetic.", " ").is_recorded
    assert not Referral("child_interest", "Synthetic.").is_recorded


async def test_section_35_wording_follows_the_act_in_finnish_and_swedish():
    """The act's words: the child's interest *necessarily* requires it (välttämättä, nödvändigtvis),
    and the contact is made *without delay* (viipymättä, utan dröjsmål)."""
    from tests.conftest import ROOT

    fi = json.loads((ROOT / "web" / "i18n" / "fi.json").read_text(encoding="utf-8"))
    sv = json.loads((ROOT / "web" / "i18n" / "sv.json").read_text(encoding="utf-8"))
    assert "välttämättä" in fi["referral.child_interest"] and "nödvändigtvis" in sv["referral.child_interest"]
    assert "viipymättä" in fi["referral.help"] and "utan dröjsmål" in sv["referral.help"]
    assert "sosiaalihuoltolain 35 §" in fi["referral.title"]
    assert fi["referral.why_no_consent"] and sv["referral.why_no_consent"]


# -- the child-welfare notification ----------------------------------------------------------------------


async def _notify(api, n, user="kela.aino", expect=201, **fields):
    ref = await api.register(hetu(n))
    body = {"target_org": "vantaa", "client_ref": ref, "text": CONCERN, **fields}
    return await api.call("POST", "/api/v1/child-welfare-notifications", user, json=body, expect=expect), ref


async def test_child_welfare_notification_reaches_only_the_child_welfare_intake(api):
    """Property: a notification under lastensuojelulaki 25 § needs no consent, goes at once to the
    county's child-welfare intake and to no one else, and names its notifier."""
    created, ref = await _notify(api, 10)
    cid = created["id"]
    assert created["purpose"] == "ls.notification" and created["urgency"] == "immediate"
    assert created["pool"] == api.client.app[keys.SETTINGS].child_welfare_pool
    notifier = created["notification"]["notifier"]
    assert notifier == {"user_id": "kela.aino", "name": "Aino Neuvoja", "org": "kela", "role": "advisor"}
    assert "417/2007" in created["notification"]["citation"] and "25 §" in created["notification"]["citation"]
    for outsider in ("vantaa.paula", "vantaa.sanna", "vantaa.mikko"):
        await api.call("GET", f"/api/v1/consultations/{cid}", outsider, expect=404)
        listing = await api.call("GET", "/api/v1/consultations", outsider, expect=200)
        assert cid not in [c["id"] for c in listing["items"]]
    seen = await api.call("GET", f"/api/v1/consultations/{cid}", "vantaa.kaisa", expect=200)
    assert CONCERN in seen["question"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.kaisa", expect=200)
    record = await api.call("GET", f"/api/v1/child-welfare-notifications/{cid}", "vantaa.kaisa", expect=200)
    assert record["notification"]["notifier"]["name"] == "Aino Neuvoja"
    await api.call("GET", f"/api/v1/child-welfare-notifications/{cid}", "vantaa.paula", expect=404)


async def test_child_welfare_notification_is_audited_with_its_statutory_basis(api):
    created, ref = await _notify(api, 11)
    rows = await _audit(api, "consultation_id = :c AND action = 'child_welfare.notify'", c=created["id"])
    assert len(rows) == 1
    row = rows[0]
    assert row["basis"].startswith("statute:") and row["rule_id"] == created["notification"]["rule_id"]
    assert row["client_ref"] == ref and row["recipient_org"] == "vantaa" and row["recipient_role"] == "social_worker"
    assert row["actor_id"] == "kela.aino" and row["policy_version"]


async def test_nothing_flows_back_from_child_welfare_to_kela(api):
    """Property: the child-welfare intake acknowledges a notification but sends nothing back: no
    message, no attachment, no closing note; and the policy permits nothing from the county to
    Kela under this purpose."""
    created, _ = await _notify(api, 12)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.kaisa", expect=200)
    err = await api.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.kaisa", expect=403,
                         json={"text": "Lapsi on lastensuojelun asiakas."})
    assert err["error"]["code"] == "one_way"
    form = __import__("aiohttp").FormData()
    form.add_field("file", b"%PDF-1.4\n%%EOF\n", filename="x.pdf", content_type="application/pdf")
    upload = await api.client.post(f"/api/v1/consultations/{cid}/attachments", data=form, headers=api.auth("vantaa.kaisa"))
    assert upload.status == 403
    err = await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.kaisa", expect=422,
                         json={"outcome": "advice_given", "note": "Lastensuojeluasia on jo vireillä."})
    assert err["error"]["code"] == "one_way"
    await api.call("POST", f"/api/v1/consultations/{cid}/close", "vantaa.kaisa", expect=200,
                   json={"outcome": "referred"})
    # The notifier may add to the notification while it is open, and the intake reads it.
    second, _ = await _notify(api, 13)
    await api.call("POST", f"/api/v1/consultations/{second['id']}/messages", "kela.aino", expect=201,
                   json={"text": "Lisätieto: lapsi on noin 6-vuotias."})
    engine = api.client.app[keys.POLICY]
    from consult.policy.model import ItemRequest, Party
    from datetime import UTC, datetime
    for category in sorted(engine.item_categories):
        decision = engine.decide(ItemRequest(Party("vantaa", "social_worker"), Party("kela", "advisor"), category,
                                             "ls.notification", "cl_x", None, (), None, datetime.now(UTC)))
        assert decision.effect != "permit", category


@pytest.mark.parametrize("user", ["vantaa.paula", "vantaa.sanna", "kela.tuula", "kela.admin"])
async def test_only_kela_case_staff_notify_through_this_path(api, user):
    await _notify(api, 14, user=user, expect=403)


async def test_child_welfare_notification_needs_no_consent_and_refuses_unknown_fields(api):
    _, ref = await _notify(api, 15)
    err = await api.call("POST", "/api/v1/child-welfare-notifications", "kela.aino", expect=422, json={
        "target_org": "vantaa", "client_ref": ref, "text": CONCERN, "consent_id": "x"})
    assert err["error"]["code"] == "unknown_field"
    err = await api.call("POST", "/api/v1/consultations", "kela.aino", expect=422, json={
        "topic": "other", "urgency": "immediate", "question": "q", "purpose": "ls.notification",
        "target_org": "vantaa", "client_ref": ref})
    assert err["error"]["code"] == "child_welfare_notification"


async def test_the_queue_shows_a_referral_to_the_intake_only_and_the_reason_stays_with_the_sender(api):
    created, _ = await _referral(api, 20)
    cid = created["id"]
    assert cid in [i["id"] for i in (await api.call("GET", "/api/v1/queue", "vantaa.paula", expect=200))["items"]]
    assert cid not in [i["id"] for i in (await api.call("GET", "/api/v1/queue", "vantaa.sanna", expect=200))["items"]]
    assert cid not in [i["id"] for i in (await api.call("GET", "/api/v1/queue", "vantaa.kaisa", expect=200))["items"]]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "data": [{"category": "service_need.referral", "value": "Tarvitsee apua.", "referral": GROUND}]})
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert WHY not in json.dumps(page)


async def test_an_item_sent_before_the_reason_was_required_keeps_its_decision(api):
    created, _ = await _referral(api, 21)
    cid = created["id"]
    await api.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.paula", expect=200)
    await api.call("POST", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=201, json={
        "data": [{"category": "service_need.referral", "value": "LEGACY-VALUE", "referral": GROUND}]})
    await api.client.app[keys.DB].write(lambda conn: conn.execute(text(
        "UPDATE message_items SET referral_why_no_consent_sealed = NULL")))
    page = await api.call("GET", f"/api/v1/consultations/{cid}/messages", "vantaa.paula", expect=200)
    assert page["items"][-1]["data"][0]["value"] == "LEGACY-VALUE"


async def test_an_unclaimed_referral_is_offered_again_after_its_own_service_level(aiohttp_client, settings, monkeypatch):
    from tests.api.routingutil import routed_api

    rapi = await routed_api(aiohttp_client, settings, monkeypatch)
    ref = await rapi.register(hetu(22))
    await rapi.open_consultation(purpose="sh.referral", client_ref=ref, topic="urgent_assistance")
    sla = rapi.app[keys.SETTINGS].referral_sla_seconds
    assert (await rapi.advance(seconds=sla - 1))["reoffered"] == 0
    assert (await rapi.advance(seconds=1))["reoffered"] == 1


async def test_a_phone_number_in_a_notification_is_withheld_from_the_intake(api):
    created, ref = await _notify(api, 23, text=CONCERN + " Äidin numero 040 7654321.")
    seen = await api.call("GET", f"/api/v1/consultations/{created['id']}", "vantaa.kaisa", expect=200)
    assert "7654321" not in seen["question"] and "[phone withheld]" in seen["question"]
