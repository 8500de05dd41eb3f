"""A conversation one can follow: the sender's message is shown as being sent, sent, or not sent
with a button to try again, then read by the other party; a new message is brought into view
unless the reader has scrolled up, who is offered a button to it; the sender sees what each
recipient could not see, also after a reload; image and PDF attachments preview inline and a
withheld one is a placeholder; the advisor's own consultations are searched on the server from a
filter box. Two people in two browsers."""

from __future__ import annotations

import re
from typing import Any

from tests.synthetic import hetu
from tests.web.test_browser import _ask
from tests.web.test_editing import PNG, _claim
from tests.web.test_words import SECRET


def _api(page: Any, method: str, path: str, body: Any = None) -> Any:
    return page.evaluate("""async ([method, path, body]) => {
        const { api } = await import("/static/js/api.js");
        return api(method, path, body === null ? undefined : body);
    }""", [method, path, body])


def _pair(tabs: Any, client: str, question: str = "Riittääkö vuokrasopimuksen kopio?") -> tuple[Any, Any, str]:
    """Aino asks, Sanna claims from her queue; both are in the consultation."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    expert.sign_in("vantaa.sanna")
    cid = _ask(a, client=client, question=question)
    _claim(expert, cid)
    a.wait_for_selector(".participants li[data-user='vantaa.sanna']")
    a.wait_for_selector(".composer textarea[name=text]")
    return advisor, expert, cid


def test_a_message_is_sending_then_sent_then_read_and_a_failed_one_is_retried(tabs):
    advisor, expert, cid = _pair(tabs, hetu(81, sign="A", birth="150305"))
    a, e = advisor.page, expert.page
    # Expert leaves the consultation so that the read receipt comes when she opens it again.
    expert.go("#/expert", ready="#queue-h")

    # The network drops the first attempt: the message stays, marked not sent, with a retry.
    held: list[Any] = []
    a.route(re.compile(rf".*/api/v1/consultations/{cid}/messages$"),
            lambda route: route.abort() if not held and not held.append(1) else route.continue_())
    a.fill(".composer textarea[name=text]", "Asiakas toimittaa kopion huomenna.")
    a.click(".composer button[type=submit]")
    failed = a.wait_for_selector(".messages li.pending[data-state=failed]")
    assert "Ei lähetetty" in failed.inner_text()
    assert a.input_value(".composer textarea[name=text]") == "Asiakas toimittaa kopion huomenna."
    advisor.axe("a message not sent, with its retry button")
    advisor.errors[:] = [x for x in advisor.errors if "ERR_FAILED" not in x]  # the drop the test made

    # Held on the way: shown as being sent; then sent, once, and the composer is empty.
    waiting: list[Any] = []
    a.unroute(re.compile(rf".*/api/v1/consultations/{cid}/messages$"))
    a.route(re.compile(rf".*/api/v1/consultations/{cid}/messages$"), lambda route: waiting.append(route))
    a.click(".messages li.pending button.retry")
    a.wait_for_selector(".messages li.pending[data-state=sending]:has-text('Lähetetään')")
    while not waiting:
        a.wait_for_timeout(50)
    waiting[0].continue_()
    a.wait_for_selector(
        ".messages li.message.mine[data-state=sent]:has-text('huomenna') .receipt:has-text('Lähetetty')")
    assert a.locator(".messages li:has-text('Asiakas toimittaa kopion huomenna')").count() == 1
    assert a.locator(".messages li.pending").count() == 0
    assert a.input_value(".composer textarea[name=text]") == ""

    # The expert reads it: the advisor's message says so, live.
    expert.go(f"#/c/{cid}", ".messages .message.theirs")
    e.wait_for_selector(".messages .message.theirs:has-text('huomenna')")
    a.wait_for_selector(".messages li.message.mine[data-state=read] .receipt:has-text('Luettu')")


def test_a_new_message_is_followed_unless_the_reader_scrolled_up(tabs):
    advisor, expert, cid = _pair(tabs, hetu(82, sign="A", birth="150305"))
    a = advisor.page
    for n in range(14):
        _api(expert.page, "POST", f"/api/v1/consultations/{cid}/messages",
             {"text": f"Vastauksen osa {n + 1}.\nToinen rivi."})
    a.wait_for_selector(".messages .message.theirs:has-text('Vastauksen osa 14.')")
    at_end = ("() => { const s = document.querySelector('.messages-log'); "
              "return s.scrollHeight - s.scrollTop - s.clientHeight < 48; }")
    assert a.evaluate(
        "() => { const s = document.querySelector('.messages-log'); return s.scrollHeight > s.clientHeight; }")
    a.wait_for_function(at_end)

    # Scrolled up to read: the new message does not pull the view; a button offers it.
    a.evaluate("() => { document.querySelector('.messages-log').scrollTop = 0; }")
    _api(expert.page, "POST", f"/api/v1/consultations/{cid}/messages", {"text": "Uusi huomio lopuksi."})
    button = a.wait_for_selector("button.new-messages:visible")
    assert "1" in button.inner_text()
    assert not a.evaluate(at_end)
    advisor.axe("the conversation scrolled up with the new-messages button")
    button.click()
    a.wait_for_function(at_end)
    assert a.evaluate("() => document.activeElement.textContent").count("Uusi huomio lopuksi.") == 1
    assert a.locator("button.new-messages:visible").count() == 0

    # At the end: the next one is brought into view by itself.
    _api(expert.page, "POST", f"/api/v1/consultations/{cid}/messages", {"text": "Vielä yksi."})
    a.wait_for_selector(".messages .message.theirs:has-text('Vielä yksi.')")
    a.wait_for_function(at_end)
    assert a.locator("button.new-messages:visible").count() == 0


def test_the_sender_sees_what_each_recipient_could_not_see(tabs):
    advisor, expert, _ = _pair(tabs, hetu(83, sign="A", birth="150305"))
    e = expert.page
    e.fill(".composer textarea[name=text]", "Päätös alla.")
    e.click(".composer button:has-text('Lisää tieto')")
    e.select_option(".item-row select", "decision.content")
    e.fill(".item-row input[type=text]", SECRET)
    e.click(".composer button[type=submit]")
    by = e.wait_for_selector(".messages li.message.mine .withheld-by")
    by.click()
    text = by.inner_text()
    assert "kela.aino" in text or "Aino" in text
    assert "Päätöksen sisältö" in text or "päätö" in text.lower()
    expert.axe("the sender's message with what a recipient could not see")
    advisor.page.wait_for_selector(".messages .item.withheld")
    assert SECRET not in advisor.page.content()

    # After a reload the sender still sees it, as decided when the message was sent; the
    # recipient never sees what was withheld from anyone.
    e.reload()
    e.wait_for_selector("body[data-ready=true]")
    again = e.wait_for_selector(".messages li.message.mine .withheld-by")
    again.click()
    assert again.inner_text() == text
    advisor.page.reload()
    advisor.page.wait_for_selector(".messages .item.withheld")
    assert advisor.page.locator(".withheld-by").count() == 0


def test_an_image_attachment_previews_inline(tabs):
    advisor, expert, _ = _pair(tabs, hetu(84, sign="A", birth="150305"))
    a, e = advisor.page, expert.page
    a.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "kuitti.png", "mimeType": "image/png", "buffer": PNG}])
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form ~ .status-area .ok")
    preview = e.wait_for_selector(".message.theirs button.preview")
    assert preview.get_attribute("aria-expanded") == "false"
    preview.click()
    image = e.wait_for_selector(".message.theirs img.attachment-preview")
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert "kuitti.png" in image.get_attribute("alt")
    assert e.evaluate("() => document.querySelector('img.attachment-preview').naturalWidth") == 1
    expert.axe("an image attachment previewed inline")

    # The county's attachment is withheld from Kela's advisor: a placeholder, no preview, no file.
    e.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "paatos.png", "mimeType": "image/png", "buffer": PNG}])
    e.fill("form.attachment-form input[name=caption]", "Liitteenä päätös.")
    e.click("form.attachment-form button[type=submit]")
    e.wait_for_selector("form.attachment-form ~ .status-area .ok")
    placeholder = a.wait_for_selector(".message.theirs .item.withheld .attachment-placeholder")
    assert placeholder.get_attribute("aria-label") == "Liite, jota ei näytetä"
    assert a.locator(".message.theirs button.preview").count() == 0
    advisor.axe("a withheld attachment's placeholder")


def _pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` on it (objects, cross-reference table and trailer)."""
    stream = f"BT /F1 24 Tf 40 100 Td ({text}) Tj ET".encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_attachment_previews_inline_and_a_withheld_one_does_not(tabs):
    """A permitted PDF is shown in a frame of the page's own Blob (the CSP allows frames from blob:
    only, and the tab records no violation); a withheld PDF has a placeholder and no preview."""
    advisor, expert, _ = _pair(tabs, hetu(85, sign="A", birth="150305"))
    a, e = advisor.page, expert.page
    a.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "vuokrasopimus.pdf", "mimeType": "application/pdf", "buffer": _pdf("Vuokra")}])
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form ~ .status-area .ok")
    preview = e.wait_for_selector(".message.theirs button.preview")
    assert "vuokrasopimus.pdf" in preview.get_attribute("aria-label")
    preview.click()
    frame = e.wait_for_selector(".message.theirs iframe.pdf-preview")
    assert frame.get_attribute("src").startswith("blob:")
    assert "vuokrasopimus.pdf" in frame.get_attribute("title")
    assert preview.get_attribute("aria-expanded") == "true"
    expert.shot("pdf-preview")
    expert.axe("a PDF attachment previewed inline")
    preview.click()
    assert e.locator("iframe.pdf-preview").count() == 0

    # The county's PDF is withheld from Kela's advisor: a placeholder, no preview, no frame.
    e.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "paatos.pdf", "mimeType": "application/pdf", "buffer": _pdf("Paatos")}])
    e.fill("form.attachment-form input[name=caption]", "Liitteenä päätös.")
    e.click("form.attachment-form button[type=submit]")
    e.wait_for_selector("form.attachment-form ~ .status-area .ok")
    a.wait_for_selector(".message.theirs .item.withheld .attachment-placeholder")
    assert a.locator(".message.theirs button.preview").count() == 0
    assert a.locator("iframe").count() == 0


def test_the_advisor_searches_own_consultations(tabs):
    """The search box asks the server, so it finds a consultation older than the 50 the list
    has loaded; only the latest search's answer is shown, and clearing it shows the list again.
    The words are sent in a request body: no URL the page asks for holds them."""
    tab = tabs()
    page = tab.sign_in("kela.aino")
    _ask(page, client=None, question="Kysymys lumenluonnista taloyhtiössä?")
    old = page.url.rsplit("/", 1)[1]
    for n in range(50):  # closed at once: they wait in no one's queue
        made = _api(page, "POST", "/api/v1/consultations", {
            "topic": "other", "urgency": "normal", "question": f"Täytekysymys {n}?", "purpose": "general",
            "target_org": "vantaa"})
        _api(page, "POST", f"/api/v1/consultations/{made['id']}/close", {"outcome": "declined"})
    tab.go("#/advisor", "section[aria-labelledby=mine-h] table")
    rows = page.locator("section[aria-labelledby=mine-h] tbody tr")
    total = rows.count()
    assert total == 50
    assert page.locator(f"section[aria-labelledby=mine-h] a[href='#/c/{old}']").count() == 0
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/consultations/search")) as answer:
        page.fill("input[name=mine_filter]", "lumenluonnista")
    assert answer.value.status == 200
    # The words travel in the body, never in a URL (proxy logs, history, Referer).
    assert answer.value.request.method == "POST"
    assert answer.value.request.post_data_json["q"] == "lumenluonnista"
    page.wait_for_selector(f"section[aria-labelledby=mine-h] a[href='#/c/{old}']")
    assert rows.count() == 1
    assert "Löytyi 1" in page.inner_text(".filter-status")
    page.fill("input[name=mine_filter]", "ei-tällaista-sanaa")
    page.wait_for_selector("section[aria-labelledby=mine-h] .empty:has-text('Haku ei löytänyt')")
    tab.axe("the advisor's search over own consultations")
    page.fill("input[name=mine_filter]", "")
    page.wait_for_function(
        f"() => document.querySelectorAll('section[aria-labelledby=mine-h] tbody tr').length === {total}")
    assert urls and not [u for u in urls if "lumenluonnista" in u or "ei-t" in u or "q=" in u]
    assert "lumenluonnista" not in page.url
