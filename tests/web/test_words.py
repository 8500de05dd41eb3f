"""The app speaks the user's language: the policy's withheld reasons and citations, the codes of
actions, flags and statuses, and the client's consent receipt are shown as words in Finnish,
Swedish and English."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from tests.synthetic import hetu
from tests.web.test_browser import _ask

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SALAINEN-PAATOS-118-EUR"
REASON_EN = "Kela may learn until when the wellbeing services county's decision runs"
REASON_FI = "Kela saa tietää, mihin asti hyvinvointialueen päätös on voimassa"
REASON_SV = "FPA får veta till när välfärdsområdets beslut gäller"


def _api(page, method: str, path: str, body=None):
    return page.evaluate("""async ([method, path, body]) => {
        const { api } = await import("/static/js/api.js");
        return api(method, path, body === null ? undefined : body);
    }""", [method, path, body])


def _withheld_answer(tabs, client: str):
    """An advisor asks about ``client``; an expert claims and answers with a decision's content,
    which the policy withholds from the advisor. Answers the advisor's tab and the consultation."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    e = expert.sign_in("vantaa.sanna")
    cid = _ask(a, client=client)
    _api(e, "POST", f"/api/v1/consultations/{cid}/claim")
    _api(e, "POST", f"/api/v1/consultations/{cid}/messages",
         {"text": "Päätös alla.", "data": [{"category": "decision.content", "value": SECRET}]})
    a.wait_for_selector(".messages .item.withheld")
    return advisor, cid


def test_withheld_reason_and_citation_are_in_the_ui_language(tabs):
    advisor, cid = _withheld_answer(tabs, hetu(41, sign="A", birth="150305"))
    a = advisor.page
    item = a.locator(".messages .item.withheld").first
    item.locator("summary").click()
    text = item.inner_text()
    assert REASON_FI in text and REASON_EN not in text
    assert "sosiaalihuollon asiakasasiakirjat ovat salassa pidettäviä" in text
    assert "social-welfare client documents are secret" not in text
    assert item.locator(".reason").get_attribute("lang") == "fi"
    assert SECRET not in a.content()
    advisor.axe("a withheld item in Finnish")

    a.select_option("#tools select", "sv")
    a.wait_for_selector("html[lang=sv]")
    item = a.wait_for_selector(".messages .item.withheld")
    a.wait_for_function("(t) => (document.querySelector('.messages .item.withheld .reason')?.textContent || '').startsWith(t)",
                        arg=REASON_SV)
    assert advisor.page.locator(".messages .item.withheld .reason").get_attribute("lang") == "sv"
    advisor.axe("a withheld item in Swedish")

    a.select_option("#tools select", "en")
    a.wait_for_selector("html[lang=en]")
    a.wait_for_function("(t) => (document.querySelector('.messages .item.withheld .reason')?.textContent || '').startsWith(t)",
                        arg=REASON_EN)


def test_a_reason_without_translation_is_shown_as_english(tabs):
    """A changed or new policy text is never given an outdated translation: it is shown as sent."""
    tab = tabs()
    page = tab.open("#/signin")
    shown = page.evaluate("""async () => {
        const { loadPolicyTexts, policyText } = await import("/static/js/policytext.js");
        await loadPolicyTexts();
        const consent = "Debt information goes to Kela only with the client's consent. "
          + "Needs a valid consent that covers it: the consent has been withdrawn.";
        return [policyText("A rule written yesterday."), policyText(consent)];
    }""")
    assert shown[0] == {"text": "A rule written yesterday.", "lang": "en"}
    assert shown[1]["lang"] == "fi"
    assert shown[1]["text"] == ("Velkatiedot annetaan Kelalle vain asiakkaan suostumuksella. Edellyttää voimassa "
                                "olevaa suostumusta, joka kattaa sen: suostumus on peruttu.")


def _policy_texts() -> set[str]:
    """The reasons and citations of the shipped profiles that a withheld item can carry."""
    found: set[str] = set()
    for name in ("baseline.toml", "vantaa.toml", "taxonomy.toml"):
        data = tomllib.loads((ROOT / "policies" / name).read_text(encoding="utf-8"))
        for rule in data.get("rule", []):
            if rule["effect"] in ("deny", "permit_with_consent"):
                found.add(rule["reason"])
                citation = rule.get("citation") or (rule.get("secrecy") or {}).get("citation")
                if citation:
                    found.add(citation)
        for guard in data.get("guards", {}).values():
            found.update((guard["reason"], guard["citation"]))
    return found


def test_every_withheld_reason_and_citation_of_the_shipped_policy_has_finnish_and_swedish():
    texts = json.loads((ROOT / "web" / "i18n" / "policy-texts.json").read_text(encoding="utf-8"))["texts"]
    from consult.policy.consent import CONSENT_FAILURE_TEXT

    wanted = _policy_texts() | set(CONSENT_FAILURE_TEXT.values())
    missing = sorted(t for t in wanted if not (texts.get(t, {}).get("fi") and texts.get(t, {}).get("sv")))
    assert missing == []
    # The placeholder survives in every language, and no translation is left in English.
    for en, tr in texts.items():
        assert re.findall(r"\{\w+\}", en) == re.findall(r"\{\w+\}", tr["fi"]) == re.findall(r"\{\w+\}", tr["sv"])
        assert tr["fi"] != en and tr["sv"] != en


CODE = re.compile(r"\b[a-z]+(?:[._:][a-z]+)+\b")


def _codes(text: str, allowed: set[str]) -> set[str]:
    """Internal codes left in ``text``: dotted or snake-case names (client references and the
    user ids in ``allowed`` excepted)."""
    return {c for c in CODE.findall(text) if not c.startswith("cl_") and c not in allowed}


def test_actions_bases_purposes_and_people_are_words_not_codes(tabs):
    advisor, cid = _withheld_answer(tabs, hetu(42, sign="A", birth="150305"))
    a = advisor.page
    ref = a.inner_text(".c-header .facts dd >> text=/^cl_/")
    # The consultation names people the app knows by name (the user, the authors of messages); the
    # expert who claimed as the page opened joins the header live, without a reload.
    a.wait_for_selector(".participants li[data-user='vantaa.sanna']")
    header = a.inner_text(".c-header")
    assert "Sanna Asiantuntija" in header and "Aino Neuvoja" in header
    assert "vantaa.sanna" not in header and "kela.aino" not in header

    officer = tabs()
    o = officer.sign_in("vantaa.ville")
    # The column of the client reference names the API field it filters on, on purpose. Other tests
    # on this server leave records of users the directory cannot name (advisors who never wrote
    # here): their ids may stand; a code that is not a user id may not, nor a named expert's id.
    from consult.auth.dev import DEMO_USERS

    people = {u.user_id for u in DEMO_USERS} | {"client_ref"}
    for section in ("events", "disclosures"):
        officer.go(f"#/privacy/{section}", ready=".results table")
        text = o.inner_text(".results table")
        assert _codes(text, people) == set(), section
        assert "sääntö kela-never-decision-content" in text
        # Named experts of the directory appear by name.
        assert "Sanna Asiantuntija" in text and "vantaa.sanna" not in text
        if section == "events":
            assert "jätetty luovuttamatta" in text and "välitetty reaaliaikaisesti: uusi viesti" in text

    officer.go("#/privacy/report", ready="#report-h")
    o.fill("input[name=client_ref]", ref)
    o.click("text=Laadi selvitys")
    o.wait_for_selector(".report table")
    report = o.inner_text(".report")
    assert _codes(report, set()) == set()
    assert "välitetty reaaliaikaisesti: uusi viesti" in report
    officer.axe("the client access report in words")


def test_switching_language_keeps_what_is_being_typed(tabs):
    advisor = tabs()
    a = advisor.sign_in("kela.aino")
    client = hetu(43, sign="A", birth="150305")
    a.select_option("select[name=topic]", "application_intake")
    a.check("input[name=urgency][value=today]")
    a.fill("textarea[name=question]", "Kelpaako vuokrasopimuksen kopio?")
    a.fill("input[name=hetu]", client)
    a.select_option("#tools select", "sv")
    a.wait_for_selector("html[lang=sv]")
    a.wait_for_function("() => document.querySelector('textarea[name=question]')?.value === 'Kelpaako vuokrasopimuksen kopio?'")
    assert a.input_value("input[name=hetu]") == client
    assert a.is_checked("input[name=urgency][value=today]")
    assert a.input_value("select[name=topic]") == "application_intake"
    advisor.axe("the question form after a change of language")

    cid = _ask(a, client=client, question="Kelpaako vuokrasopimuksen kopio?")
    a.fill(".composer textarea[name=text]", "Luonnos, jota ei vielä lähetetty.")
    a.select_option("#tools select", "en")
    a.wait_for_selector("html[lang=en]")
    a.wait_for_function("() => document.querySelector('.composer textarea[name=text]')?.value === 'Luonnos, jota ei vielä lähetetty.'")
    assert a.url.endswith(f"#/c/{cid}")


def test_privacy_officer_hides_own_searches_and_downloads_the_log_export(tabs):
    advisor, cid = _withheld_answer(tabs, hetu(44, sign="A", birth="150305"))
    officer = tabs()
    o = officer.sign_in("vantaa.ville")
    officer.go("#/privacy/events", ready=".results table")
    for _ in range(2):  # the officer's own searches are logged as well
        o.click("form.filters button[type=submit]")
        o.wait_for_selector("text=/osumaa/")
    box = o.get_by_label("Piilota omat lokihakuni ja selvitykseni")
    assert box.is_checked()
    text = o.inner_text(".results table")
    assert "lokihaku" not in text and "vantaa.ville" not in text
    assert "jätetty luovuttamatta" in text
    o.wait_for_selector("text=/omaa hakuasi piilotettu/")
    officer.axe("the log search with own searches hidden")
    box.uncheck()
    o.wait_for_selector(".results table >> text=lokihaku")
    box.check()

    with o.expect_download() as info:
        o.click("button[data-format=csv]")
    csv_text = Path(info.value.path()).read_text(encoding="utf-8")
    assert info.value.suggested_filename == "audit-export.csv"
    assert "disclose.withheld" in csv_text and csv_text.splitlines()[0].count(",") >= 3
    with o.expect_download() as info:
        o.click("button[data-format=jsonl]")
    records = [json.loads(line) for line in Path(info.value.path()).read_text(encoding="utf-8").splitlines() if line]
    assert info.value.suggested_filename == "audit-export.jsonl"
    assert any(r.get("action") == "disclose.withheld" for r in records)
    o.wait_for_selector("text=Lokivienti ladattu.")


def test_the_consents_list_names_who_recorded_it(tabs):
    tab = tabs()
    page = tab.sign_in("kela.aino")
    tab.go("#/consents")
    page.fill("input[name=hetu]", hetu(45))
    page.click("form.inline-form button[type=submit]")
    page.wait_for_selector("#new-consent-h")
    page.check("input[name=categories][value='income.other']")
    page.click("text=Kirjaa suostumus")
    page.wait_for_selector(".receipt-text")
    row = page.inner_text("section[aria-labelledby=client-h] table tbody")
    assert "Aino Neuvoja" in row and "kela.aino" not in row
