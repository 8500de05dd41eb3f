"""End-to-end in headless Chromium: what admins, experts, advisors and privacy officers change
through the app — pools, the roster and agreements; knowledge-base entries and their approval;
attachments and participants; disclosure prohibitions; the access report by identity code —
with axe-core checking each new view and dialog for WCAG 2.1 AA violations."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.synthetic import hetu

HELSINKI = ZoneInfo("Europe/Helsinki")


def _png() -> bytes:
    """A 1×1 PNG, built here so that the bytes downloaded can be compared with the bytes sent."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
            + chunk(b"IEND", b""))


PNG = _png()


def _ask(page, *, client: str | None, question: str, urgency: str = "today",
         purpose: str = "tt.application_intake") -> str:
    page.wait_for_selector("form.ask-form")
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


def _claim(expert, cid: str) -> None:
    expert.go("#/expert", ready="#queue-h")
    expert.page.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    expert.page.click(f"button.claim[data-consultation='{cid}']")
    expert.page.wait_for_url(re.compile(rf".*#/c/{cid}$"))
    expert.page.wait_for_selector(".composer textarea[name=text]")


def test_admin_edits_pools_the_roster_and_agreements(tabs):
    """An admin names an expert in a pool of their own, sets the pool's service levels, gives the
    expert a weekly rule and a period and removes the rule, records an agreement and terminates it."""
    tab = tabs()
    page = tab.sign_in("vantaa.admin")

    # A new pool no other test routes to (its own action, confirmed), and a new expert in it.
    tab.go("#/admin/pools", ready="#pools-h")
    page.click("#pool-new")
    page.fill("input[name=pool_name]", "iltapaivystys")
    page.click("form.pool-new-form button[type=submit]")
    page.get_by_role("button", name="Luo pooli", exact=True).click()
    page.wait_for_selector("button[data-pool=iltapaivystys]")
    tab.go("#/admin/experts", ready="#experts-h")
    page.click("text=Nimeä uusi asiantuntija")
    page.wait_for_selector("#edit-h")
    page.fill("#edit-h ~ form input[type=text] >> nth=0", "vantaa.rosteri")
    page.fill("#edit-h ~ form input[type=text] >> nth=1", "Roosa Vuorolista")
    page.check("#edit-h ~ form input[name=pools][value=iltapaivystys]")
    page.click("#edit-h ~ form button[type=submit]")
    page.wait_for_selector("td >> text=Roosa Vuorolista")

    # Pools: the service levels of the new pool.
    tab.go("#/admin/pools", ready="#pools-h")
    page.wait_for_selector("button[data-pool=iltapaivystys]")
    tab.axe("admin pools")
    page.click("button[data-pool=iltapaivystys]")
    page.wait_for_selector("#pool-edit-h")
    assert page.evaluate("() => document.activeElement.id") == "pool-edit-h"
    page.fill("input[name=sla_immediate]", "0.1")
    page.click("form.pool-form button[type=submit]")
    assert page.get_attribute("input[name=sla_immediate]", "aria-invalid") == "true"
    page.fill("input[name=sla_immediate]", "10")
    page.fill("input[name=reoffers]", "2")
    page.select_option("select[name=backup_pool]", "backup")
    page.fill("input[name=max_open_per_expert]", "3")
    tab.axe("pool settings form")
    tab.shot("admin-pool-settings")
    page.click("form.pool-form button[type=submit]")
    page.wait_for_selector("#pool-edit-h", state="detached")
    row = page.locator("tr", has=page.locator("button[data-pool=iltapaivystys]"))
    assert re.search(r"10 minuuttia", row.inner_text()) and "backup" in row.inner_text() and "3" in row.inner_text()

    # The roster: a weekly rule (Saturday until midnight) and a period, then the rule removed.
    tab.go("#/admin/roster", ready="#rule-h")
    page.select_option("form.rule-form select[name=user_id]", "vantaa.rosteri")
    page.uncheck("form.rule-form input[name=weekday][value='1']")
    page.check("form.rule-form input[name=weekday][value='6']")
    page.fill("form.rule-form input[name=start]", "09:00")
    page.fill("form.rule-form input[name=end]", "00:00")
    page.click("form.rule-form button[type=submit]")
    roosa = page.locator("tr", has=page.locator("td >> text=Roosa Vuorolista"))
    roosa.locator("text=/09:00–24:00/").wait_for()
    day = (datetime.now(HELSINKI) + timedelta(days=3)).date()
    page.select_option("form.period-form select[name=user_id]", "vantaa.rosteri")
    page.fill("form.period-form input[name=start_date]", day.isoformat())
    page.fill("form.period-form input[name=start_time]", "10:00")
    page.fill("form.period-form input[name=end_date]", day.isoformat())
    page.fill("form.period-form input[name=end_time]", "14:00")
    page.click("form.period-form button[type=submit]")
    page.wait_for_selector("text=Päivystysjakso lisätty.")
    # Entered in Helsinki time whatever the browser's zone, shown back in Helsinki time.
    period = f"{day.day}.{day.month}.{day.year} klo 10.00 – {day.day}.{day.month}.{day.year} klo 14.00"
    roosa.locator(f"li:has-text('{period}')").wait_for()
    # A start after the end is refused by the service and said so.
    page.fill("form.rule-form input[name=start]", "17:00")
    page.fill("form.rule-form input[name=end]", "08:00")
    page.click("form.rule-form button[type=submit]")
    page.wait_for_selector("form.rule-form ~ .status-area .error")
    # The holidays of a year, with Midsummer Eve.
    page.fill("input[name=year]", "2030")
    page.click("#holidays-h ~ form button[type=submit]")
    page.wait_for_selector("caption >> text=Arkipyhät 2030")
    assert "juhannusaatto" in page.inner_text("#holidays-h ~ .table-wrap, #holidays-h ~ div")
    tab.axe("admin roster editor")
    tab.shot("admin-roster-editor")
    rule_button = roosa.locator("button", has_text="Poista").first
    assert "09:00–24:00" in rule_button.get_attribute("aria-label")
    rule_button.click()
    page.get_by_role("dialog").get_by_role("button", name="Poista").click()
    page.wait_for_selector("text=Poistettu vuorolistasta.")
    roosa = page.locator("tr", has=page.locator("td >> text=Roosa Vuorolista"))
    # The message shows before the roster is read again: wait for the rule to go, then check.
    roosa.locator("text=/09:00–24:00/").wait_for(state="detached")
    assert "09:00–24:00" not in roosa.inner_text() and period in roosa.inner_text()
    roosa.locator("button", has_text="Poista").click()
    page.get_by_role("dialog").get_by_role("button", name="Poista").click()
    page.wait_for_function("(p) => ![...document.querySelectorAll('td')].some((td) => td.textContent.includes(p))", arg=period)

    # Agreements: a new one on attachments only, then terminated at the end of a day.
    tab.go("#/admin/agreements", ready="#agreements-h")
    page.click("#agreement-new")
    page.wait_for_selector("#agreement-edit-h")
    page.click("form.agreement-form button[type=submit]")
    assert page.get_attribute("form.agreement-form input[name=reference]", "aria-invalid") == "true"
    page.fill("form.agreement-form input[name=reference]", "Testisopimus: liitteet")
    page.check("form.agreement-form input[name=topics][value=attachments]")
    tab.axe("new agreement form")
    page.click("form.agreement-form button[type=submit]")
    page.wait_for_selector("#agreement-edit-h", state="detached")
    row = page.locator("tr", has=page.locator("td >> text=Testisopimus: liitteet"))
    assert "voimassa" in row.inner_text() and "Liitteet" in row.inner_text()
    row.locator("button[data-agreement]").click()
    page.wait_for_selector("#agreement-edit-h")
    page.fill("form.agreement-form input[name=valid_until]", "2030-06-30")
    page.click("form.agreement-form button[type=submit]")
    page.wait_for_selector("#agreement-edit-h", state="detached")
    row = page.locator("tr", has=page.locator("td >> text=Testisopimus: liitteet"))
    assert "30.6.2030" in row.inner_text(), row.inner_text()
    row.locator("button[data-agreement]").click()
    page.wait_for_selector("caption >> text=Sopimuksen versiot")
    assert page.locator("caption:has-text('Sopimuksen versiot') ~ tbody tr").count() == 2
    assert page.input_value("form.agreement-form input[name=valid_until]") == "2030-06-30"
    tab.axe("agreement editor with its versions")
    tab.shot("admin-agreement-editor")


def test_expert_turns_a_closed_consultation_into_a_knowledge_entry_and_a_colleague_approves(tabs):
    """The expert's entry with personal data is refused and the findings (kind and position, never
    the text) are shown and selectable; the fixed entry waits for another expert's approval, and
    then an advisor finds it."""
    advisor, author, colleague = tabs(), tabs(), tabs()
    a = advisor.sign_in("kela.eero")
    author.sign_in("vantaa.mikko")
    cid = _ask(a, client=None, question="Kelpaako sähköinen vuokrasopimus liitteeksi?", purpose="general")
    _claim(author, cid)
    m = author.page
    m.fill(".composer textarea[name=text]", "Kelpaa, kun siinä on molempien allekirjoitukset.")
    m.click(".composer button[type=submit]")
    m.wait_for_selector(".messages .message.mine")
    m.click(".close-box summary")
    m.click(".close-box button[type=submit]")
    m.wait_for_selector("#kb-entry-h")

    code = hetu(71)
    question = "Kelpaako sähköinen vuokrasopimus? Asiakas " + code
    answer = "Kelpaa. Lisätietoja: neuvonta.testi@example.com"
    m.fill("textarea[name=kb_question]", question)
    m.fill("textarea[name=kb_answer]", answer)
    m.click("form.knowledge-form button[type=submit]")
    m.wait_for_selector("#kb-findings")
    assert m.evaluate("() => document.activeElement.id") == "kb-findings"
    findings = m.inner_text("#kb-findings")
    assert "henkilötunnus" in findings and "sähköpostiosoite" in findings
    start = question.index(code)
    assert f"merkit {start + 1}–{start + len(code)}" in findings
    assert code not in findings
    assert m.get_attribute("textarea[name=kb_question]", "aria-invalid") == "true"
    m.click("#kb-findings li[data-kind=hetu] button")
    selected = m.evaluate("() => { const el = document.activeElement; return [el.name, el.selectionStart, el.selectionEnd]; }")
    assert selected == ["kb_question", start, start + len(code)]
    author.axe("knowledge entry refused with findings")
    author.shot("expert-knowledge-findings")

    m.fill("textarea[name=kb_question]", "Kelpaako sähköisesti allekirjoitettu vuokrasopimus hakemuksen liitteeksi?")
    m.fill("textarea[name=kb_answer]", "Kelpaa, kun siinä on vuokranantajan ja vuokralaisen allekirjoitukset.")
    m.click("form.knowledge-form button[type=submit]")
    m.wait_for_selector("form.knowledge-form ~ .status-area .ok[data-entry]")
    entry = m.get_attribute("form.knowledge-form ~ .status-area .ok[data-entry]", "data-entry")

    # The author may not approve their own entry; a colleague may.
    author.go("#/expert", ready="#drafts-h")
    m.wait_for_selector(f".kb-drafts li[data-entry='{entry}']")
    assert m.locator(f"button.approve[data-entry='{entry}']").count() == 0
    m.wait_for_selector(f"a[href='#/c/{cid}']")  # the closed consultation is listed
    s = colleague.sign_in("vantaa.sanna")
    s.wait_for_selector(f"button.approve[data-entry='{entry}']")
    colleague.axe("expert view with drafts to approve")
    s.click(f"button.approve[data-entry='{entry}']")
    s.wait_for_selector(f".kb-drafts li[data-entry='{entry}']", state="detached")

    advisor.go("#/advisor", ready="#kb-h")
    a.fill("input[name=q]", "vuokrasopimuksen liite")
    with a.expect_request(lambda r: "/api/v1/knowledge" in r.url) as searched:
        a.click("#kb-h ~ form button[type=submit]")
    a.wait_for_selector(".kb-results >> text=sähköisesti allekirjoitettu vuokrasopimus")
    # The words typed travel in the body, in no URL (proxy logs, history, Referer).
    assert searched.value.method == "POST" and "vuokra" not in searched.value.url


def test_attachments_upload_and_download_and_a_participant_is_added(tabs):
    """An advisor attaches a file (a wrong type is refused and said why); the expert downloads it
    through a Blob with the token in a header, never in a URL; the expert adds a colleague."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    expert.sign_in("vantaa.sanna")
    cid = _ask(a, client=hetu(72), question="Asiakkaan vuokrasopimus liitteenä, riittääkö?")
    _claim(expert, cid)
    a.wait_for_selector(".badge-status-claimed")
    a.wait_for_selector(".participants li[data-user='vantaa.sanna']")  # the claim, live
    a.wait_for_selector("#attach-h")

    a.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "muistio.txt", "mimeType": "image/png", "buffer": b"not really a picture"}])
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form ~ .status-area .error")
    assert "Vain PDF-, PNG- ja JPEG-tiedostot" in a.inner_text("form.attachment-form ~ .status-area")
    assert a.get_attribute("form.attachment-form input[type=file]", "aria-invalid") == "true"
    advisor.axe("attachment refused")

    a.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "vuokrasopimus.png", "mimeType": "image/png", "buffer": PNG}])
    a.fill("form.attachment-form input[name=caption]", "Vuokrasopimus liitteenä.")
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form ~ .status-area .ok")
    a.wait_for_selector(".message.mine button.download")

    e = expert.page
    button = e.wait_for_selector(".message.theirs button.download")
    assert "vuokrasopimus.png" in button.get_attribute("aria-label")
    with e.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "vuokrasopimus.png"
    assert download.url.startswith("blob:") and "eyJ" not in download.url
    assert open(download.path(), "rb").read() == PNG
    e.wait_for_selector(".message.theirs .download-status >> text=Ladattu.")

    # A participant: an unknown user is refused and said why; a colleague is added.
    e.click(".participant-box summary")
    e.fill("form.participant-form input[name=user_id]", "vantaa.tuntematon")
    e.click("form.participant-form button[type=submit]")
    e.wait_for_selector(".participant-box .error >> text=Käyttäjää ei tunneta palvelussa.")
    expert.axe("consultation with the attachment and participant forms")
    e.fill("form.participant-form input[name=user_id]", "vantaa.mikko")
    e.click("form.participant-form button[type=submit]")
    e.wait_for_selector(".participants li[data-user='vantaa.mikko']")
    a.wait_for_selector(".participants li[data-user='vantaa.mikko']")
    expert.shot("consultation-attachment")


def test_attachment_over_the_size_limit_is_refused_and_said_so(tabs):
    tab = tabs()
    page = tab.sign_in("kela.eero")
    expert = tabs()
    expert.sign_in("vantaa.mikko")
    cid = _ask(page, client=hetu(76), question="Iso liite tulossa.")
    _claim(expert, cid)
    page.wait_for_selector("#attach-h")
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 10)
    page.set_input_files("form.attachment-form input[type=file]",
                         files=[{"name": "iso.pdf", "mimeType": "application/pdf", "buffer": big}])
    page.click("form.attachment-form button[type=submit]")
    page.wait_for_selector("form.attachment-form ~ .status-area .error >> text=Tiedosto on liian suuri")


def test_advisor_records_and_lifts_a_disclosure_prohibition(tabs):
    tab = tabs()
    page = tab.sign_in("kela.aino")
    tab.go("#/consents")
    page.fill("input[name=hetu]", hetu(73))
    page.click("form.inline-form button[type=submit]")
    page.wait_for_selector("#prohibitions-h")
    assert "Ei luovutuskieltoja." in page.inner_text("#prohibitions-h ~ div")
    page.select_option("select[name=prohibition_category]", "health")
    page.select_option("select[name=prohibition_org]", "vantaa")
    page.click("form.prohibition-form button[type=submit]")
    page.wait_for_selector("button[data-prohibition]")
    row = page.locator("tr", has=page.locator("button[data-prohibition]"))
    assert "Terveystiedot → Vantaan ja Keravan hyvinvointialue" in row.inner_text() and "voimassa" in row.inner_text()
    assert "Aino Neuvoja" in row.inner_text() and "kela.aino" not in row.inner_text()
    tab.axe("prohibitions")
    tab.shot("advisor-prohibitions")
    page.click("button[data-prohibition]")
    page.wait_for_selector("text=Kielto poistettu.")
    # The notice comes before the list is read again: wait for the lifted row's button to go.
    page.wait_for_selector("button[data-prohibition]", state="detached")
    assert "poistettu" in page.inner_text("#prohibitions-h ~ div")


def test_privacy_officer_finds_the_report_by_identity_code_without_registering_anyone(tabs):
    advisor, officer = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    advisor.go("#/consents")
    a.fill("input[name=hetu]", hetu(74))
    a.click("form.inline-form button[type=submit]")
    a.wait_for_selector("#client-h")
    ref = re.search(r"cl_\w+", a.inner_text("#client-h")).group(0)

    o = officer.sign_in("kela.tuula")
    officer.go("#/privacy/report", ready="#report-h")
    o.fill("input[name=hetu]", hetu(75))
    o.click("text=Laadi selvitys")
    o.wait_for_selector("#report-h ~ .status-area .error")
    assert "ei ole rekisteröityä asiakasta" in o.inner_text("#report-h ~ .status-area")
    officer.axe("access report: unknown identity code")

    o.fill("input[name=hetu]", hetu(74))
    o.click("text=Laadi selvitys")
    o.wait_for_selector(".report table")
    assert ref in o.inner_text(".report")
    assert hetu(74) not in o.content() and hetu(74) not in o.inner_text("body")
    assert o.input_value("input[name=hetu]") == ""
    officer.axe("access report found by identity code")
    officer.shot("privacy-report-hetu")


def test_helsinki_times_convert_whatever_the_browsers_zone(browser, server):
    """The roster and agreements are entered in Helsinki time: winter +02:00, summer +03:00,
    across the change to summer time, in a browser that runs in another zone."""
    context = browser.new_context(locale="fi-FI", timezone_id="America/New_York")
    page = context.new_page()
    page.goto(f"{server}/#/signin")
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    result = page.evaluate("""async () => {
        const time = await import("/static/js/time.js");
        return [time.helsinkiToIso("2026-01-15", "08:00"), time.helsinkiToIso("2026-07-15", "08:00"),
                time.helsinkiToIso("2026-03-29", "02:00"), time.helsinkiToIso("2026-03-29", "05:00"),
                time.helsinkiDate("2026-06-30T21:30:00Z"), time.nextDay("2028-02-28"), time.nextDay("2026-12-31"),
                time.helsinkiToIso("2026-02-30x", "08:00")];
    }""")
    assert result == ["2026-01-15T06:00:00.000Z", "2026-07-15T05:00:00.000Z", "2026-03-29T00:00:00.000Z",
                      "2026-03-29T02:00:00.000Z", "2026-07-01", "2028-02-29", "2027-01-01", None]
    context.close()
