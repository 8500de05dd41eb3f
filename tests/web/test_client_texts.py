"""What the client reads, in Finnish or Swedish: the consent receipt and the client access report
name organisations, purposes, categories, grantors and methods in words and give times in
Helsinki time in the language's own format, never as codes or UTC timestamps; and wherever the
app shows an organisation it shows its name."""

from __future__ import annotations

import re

import pytest

from tests.synthetic import hetu
from tests.web.test_browser import _ask
from tests.web.test_words import _api

LOCALES = {"fi": "fi-FI", "sv": "sv-FI"}
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
GRANTORS = ("self", "guardian", "legal_representative")
METHODS = ("written", "oral", "e_service")


def _raw_codes(text: str, config: dict) -> set[str]:
    """Vocabulary codes left in ``text`` as whole words (the org ids are lower-case words; the
    organisations' names are capitalised)."""
    codes = set(config["purposes"]) | set(config["categories"]) | set(config["orgs"]) | set(GRANTORS) | set(METHODS)
    codes |= set(config["topics"]) | {"permit", "deny", "active", "withdrawn"}
    found = set()
    for code in codes:
        if re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-]|\.\w)", text):
            found.add(code)
    return found


def _timestamps(text: str) -> list[str]:
    return ISO_TIME.findall(text) + ISO_DATE.findall(text)


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_receipt_and_access_report_are_words_and_local_times(tabs, lang):
    n = {"fi": 70, "sv": 71}[lang]
    advisor, expert, officer = tabs(LOCALES[lang]), tabs(LOCALES[lang]), tabs(LOCALES[lang])
    a = advisor.sign_in("kela.aino")
    config = _api(a, "GET", "/api/v1/config", None)
    client = hetu(n, birth="040490")

    # A consent with its receipt in the user's language.
    advisor.go("#/consents")
    a.fill("form.inline-form input[name=hetu]", client)
    a.click("form.inline-form button[type=submit]")
    a.wait_for_selector("#new-consent-h")
    a.check("input[name=categories][value='income.other']")
    a.click("form.consent-form button[type=submit]")
    a.wait_for_function("(l) => document.querySelector('.receipt-text')?.getAttribute('lang') === l"
                        " && document.querySelector('.receipt-text').textContent.length > 100", arg=lang)
    receipt = a.inner_text(".receipt-text")
    consents = a.inner_text("section[aria-labelledby=client-h] table")
    for what, text in (("receipt", receipt), ("consents", consents)):
        assert _raw_codes(text, config) == set(), (what, text)
        assert _timestamps(text) == [], (what, text)
    assert {"fi": "Kansaneläkelaitos", "sv": "Folkpensionsanstalten"}[lang] in receipt

    # An answered consultation about the client, then the officer's report of it.
    e = expert.sign_in("vantaa.sanna")
    advisor.go("#/advisor", ready="form.ask-form")
    cid = _ask(a, client=client, urgency="today")
    ref = a.inner_text(".c-header .facts dd >> text=/^cl_/")
    _api(e, "POST", f"/api/v1/consultations/{cid}/claim")
    _api(e, "POST", f"/api/v1/consultations/{cid}/messages",
         {"text": "Vastaus.", "data": [{"category": "decision.content", "value": "X-118"},
                                       {"category": "decision.period", "value": "31.12.2026"}]})
    a.wait_for_selector(".messages .message.theirs")
    header = a.inner_text(".c-header")
    assert {"fi": "Vantaan ja Keravan hyvinvointialue", "sv": "Vanda och Kervo välfärdsområde"}[lang] in header
    assert _raw_codes(header, config) == set(), header

    o = officer.sign_in("vantaa.ville")
    officer.go("#/privacy/report", ready="#report-h")
    o.fill("input[name=client_ref]", ref)
    o.click("form button[type=submit]")
    o.wait_for_selector(".report table")
    report = o.inner_text(".report")
    assert _raw_codes(report, config) == set(), report
    assert _timestamps(report) == [], report
    assert {"fi": "Kansaneläkelaitos", "sv": "Folkpensionsanstalten"}[lang] in report
    for button in o.locator(".extract-part .actions button").all():
        button.click()
        o.wait_for_selector(".extract pre")
        extract = o.inner_text(".extract pre")
        assert _raw_codes(extract, config) == set(), extract
        assert _timestamps(extract) == [], extract
