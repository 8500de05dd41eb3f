"""Every view and every state the app reaches, in Finnish, Swedish and English: zero axe-core
violations of WCAG 2.0, 2.1 and 2.2 A/AA (target size included), at desktop width and at 320 CSS
px, and no horizontal scroll at 320 CSS px, which is also a 1280 px window at 400 % zoom
(WCAG 1.4.10 reflow)."""

from __future__ import annotations

import re

import pytest

from tests.synthetic import hetu
from tests.web.test_admin_ui import restore_duty, roster_of
from tests.web.test_browser import _ask
from tests.web.test_words import _api

LOCALES = {"fi": "fi-FI", "sv": "sv-FI", "en": "en-GB"}
SECRET = "SALAINEN-PAATOS-515-EUR"


def _sections(tab) -> list[str]:
    return tab.page.eval_on_selector_all(".subnav a", "(as) => as.map((a) => a.getAttribute('href'))")


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_every_view_and_state_is_accessible_and_reflows(tabs, lang):
    n = {"fi": 60, "sv": 61, "en": 62}[lang]
    advisor, expert, officer, admin = (tabs(LOCALES[lang]) for _ in range(4))

    a = advisor.open("#/signin")
    assert a.get_attribute("html", "lang") == lang
    advisor.check("sign-in")
    advisor.sign_in("kela.aino")
    a.wait_for_selector("#duty-h")
    a.wait_for_load_state("networkidle")
    advisor.check("advisor home")

    # Form validation errors: a question without text, a broken identity code.
    a.fill("input[name=hetu]", hetu(n)[:-1] + ("X" if hetu(n)[-1] != "X" else "Y"))
    a.click("form.ask-form button[type=submit]")
    a.wait_for_selector("form.ask-form [aria-invalid=true]")
    advisor.check("the question form with validation errors")
    a.fill("input[name=hetu]", "")

    # Consents: an error, then a client, a consent and its receipt.
    advisor.go("#/consents")
    advisor.check("consents")
    a.fill("form.inline-form input[name=hetu]", "010190-90")
    a.click("form.inline-form button[type=submit]")
    a.wait_for_selector("form.inline-form [aria-invalid=true]")
    advisor.check("consents with an invalid identity code")
    a.fill("form.inline-form input[name=hetu]", hetu(n, birth="020290"))
    a.click("form.inline-form button[type=submit]")
    a.wait_for_selector("#new-consent-h")
    a.check("input[name=categories][value='income.other']")
    a.click("form.consent-form button[type=submit]")
    a.wait_for_selector(".receipt-text")
    advisor.check("consents with a receipt")

    # The expert's queue, the urgent alert banner, the consultation.
    e = expert.sign_in("vantaa.sanna")
    expert.go("#/expert", ready="#queue-h")
    expert.check("expert queue and duty")
    advisor.go("#/advisor", ready="form.ask-form")
    cid = _ask(a, client=hetu(n), urgency="immediate")
    advisor.check("the advisor's consultation")
    e.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
    e.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    expert.check("expert queue with the urgent alert banner")
    _api(e, "POST", f"/api/v1/consultations/{cid}/claim")
    _api(e, "POST", f"/api/v1/consultations/{cid}/messages",
         {"text": "Päätös alla.", "data": [{"category": "decision.content", "value": SECRET},
                                           {"category": "decision.period", "value": "31.12.2026"}]})
    expert.go(f"#/c/{cid}", ready=".messages .message.mine")
    expert.check("the expert's consultation")
    a.wait_for_selector(".messages .item.withheld")
    a.locator(".messages .item.withheld summary").first.click()
    advisor.check("the advisor's consultation with a withheld item expanded")

    # The privacy officer's sections, a client access report and its extract.
    officer.sign_in("vantaa.ville")
    for href in _sections(officer):
        officer.go(href, ready=".section-body h2")
        officer.page.wait_for_load_state("networkidle")
        officer.check(href)
    o = officer.page
    officer.go("#/privacy/report", ready="#report-h")
    o.fill("form input[name=hetu]", hetu(99, birth="030390"))
    o.click("form button[type=submit]")
    o.wait_for_selector("#report-h ~ .status-area .error, .card .status-area .error")
    officer.check("the client access report with an unknown client")
    o.fill("form input[name=hetu]", "")
    o.fill("input[name=client_ref]", a.inner_text(".c-header .facts dd >> text=/^cl_/"))
    o.click("form button[type=submit]")
    o.wait_for_selector(".report table")
    officer.check("client access report")
    o.locator(".extract-part button").first.click()
    o.wait_for_selector(".extract pre")
    officer.check("log extract")

    # The admin's sections, the editors and the confirmations.
    d = admin.sign_in("vantaa.admin")
    for href in _sections(admin):
        admin.go(href, ready=".section-body h2")
        admin.page.wait_for_load_state("networkidle")
        admin.check(href)
    admin.go("#/admin/experts", ready="#experts-h")
    d.locator("main table button").first.click()
    d.wait_for_selector("#edit-h")
    admin.check("expert editor")
    admin.go("#/admin/pools", ready="#pools-h")
    d.locator("main table button[data-pool]").first.click()
    d.wait_for_selector("#pool-edit-h")
    d.fill("input[name=sla_today]", "")
    d.click("form.pool-form button[type=submit]")
    d.wait_for_selector("form.pool-form [aria-invalid=true]")
    admin.check("pool editor with a validation error")
    admin.go("#/admin/pools", ready="#pools-h")
    d.click("#pool-new")
    d.wait_for_selector("#pool-new-h")
    d.click("form.pool-new-form button[type=submit]")
    d.wait_for_selector("form.pool-new-form [aria-invalid=true]")
    admin.check("new pool with a validation error")
    d.fill("input[name=pool_name]", f"a11y-{lang}")
    d.click("form.pool-new-form button[type=submit]")
    d.wait_for_selector("dialog[open]")
    admin.check("new pool with its confirmation open")
    d.keyboard.press("Escape")
    d.wait_for_selector("dialog", state="detached")

    admin.go("#/admin/sessions", ready="#sessions-h")
    d.click("form.sessions-form button[type=submit]")
    d.wait_for_selector("form.sessions-form [aria-invalid=true]")
    admin.check("sessions with a validation error")
    d.fill("input[name=user_id]", "vantaa.mikko")
    d.click("form.sessions-form button[type=submit]")
    d.wait_for_selector("dialog[open]")
    admin.check("sessions with the confirmation open")
    d.keyboard.press("Escape")
    d.wait_for_selector("dialog", state="detached")

    admin.go("#/admin/roster", ready="#rule-h")
    was_on_duty = roster_of(d, "vantaa.liisa")["on_duty"]
    try:
        d.select_option("form.rule-form select[name=user_id]", "vantaa.liisa")
        d.check("form.rule-form input[name=weekday][value='6']")
        d.click("form.rule-form button[type=submit]")
        d.wait_for_selector("button[data-remove]")
        admin.check("roster with weekly rules")
        d.locator("button[data-remove]").first.click()
        d.wait_for_selector("dialog[open]")
        admin.check("roster with the removal confirmation open")
        d.keyboard.press("Escape")
        d.wait_for_selector("dialog", state="detached")
    finally:
        restore_duty(d, "vantaa.liisa", was_on_duty)
