"""End-to-end in headless Chromium: the app as advisors, experts, privacy officers and admins use
it, against the real server, with axe-core checking every view for WCAG 2.1 AA violations."""

from __future__ import annotations

import json

import re


from tests.synthetic import hetu

SECRET = "SALAINEN-PAATOS-742-EUR"
QUESTION = "Riittääkö vuokrasopimuksen kopio hakemuksen liitteeksi?"


def _ask(page, *, client: str | None, urgency: str = "immediate", question: str = QUESTION,
         purpose: str = "tt.application_intake") -> str:
    page.select_option("select[name=topic]", "application_intake")
    page.check(f"input[name=urgency][value={urgency}]")
    page.select_option("select[name=pool]", "toimeentulotuki")
    page.fill("textarea[name=question]", question)
    if client:
        page.fill("input[name=hetu]", client)
        page.select_option("select[name=purpose]", purpose)
    page.click("form.ask-form button[type=submit]")
    page.wait_for_url(re.compile(r".*#/c/[\w-]+$"))
    page.wait_for_selector(".c-header .facts")
    return page.url.rsplit("/", 1)[1]


def test_pkce_helpers_match_rfc7636_and_hetu_checks_all_century_signs(tabs):
    """The browser's own PKCE code (S256) gives RFC 7636 Appendix B's challenge; its verifiers are
    43 unreserved characters; the HETU check accepts every century sign of 2023 and rejects bad codes."""
    tab = tabs()
    page = tab.open("#/signin")
    result = page.evaluate("""async () => {
        const pkce = await import("/static/js/pkce.js");
        const verifier = pkce.codeVerifier();
        return {
          challenge: await pkce.codeChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
          verifier, other: pkce.codeVerifier(),
          bytes: pkce.base64url(new Uint8Array([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
            187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])),
        };
    }""")
    assert result["challenge"] == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert result["bytes"] == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43}", result["verifier"]) and result["verifier"] != result["other"]

    valid = [hetu(1, sign=s) for s in "+-YXWVU"] + [hetu(2, birth="010105", sign=s) for s in "ABCDEF"]
    broken = hetu(3)[:-1] + ("A" if hetu(3)[-1] != "A" else "B")
    checks = page.evaluate("""async (codes) => {
        const { checkHetu } = await import("/static/js/hetu.js");
        return codes.map((c) => checkHetu(c).error);
    }""", valid + [broken, "310290-900A", "010190-001N", "010190", "010190Z9001", "010190-9"])
    assert checks[: len(valid)] == [None] * len(valid)
    assert checks[len(valid):] == ["check", "date", "individual", "incomplete", "format", "incomplete"]


def test_advisor_asks_expert_is_alerted_answers_and_advisor_sees_it_live(tabs):
    """Two browsers: an advisor asks with the client at the counter, the on-duty expert is alerted,
    claims and answers with structured data; the advisor sees the answer live, and a decision's
    content never reaches the advisor's screen (the legal floor of docs/capabilities.md: never to a Kela reader)."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    e = expert.sign_in("vantaa.sanna")
    e.wait_for_selector("h1")
    client = hetu(11, sign="A", birth="150305")

    # The HETU is checked as it is typed.
    a.fill("input[name=hetu]", client[:-1] + ("X" if client[-1] != "X" else "Y"))
    a.locator("input[name=hetu]").blur()
    assert a.get_attribute("input[name=hetu]", "aria-invalid") == "true"
    a.fill("input[name=hetu]", "")
    # Free text is scanned as it is typed: the advisor is told before sending.
    a.fill("textarea[name=question]", "Asiakkaan tili FI4950000120000567, onko tämä ok?")
    a.wait_for_selector(".scan .scan-notices li")

    cid = _ask(a, client=client)
    assert re.search(r"cl_\w+", a.inner_text(".c-header")) and client not in a.content()

    # The expert is alerted in any view: a banner, an assertive announcement and the queue row.
    e.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
    e.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    assert re.match(r"^\(\d+\) ", e.title())
    e.click(f"button.claim[data-consultation='{cid}']")
    e.wait_for_url(re.compile(rf".*#/c/{cid}$"))
    e.wait_for_selector(".composer textarea[name=text]")
    a.wait_for_selector(".badge-status-claimed")

    # The expert answers with structured items; the preview says what the advisor will not see.
    e.fill(".composer textarea[name=text]", "Kopio riittää. Päätöksen voimassaolo alla.")
    e.click("text=Lisää tieto")
    row = e.locator(".item-row").nth(0)
    row.locator("select").first.select_option("decision.period")
    row.locator("input[type=text]").fill("31.12.2026")
    e.click("text=Lisää tieto")
    row = e.locator(".item-row").nth(1)
    row.locator("select").first.select_option("decision.content")
    row.locator("input[type=text]").fill(SECRET)
    e.wait_for_selector(".preview .withheld-list li")
    assert "kela-never-decision-content" in e.inner_text(".preview")
    expert.axe("the expert's composer with the preview")
    expert.shot("expert-answer")
    e.click(".composer button[type=submit]")
    e.wait_for_selector(".messages .message.mine")

    # The advisor sees it live, without reloading: the period, and the content withheld.
    message = a.wait_for_selector(".messages .message.theirs")
    text = message.inner_text()
    assert "31.12.2026" in text and "Kopio riittää" in text
    assert a.locator(".messages .item.withheld").count() == 1
    assert SECRET not in a.content()
    assert SECRET not in a.inner_text("body")
    advisor.axe("the advisor's consultation with a withheld item")
    advisor.shot("advisor-consultation")

    # Read receipt: the expert sees that the answer was read.
    e.wait_for_selector(".message.mine .receipt:not([hidden])")

    # The advisor replies; the expert gets it live and the conversation is a live region.
    a.fill(".composer textarea[name=text]", "Kiitos, kerron asiakkaalle.")
    a.click(".composer button[type=submit]")
    e.wait_for_selector(".messages .message.theirs >> text=Kiitos, kerron asiakkaalle.")
    assert e.get_attribute(".messages-log", "role") == "log"

    # Even after a reload the advisor's view carries no decision content.
    a.reload()
    a.wait_for_selector(".messages .message.theirs")
    assert SECRET not in a.content()


def test_consent_is_recorded_and_its_receipt_printed(tabs):
    """An advisor records the client's consent and gets a printable receipt in the chosen language."""
    tab = tabs()
    page = tab.sign_in("kela.aino")
    tab.go("#/consents")
    page.fill("input[name=hetu]", hetu(21))
    page.click("form.inline-form button[type=submit]")
    page.wait_for_selector("#new-consent-h")
    page.check("input[name=categories][value='income.other']")
    page.click("text=Kirjaa suostumus")
    page.wait_for_selector(".receipt-text")
    page.wait_for_function("() => document.querySelector('.receipt-text').textContent.includes('KUITTI')")
    receipt = page.inner_text(".receipt-text")
    assert "muut tulot" in receipt and "income.other" not in receipt  # plain language, no codes
    assert "Rekisterinpitäjät" in receipt
    page.select_option(".receipt-area select", "sv")
    page.wait_for_function("() => document.querySelector('.receipt-text').getAttribute('lang') === 'sv'")
    assert page.locator("td >> text=voimassa").count() == 1
    tab.axe("consents with a receipt")
    tab.shot("advisor-consents")


def test_referral_under_section_35_records_condition_and_justification(tabs):
    """A § 35(2) referral without consent goes with its condition and justification."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.eero")
    expert.sign_in("vantaa.paula")  # the county's social-work intake, not a benefits expert
    cid = _ask(a, client=hetu(31), urgency="today", question="Asiakas tarvitsee ilmeisesti sosiaalihuollon apua.",
               purpose="sh.referral")
    assert "Heti" in a.inner_text(".c-header")  # sent as immediate, whatever was chosen
    expert.go("#/expert")
    expert.page.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    expert.page.click(f"button.claim[data-consultation='{cid}']")
    a.wait_for_selector(".badge-status-claimed")
    a.click("text=Ohjaa sosiaalihuoltoon (§ 35)")
    row = a.locator(".item-row").nth(0)
    row.locator("input[type=text]").fill("Asiakas on vailla asuntoa ja tarvitsee apua tänään.")
    row.locator(".referral select").select_option("unable_to_look_after_self")
    row.locator(".referral textarea").first.fill("Asiakas ei pysty huolehtimaan itsestään.")
    row.locator(".referral textarea[name=why_no_consent]").fill("Asiakas poistui ennen kuin suostumusta ehdittiin kysyä.")
    a.wait_for_selector(".preview p")
    a.click(".composer button[type=submit]")
    a.wait_for_selector(".messages .message.mine")
    expert.page.wait_for_selector(".messages .message.theirs .item >> text=vailla asuntoa")


def test_language_switch_and_nothing_but_the_language_outlives_the_tab(tabs):
    """Finnish first, Swedish and English switchable; only the language is stored; the token is in
    the tab's sessionStorage only and never in the URL."""
    tab = tabs()
    page = tab.sign_in("kela.aino")
    assert page.inner_text("main h1") == "Kysy asiantuntijalta"
    page.select_option("#tools select", "sv")
    page.wait_for_selector("main h1:text('Fråga en expert')")
    assert page.get_attribute("html", "lang") == "sv"
    page.select_option("#tools select", "en")
    page.wait_for_selector("main h1:text('Ask an expert')")
    stored = page.evaluate("() => ({ local: Object.keys(localStorage), session: Object.keys(sessionStorage), url: location.href,"
                           " last: sessionStorage.getItem('konsulta.live.last') })")
    assert stored["local"] == ["konsulta.lang"]
    # Besides the session, the tab keeps only the id of the last live event it processed, and whose.
    assert sorted(stored["session"]) in (["konsulta.session"], ["konsulta.live.last", "konsulta.session"])
    last = None if stored["last"] is None else json.loads(stored["last"])
    assert last is None or (set(last) == {"user", "id"} and last["user"] == "kela.aino" and isinstance(last["id"], int))
    assert "token" not in stored["url"] and "eyJ" not in stored["url"]
    dates = page.evaluate("""async () => {
        const i18n = await import("/static/js/i18n.js");
        await i18n.setLanguage("fi");
        const fi = i18n.formatNumber(1234.5);
        await i18n.setLanguage("en");
        return [fi, i18n.formatNumber(1234.5)];
    }""")
    assert dates[0].replace("\u00a0", " ") == "1 234,5" and dates[1] == "1,234.5"


def test_keyboard_only_sign_in_and_ask(tabs):
    """Keyboard only: the skip link comes first, focus is visible, and an advisor can sign in and
    send a question without a mouse."""
    tab = tabs()
    page = tab.open("#/signin")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "skip-link"
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.user") == "kela.aino":
            break
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
    page.keyboard.press("Enter")
    page.wait_for_selector("form.ask-form")
    page.wait_for_function("() => document.activeElement.tagName === 'H1'")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.name") == "question":
            break
    page.keyboard.type("Kysymys näppäimistöltä: miten liite toimitetaan?")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.type") == "submit":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*#/c/[\w-]+$"))
    page.wait_for_selector(".question >> text=Kysymys näppäimistöltä")


def test_every_view_passes_axe(tabs):
    """Zero axe-core violations (WCAG 2.1 A/AA, best practice) on every view of every role; with
    KONSULTA_SCREENSHOTS set, each view is saved as a screenshot for the README."""
    advisor = tabs()
    page = advisor.open("#/signin")
    advisor.axe("sign-in")
    advisor.shot("signin")
    advisor.sign_in("kela.aino")
    page.wait_for_selector("#duty-h")
    page.wait_for_load_state("networkidle")
    advisor.axe("advisor")
    advisor.shot("advisor")
    cid = _ask(page, client=hetu(41), urgency="immediate")
    advisor.axe("consultation")

    expert = tabs()
    e = expert.sign_in("vantaa.liisa")
    e.wait_for_selector("#queue-h")
    e.wait_for_load_state("networkidle")
    expert.axe("expert queue")
    expert = tabs()
    e = expert.sign_in("vantaa.sanna")
    e.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    e.wait_for_load_state("networkidle")
    expert.axe("expert queue with an immediate consultation and its alert")
    expert.shot("expert-queue")

    officer = tabs()
    officer.sign_in("kela.tuula")
    links = officer.page.eval_on_selector_all(".subnav a", "(as) => as.map((a) => a.getAttribute('href'))")
    assert "#/privacy/events" in links and "#/privacy/policy" in links
    for href in links:
        officer.go(href, ready=".section-body h2")
        officer.axe(href)
        officer.shot("privacy-" + href.rsplit("/", 1)[1])

    admin = tabs()
    admin.sign_in("vantaa.admin")
    links = admin.page.eval_on_selector_all(".subnav a", "(as) => as.map((a) => a.getAttribute('href'))")
    assert "#/admin/experts" in links and "#/admin/keys" in links and "#/admin/policy" in links
    for href in links:
        admin.go(href, ready=".section-body h2")
        admin.axe(href)
        admin.shot("admin-" + href.rsplit("/", 1)[1])
    admin.go("#/admin/experts", ready="#experts-h")
    admin.page.get_by_role("button", name="Muokkaa: Sanna Asiantuntija").click()
    admin.page.wait_for_selector("#edit-h")
    admin.axe("expert editor")

    for lang in ("sv", "en"):
        advisor.page.select_option("#tools select", lang)
        advisor.page.wait_for_selector(f"html[lang={lang}]")
        advisor.go("#/advisor", ready="#duty-h")
        advisor.axe(f"advisor in {lang}")
        advisor.shot(f"advisor-{lang}")


def test_privacy_officer_finds_the_access_in_the_client_access_report(tabs, server):
    """The privacy officer finds who processed the client's data in the client access report."""
    advisor, expert, officer = tabs(), tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    expert.sign_in("vantaa.sanna")
    cid = _ask(a, client=hetu(51), urgency="today")
    ref = a.inner_text(".c-header .facts dd >> text=/^cl_/")
    expert.page.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    expert.page.click(f"button.claim[data-consultation='{cid}']")
    expert.page.wait_for_selector(".composer textarea[name=text]")
    expert.page.fill(".composer textarea[name=text]", "Hakemus on vastaanotettu.")
    expert.page.click("text=Lisää tieto")
    expert.page.locator(".item-row input[type=text]").fill("vastaanotettu")
    expert.page.click(".composer button[type=submit]")
    a.wait_for_selector(".messages .message.theirs")
    # The message view carries the secrecy marking (consult/model/secrecy.py).
    assert a.inner_text(".card .secrecy-mark") == "SALASSA PIDETTÄVÄ, JulkL 24 § 1 mom. 25 k."

    o = officer.sign_in("vantaa.ville")
    officer.go("#/privacy/report", ready="#report-h")
    assert o.locator("input[name=hetu]").count() == 1  # officers look identity codes up, never register them
    o.fill("input[name=client_ref]", ref)
    o.click("text=Laadi selvitys")
    o.wait_for_selector(".report table")
    report = o.inner_text(".report")
    assert ref in report
    assert "vantaa.sanna" in report or "Sanna" in report
    assert o.locator(".report .secrecy-mark").first.inner_text() == "SALASSA PIDETTÄVÄ, JulkL 24 § 1 mom. 25 k."
    officer.axe("client access report")
    officer.shot("privacy-report-result")
    # The log extract for the client: readable, in Finnish, without the client reference.
    o.click("text=Lokitieto-ote suomeksi")
    o.wait_for_selector(".extract pre")
    extract = o.inner_text(".extract pre")
    assert extract.startswith("SALASSA PIDETTÄVÄ") and "LOKITIETO-OTE" in extract and "703/2023" in extract
    assert "Sanna Asiantuntija" in extract and ref not in extract
    officer.axe("log extract")
