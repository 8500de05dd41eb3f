"""End-to-end in headless Chromium: free text that looks like a category withheld from the other
organisation is flagged before sending, sent only after the sender confirms with a reason, and
marked for the reader; axe-core checks the confirmation for WCAG 2.1 AA violations."""

from __future__ import annotations

import re

from tests.synthetic import hetu


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
    e.wait_for_selector("fieldset.sensitive-confirm:not([hidden])")
    expert.axe("sensitive text confirmation")
    assert e.locator(".messages .message.mine").count() == 0  # nothing was sent
    e.click(".composer button[type=submit]")  # no reason yet: still not sent
    e.wait_for_selector("fieldset.sensitive-confirm .error:not([hidden])")
    e.fill("textarea[name=sensitive_reason]", "Velkatilanne vaikuttaa laskelmaan; asiakas pyysi kertomaan.")
    e.click(".composer button[type=submit]")
    e.wait_for_selector(".messages .message.mine .flagged")
    assert e.locator("fieldset.sensitive-confirm").get_attribute("hidden") is not None
    a.wait_for_selector(".messages .message.theirs .flagged")
    assert "Velat ja ulosotto" in a.inner_text(".messages .message.theirs .flagged")
