"""End-to-end in headless Chromium: free text that looks like a category withheld from the other
organisation is flagged before sending, sent only after the sender confirms with a reason, and
marked for the reader; axe-core checks the confirmation for WCAG 2.1 AA violations."""

from __future__ import annotations

import re

from tests.synthetic import hetu
from tests.web.test_editing import PNG


def test_expert_confirms_flagged_text_with_a_reason_and_the_advisor_sees_the_mark(tabs):
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.eero")
    e = expert.sign_in("vantaa.mikko")
    a.wait_for_selector("form.ask-form")
    a.select_option("select[name=topic]", "application_intake")
    a.check("input[name=urgency][value=today]")
    a.select_option("select[name=pool]", "toimeentulotuki")
    a.fill("textarea[name=question]", "Miten asiakkaan tilanne huomioidaan laskelmassa?")
    a.fill("input[name=hetu]", hetu(81))
    a.select_option("select[name=purpose]", "tt.income_calculation")
    a.click("form.ask-form button[type=submit]")
    a.wait_for_url(re.compile(r".*#/c/[\w-]+$"))
    cid = a.url.rsplit("/", 1)[1]
    e.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    e.click(f"button.claim[data-consultation='{cid}']")
    e.wait_for_selector(".composer textarea[name=text]")

    text = "Asiakkaalla on ulosotossa velkaa."
    e.fill(".composer textarea[name=text]", text)
    e.wait_for_selector(".preview .sensitive-list q >> text=ulosotossa")
    e.click(".composer button[type=submit]")
    e.wait_for_selector(".composer fieldset.sensitive-confirm:not([hidden])")
    expert.axe("sensitive text confirmation")
    assert e.locator(".messages .message.mine").count() == 0  # nothing was sent
    e.click(".composer button[type=submit]")  # no reason yet: still not sent
    e.wait_for_selector(".composer fieldset.sensitive-confirm .error:not([hidden])")
    e.fill(".composer textarea[name=sensitive_reason]", "Velkatilanne vaikuttaa laskelmaan; asiakas pyysi kertomaan.")
    e.click(".composer button[type=submit]")
    e.wait_for_selector(".messages .message.mine .flagged")
    assert e.locator(".composer fieldset.sensitive-confirm").get_attribute("hidden") is not None
    a.wait_for_selector(".messages .message.theirs .flagged")
    assert "Velat ja ulosotto" in a.inner_text(".messages .message.theirs .flagged")


def _asked_and_claimed(a, e, n: int, purpose: str) -> str:
    a.wait_for_selector("form.ask-form")
    a.select_option("select[name=topic]", "application_intake")
    a.check("input[name=urgency][value=today]")
    a.select_option("select[name=pool]", "toimeentulotuki")
    a.fill("textarea[name=question]", "Miten asiakkaan tilanne huomioidaan?")
    a.fill("input[name=hetu]", hetu(n))
    a.select_option("select[name=purpose]", purpose)
    a.click("form.ask-form button[type=submit]")
    a.wait_for_url(re.compile(r".*#/c/[\w-]+$"))
    cid = a.url.rsplit("/", 1)[1]
    e.wait_for_selector(f"button.claim[data-consultation='{cid}']")
    e.click(f"button.claim[data-consultation='{cid}']")
    e.wait_for_selector(".composer textarea[name=text]")
    a.wait_for_selector(".badge-status-claimed")
    return cid


def test_a_flagged_close_note_is_confirmed_with_a_reason_and_the_reader_sees_the_mark(tabs):
    """The close form explains a refused note (the passage, what to do) and closes only after the
    closer writes a reason; the reader of the other organisation sees the mark, in their language."""
    advisor, expert = tabs("sv-FI"), tabs()
    a = advisor.sign_in("kela.eero")
    e = expert.sign_in("vantaa.mikko")
    _asked_and_claimed(a, e, 82, "tt.income_calculation")

    e.click(".close-box summary")
    e.select_option(".close-box select[name=outcome]", "advice_given")
    e.fill(".close-box input[name=note]", "Asiakkaalla on ulosotossa velkaa.")
    e.click(".close-box button[type=submit]")
    e.wait_for_selector(".close-box fieldset.sensitive-confirm:not([hidden])")
    box = e.inner_text(".close-box fieldset.sensitive-confirm")
    assert "Velat ja ulosotto" in box and "ulosotossa" in box
    assert "Lisätieto näyttää tiedolta" in box and "ennen sulkemista" in box
    assert e.locator(".close-box .status-area .error").count() == 0  # explained, not a bare 409
    expert.axe("close note confirmation")
    expert.shot("close-note-confirmation")
    assert e.locator(".badge-status-closed").count() == 0  # not closed

    e.click(".close-box button[type=submit]")  # no reason yet: still open
    e.wait_for_selector(".close-box fieldset.sensitive-confirm .error:not([hidden])")
    assert "sulje uudelleen" in e.inner_text(".close-box fieldset.sensitive-confirm .error")
    assert e.locator(".badge-status-closed").count() == 0
    e.fill(".close-box textarea[name=sensitive_reason]", "Velkatilanne vaikuttaa jatkoon; asiakas pyysi kertomaan.")
    e.click(".close-box button[type=submit]")
    e.wait_for_selector(".badge-status-closed")
    assert "Velat ja ulosotto" in e.inner_text(".c-header .flagged[data-kind=note]")

    a.wait_for_selector(".badge-status-closed")  # live
    mark = a.wait_for_selector(".c-header .facts .flagged[data-kind=note]")
    assert mark.inner_text() == ("Den som stängde bekräftade en anteckning som ser ut som uppgifter: "
                                 "Skulder och utsökning")
    assert "ulosotossa" in a.inner_text(".c-header .facts")
    a.reload()
    a.wait_for_selector("body[data-ready=true]")
    a.wait_for_selector(".c-header .facts .flagged[data-kind=note]")
    advisor.axe("closed consultation with a confirmed note")
    advisor.shot("closed-note-mark")


def test_a_flagged_attachment_caption_is_confirmed_with_a_reason_and_the_reader_sees_the_mark(tabs):
    """An attachment's covering note that looks like a withheld category is explained and sent
    only with a reason; the message that carries the file is marked for the other organisation."""
    advisor, expert = tabs("en-GB"), tabs()
    a = advisor.sign_in("kela.aino")
    e = expert.sign_in("vantaa.mikko")
    _asked_and_claimed(a, e, 83, "tt.application_intake")
    a.wait_for_selector("#attach-h")

    a.set_input_files("form.attachment-form input[type=file]",
                      files=[{"name": "suunnitelma.png", "mimeType": "image/png", "buffer": PNG}])
    a.fill("form.attachment-form input[name=caption]", "Ulosoton maksusuunnitelma")
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form fieldset.sensitive-confirm:not([hidden])")
    box = a.inner_text("form.attachment-form fieldset.sensitive-confirm")
    assert "The covering note looks like information" in box and "Debts and enforcement" in box
    assert "Ulosoton" in box
    assert a.locator("form.attachment-form ~ .status-area .error").count() == 0
    assert a.get_attribute("form.attachment-form input[type=file]", "aria-invalid") is None
    advisor.axe("attachment caption confirmation")
    advisor.shot("caption-confirmation")
    assert a.locator(".messages .message.mine").count() == 0  # nothing was sent

    a.click("form.attachment-form button[type=submit]")  # no reason yet: still not sent
    a.wait_for_selector("form.attachment-form fieldset.sensitive-confirm .error:not([hidden])")
    assert a.locator(".messages .message.mine").count() == 0
    a.fill("form.attachment-form textarea[name=sensitive_reason]", "The payment plan bears on the calculation.")
    a.click("form.attachment-form button[type=submit]")
    a.wait_for_selector("form.attachment-form ~ .status-area .ok")
    a.wait_for_selector(".messages .message.mine .flagged")
    assert a.locator("form.attachment-form fieldset.sensitive-confirm").get_attribute("hidden") is not None
    assert a.input_value("form.attachment-form textarea[name=sensitive_reason]") == ""
    mark = e.wait_for_selector(".messages .message.theirs .flagged")
    assert "Velat ja ulosotto" in mark.inner_text()


def test_a_note_confirmed_through_the_api_is_marked_in_the_readers_view(tabs):
    """The mark does not depend on the form: a note closed through the API with a confirmation
    is marked in the other organisation's view of the consultation, live and after a reload."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.eero")
    e = expert.sign_in("vantaa.mikko")
    cid = _asked_and_claimed(a, e, 84, "tt.income_calculation")
    closed = e.evaluate("""async (id) => {
        const { api } = await import("/static/js/api.js");
        return api("POST", `/api/v1/consultations/${id}/close`, { outcome: "advice_given",
          note: "Asiakkaalla on ulosotossa velkaa.",
          sensitive_confirmation: { reason: "Velkatilanne vaikuttaa jatkoon.", categories: ["debt"] } });
    }""", cid)
    assert closed["outcome_flagged_categories"] == ["debt"]
    a.wait_for_selector(".badge-status-closed")
    mark = a.wait_for_selector(".c-header .facts .flagged[data-kind=note]")
    assert mark.inner_text() == "Sulkija vahvisti lisätiedon, joka näyttää tiedolta: Velat ja ulosotto"
    a.reload()
    a.wait_for_selector("body[data-ready=true]")
    assert "Velat ja ulosotto" in a.wait_for_selector(".c-header .facts .flagged[data-kind=note]").inner_text()
