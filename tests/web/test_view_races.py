"""End-to-end in headless Chromium: what happens while the page is busy. A view still loading when
the user goes on never draws beside the next view; a form being filled in survives a live event
that redraws the consultation around it."""

from __future__ import annotations

from typing import Any

from tests.synthetic import hetu
from tests.web.test_editing import _ask, _claim
from tests.web.test_words import _api


def _until_held(page: Any, held: list[Any], otherwise: str) -> None:
    """Wait (up to 5 s, letting the page's requests run) until a route handler has held a request."""
    for _ in range(200):
        if held:
            return
        page.wait_for_timeout(25)
    raise AssertionError(otherwise)


def test_a_view_still_loading_when_the_user_goes_on_is_not_drawn_beside_the_next(tabs):
    officer = tabs()
    page = officer.page
    held: list[Any] = []
    # The directory of names every view reads first is held until the officer has gone on.
    page.route("**/api/v1/experts", lambda route: held.append(route))
    officer.sign_in("kela.tuula")
    _until_held(page, held, "the first view did not read the directory")
    page.evaluate("() => { location.hash = '#/privacy/report'; }")
    page.wait_for_function("() => location.hash === '#/privacy/report'")
    page.wait_for_timeout(100)
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/experts")
    page.wait_for_selector("#report-h")
    page.wait_for_load_state("networkidle")
    officer.settle()
    assert page.locator("main h1").count() == 1
    assert page.locator("main .subnav").count() == 1
    assert page.locator("main .section-body").count() == 1
    assert page.locator("main .subnav a[aria-current=page]").get_attribute("href") == "#/privacy/report"
    officer.axe("the report after leaving a view that was still loading")


def test_the_close_form_keeps_what_is_typed_when_a_live_event_redraws_the_consultation(tabs):
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.eero")
    expert.sign_in("vantaa.mikko")
    cid = _ask(a, client=hetu(83), question="Miten tilanne huomioidaan?")
    _claim(expert, cid)
    e = expert.page
    e.click(".close-box summary")
    e.select_option(".close-box select[name=outcome]", "referred")
    e.fill(".close-box input[name=note]", "Ohjattu sosiaalityöntekijälle.")
    e.focus(".close-box input[name=note]")

    # The advisor adds a colleague: the expert's view is redrawn by the live event.
    a.wait_for_selector(".participant-box summary")
    a.click(".participant-box summary")
    a.fill("form.participant-form input[name=user_id]", "vantaa.sanna")
    a.click("form.participant-form button[type=submit]")
    a.wait_for_selector(".participants li[data-user='vantaa.sanna'], .participant-box .error")
    assert a.locator(".participant-box .error").count() == 0, a.inner_text(".participant-box")
    e.wait_for_selector(".participants li[data-user='vantaa.sanna']")

    assert e.get_attribute(".close-box", "open") is not None
    assert e.input_value(".close-box input[name=note]") == "Ohjattu sosiaalityöntekijälle."
    assert e.input_value(".close-box select[name=outcome]") == "referred"
    assert e.evaluate("() => document.activeElement.name") == "note"
    e.click(".close-box button[type=submit]")
    e.wait_for_selector(".badge-status-closed")
    assert "Ohjattu sosiaalityöntekijälle." in e.inner_text(".c-header .facts")


# Holds every frame the page sends on a WebSocket (the live channel's auth frame) until released.
_HOLD_LIVE = """
(() => {
  const send = WebSocket.prototype.send;
  const held = [];
  let holding = true;
  WebSocket.prototype.send = function (data) {
    if (holding) { held.push([this, data]); return; }
    return send.call(this, data);
  };
  window.__releaseLive = () => { holding = false; for (const [ws, data] of held.splice(0)) send.call(ws, data); };
})();
"""


def _advisor_reopens_with_live_held(tabs, client: str, question: str) -> tuple[Any, Any, Any, str]:
    """An advisor asks; then opens the consultation in a fresh page of the tab (no last event id to
    resume from) whose live channel's authentication is held until ``window.__releaseLive()``.
    Answers the advisor's tab, its page, the expert's (vantaa.sanna) page and the consultation."""
    advisor, expert = tabs(), tabs()
    a = advisor.sign_in("kela.aino")
    e = expert.sign_in("vantaa.sanna")
    cid = _ask(a, client=client, question=question)
    a.add_init_script(_HOLD_LIVE)
    a.evaluate("() => sessionStorage.removeItem('konsulta.live.last')")
    a.reload()
    a.wait_for_selector(".c-header .facts")
    a.wait_for_load_state("networkidle")
    return advisor, a, e, cid


def test_what_happens_between_a_views_first_read_and_the_first_ready_of_the_live_channel_is_shown(tabs):
    """A tab opened on a consultation (no event seen before, so nothing to resume from) reads the
    consultation before its live channel is ready: a claim between the two is in neither the read
    nor the live events, so the tab must read again once the channel is ready."""
    # The live channel's authentication is held until the claim has been made.
    advisor, a, e, cid = _advisor_reopens_with_live_held(tabs, hetu(84), "Onko hakemus käsittelyssä?")
    assert a.locator("#live-status.live-live").count() == 0
    assert a.locator(".participants li[data-user='vantaa.sanna']").count() == 0

    _api(e, "POST", f"/api/v1/consultations/{cid}/claim")
    a.evaluate("() => window.__releaseLive()")
    a.wait_for_selector("#live-status.live-live")
    a.wait_for_selector(".participants li[data-user='vantaa.sanna']", timeout=10_000)
    advisor.axe("a consultation read again once the live channel was ready")


def test_a_read_answered_before_a_live_event_is_not_drawn_over_it(tabs):
    """A consultation read again (here after the live channel's first ready) whose answer was made
    before the expert's claim but arrives after the claim's live event: the older answer must not
    undo what the event showed (the expert gone from the participants again)."""
    advisor, a, e, cid = _advisor_reopens_with_live_held(tabs, hetu(85), "Onko päätös voimassa?")

    # The read the first ready causes is answered by the server now, before the claim, and handed
    # to the page only after the claim's event has been drawn.
    held: list[Any] = []

    def hold_the_first_read(route: Any) -> None:
        if route.request.method == "GET" and not held:
            held.append(route)
        else:
            route.continue_()

    a.route(f"**/api/v1/consultations/{cid}", hold_the_first_read)
    a.evaluate("() => window.__releaseLive()")
    a.wait_for_selector("#live-status.live-live")
    _until_held(a, held, "the first ready did not make the view read the consultation again")
    before_claim = held[0].fetch()

    _api(e, "POST", f"/api/v1/consultations/{cid}/claim")
    a.wait_for_selector(".participants li[data-user='vantaa.sanna']")
    held[0].fulfill(response=before_claim)
    a.wait_for_load_state("networkidle")
    advisor.settle()
    assert a.locator(".participants li[data-user='vantaa.sanna']").count() == 1
