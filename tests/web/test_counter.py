"""The browser app at the counter: the advisor always knows where a question went and what
happens next, no answer is missed after a connection break or in another view, and the
alerts of an expert's tabs agree with each other and with what colleagues did.

These run against a server of their own (they turn experts off duty and shorten a pool's SLA),
and the connection break is a real one: the advisor's browser reaches the server through a TCP
relay that the test cuts (every connection closed, new ones refused) and then restores."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, Tab, _require_browser, start_server, stop_server

QUESTION = "Riittääkö vuokrasopimuksen kopio hakemuksen liitteeksi?"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    process, base = start_server(tmp_path_factory.mktemp("konsulta-counter"))
    yield base
    stop_server(process)


class Api:
    """The server's API as another user (an expert, an admin) uses it: real requests, dev tokens."""

    def __init__(self, base: str, user: str) -> None:
        self.base = base
        self.token = self.call("POST", "/api/v1/dev/token", {"user_id": user}, token=None)["token"]

    def call(self, method: str, path: str, body: Any = None, token: str | None | bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        bearer = self.token if token is True else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


class Relay:
    """A TCP relay between the browser and the server that can drop every connection at once."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.blocked = False
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self.lock:
            self.open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        self.blocked = True
        with self.lock:
            sockets = list(self.open)
        for s in sockets:
            self._drop(s)

    def restore(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def counter(browser: Any, own_server: str) -> Iterator[Any]:
    opened: list[Any] = []

    def make(base: str | None = None) -> Tab:
        tab = Tab(browser, base or own_server)
        opened.append(tab)
        return tab

    yield make
    for tab in opened:
        unexpected = [e for e in tab.errors if not re.search(r"status of (401|403|404|409|413|422)|ERR_|net::|WebSocket", e)]
        tab.close()
        assert not unexpected, unexpected


def _ask(page: Any, pool: str = "toimeentulotuki", question: str = QUESTION) -> str:
    page.select_option("select[name=topic]", "application_intake")
    page.wait_for_selector(f"select[name=pool] option[value={pool}]", state="attached")
    page.select_option("select[name=pool]", pool)
    page.fill("textarea[name=question]", question)
    page.click("form.ask-form button[type=submit]")
    page.wait_for_url(re.compile(r".*#/c/[\w-]+$"))
    page.wait_for_selector(".c-header .facts")
    return page.url.rsplit("/", 1)[1]


def _create(api: Api, pool: str = "toimeentulotuki", urgency: str = "immediate") -> str:
    return api.call("POST", "/api/v1/consultations", {
        "topic": "application_intake", "urgency": urgency, "question": QUESTION, "purpose": "general",
        "target_org": "vantaa", "pool": pool})["id"]


def test_the_advisor_sees_where_the_question_went_and_each_step_after(counter, own_server):
    """Immediate is the default; "nobody on duty" is said in words with the expected wait; a
    re-offer appears live; the duty panel counts questions sent to any on-duty expert."""
    liisa = Api(own_server, "vantaa.liisa")
    admin = Api(own_server, "vantaa.admin")
    # The backup pool's only expert is next on duty in five days, 9–11 Helsinki time: off duty now.
    helsinki = ZoneInfo("Europe/Helsinki")
    day = datetime.now(helsinki).date() + timedelta(days=5)
    starts = datetime.combine(day, dt_time(9), helsinki)
    period = admin.call("POST", "/api/v1/roster/periods", {
        "user_id": "vantaa.liisa", "starts_at": starts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ends_at": (starts + timedelta(hours=2)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    liisa.call("PUT", "/api/v1/experts/vantaa.liisa", {"on_duty": False})
    admin.call("PUT", "/api/v1/pools/vantaa/backup", {"sla_seconds": {"immediate": 30}, "reoffers": 5})
    # Two questions to "any on-duty expert" of the county (no pool), waiting.
    aino = Api(own_server, "kela.eero")
    for _ in range(2):
        aino.call("POST", "/api/v1/consultations", {"topic": "other", "urgency": "immediate", "question": QUESTION,
                                                     "purpose": "general", "target_org": "vantaa"})
    try:
        tab = counter()
        page = tab.sign_in("kela.aino")
        assert page.is_checked("input[name=urgency][value=immediate]")
        # The duty panel counts every waiting question, the two without a pool among them.
        row = page.locator(".col-side tr", has_text=re.compile("kuka tahansa päivystäjä", re.I))
        assert row.locator("td").nth(2).inner_text().strip() == "2"

        cid = _ask(page, pool="backup")
        box = page.wait_for_selector(".routing .routing-lines")
        assert "Kukaan ei päivystä nyt" in box.inner_text()
        assert f"Seuraava päivystys alkaa {day.day}.{day.month}.{day.year} klo 9.00" in box.inner_text()
        tab.axe("a consultation with its routing outcome")
        tab.shot("advisor-routing")
        # The expected wait counts down each second.
        clock = page.locator(".routing .wait-clock")
        before = clock.inner_text()
        page.wait_for_function("(t) => document.querySelector('.routing .wait-clock').textContent !== t", arg=before)

        # After a reload the routing outcome is read from the server (GET's routing), in words.
        page.evaluate("() => sessionStorage.removeItem('konsulta.routing')")
        page.reload()
        box = page.wait_for_selector(".routing .routing-lines")
        assert "Kukaan ei päivystä nyt" in box.inner_text()
        assert f"Seuraava päivystys alkaa {day.day}.{day.month}.{day.year} klo 9.00" in box.inner_text()
        assert page.locator(".routing .wait-clock").count() == 1

        # The pool's SLA is 30 s: the re-offer arrives live and is shown without reloading.
        page.wait_for_selector(".routing-lines li:has-text('tarjottu uudelleen')", timeout=60000)
        assert cid in page.url
    finally:
        admin.call("DELETE", f"/api/v1/roster/periods/{period['id']}")
        liisa.call("PUT", "/api/v1/experts/vantaa.liisa", {"on_duty": True})
        admin.call("PUT", "/api/v1/pools/vantaa/backup", {"sla_seconds": {"immediate": 300}, "reoffers": 1})


def test_the_duration_reads_in_days_not_thousands_of_minutes(counter):
    page = counter().open("#/signin")
    texts = page.evaluate("""async () => {
        const i18n = await import("/static/js/i18n.js");
        return [i18n.formatDuration(454670), i18n.formatDuration(5400), i18n.formatDuration(600)];
    }""")
    assert "päivää" in texts[0] and "5,3" in texts[0]
    assert "tuntia" in texts[1] and "1,5" in texts[1]
    assert "10 minuuttia" == texts[2]


def test_an_answer_sent_during_a_connection_break_appears_when_it_is_back(counter, own_server):
    """A real break (the relay drops every connection and refuses new ones): the expert answers
    meanwhile; once back, the open consultation fetches the answer, and the list view's errors of
    the break go while the list shows the truth."""
    relay = Relay(own_server)
    try:
        tab = counter(relay.base)
        page = tab.sign_in("kela.aino")
        cid = _ask(page)
        mikko = Api(own_server, "vantaa.mikko")
        mikko.call("POST", f"/api/v1/consultations/{cid}/claim")
        page.wait_for_selector(".badge-status-claimed")

        relay.cut()
        page.wait_for_selector("#live-status:not(.live-live)")
        mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Vastaus katkon aikana: kopio riittää."})
        time.sleep(1)
        relay.restore()
        page.wait_for_selector("#live-status.live-live", timeout=30000)
        page.wait_for_selector(".messages .message.theirs:has-text('Vastaus katkon aikana')", timeout=15000)
        # Exactly once, also after the next live event of the consultation.
        mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Toinen vastaus."})
        page.wait_for_selector(".messages .message.theirs:has-text('Toinen vastaus')")
        assert page.locator(".messages .message:has-text('Vastaus katkon aikana')").count() == 1

        # The list during a break shows an error; once back the error goes and the list is true.
        relay.cut()
        page.wait_for_selector("#live-status:not(.live-live)")
        page.evaluate("() => { location.hash = '#/advisor'; }")
        page.wait_for_selector("#main .error[role=alert]")
        mikko.call("POST", f"/api/v1/consultations/{cid}/close", {"outcome": "advice_given"})
        relay.restore()
        page.wait_for_selector("#live-status.live-live", timeout=30000)
        page.wait_for_selector(f"section[aria-labelledby=mine-h] tr:has(a[href='#/c/{cid}']) .badge-status-closed",
                               timeout=15000)
        assert page.locator("#main [role=alert]:visible").count() == 0
    finally:
        relay.close()


def test_the_experts_alerts_are_true_again_after_a_connection_break(counter, own_server):
    """During a real break a colleague claims the alerted consultation and a new immediate one
    comes: once back, the first alert is gone and the second is raised."""
    relay = Relay(own_server)
    try:
        tab = counter(relay.base)
        page = tab.sign_in("vantaa.sanna")
        eero = Api(own_server, "kela.eero")
        first = _create(eero)
        page.wait_for_selector(f".notice-urgent[data-consultation='{first}']")
        relay.cut()
        page.wait_for_selector("#live-status:not(.live-live)")
        Api(own_server, "vantaa.mikko").call("POST", f"/api/v1/consultations/{first}/claim")
        second = _create(eero)
        time.sleep(1)
        relay.restore()
        page.wait_for_selector("#live-status.live-live", timeout=30000)
        page.wait_for_selector(f".notice-urgent[data-consultation='{second}']", timeout=15000)
        page.wait_for_selector(f".notice-urgent[data-consultation='{first}']", state="detached", timeout=15000)
    finally:
        relay.close()


def test_an_answer_in_another_view_is_counted_titled_and_bannered(counter, own_server):
    tab = counter()
    page = tab.sign_in("kela.aino")
    cid = _ask(page)
    mikko = Api(own_server, "vantaa.mikko")
    mikko.call("POST", f"/api/v1/consultations/{cid}/claim")
    page.wait_for_selector(".badge-status-claimed")
    tab.go("#/advisor", "section[aria-labelledby=mine-h] table")

    mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Kopio riittää."})
    banner = page.wait_for_selector(f"#notices .notice-message[data-consultation='{cid}']")
    assert "Mikko" in banner.inner_text()
    page.wait_for_function("() => document.title.startsWith('(1) ')")
    page.wait_for_selector(f"[data-unread='{cid}']:has-text('1 uutta')")
    page.wait_for_function("() => document.getElementById('announce-polite').textContent.includes('vastasi')")
    tab.axe("the advisor's view with an unread answer")
    tab.shot("advisor-unread")

    mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Ja toinen huomio."})
    page.wait_for_function("() => document.title.startsWith('(2) ')")
    page.wait_for_selector(f"[data-unread='{cid}']:has-text('2 uutta')")

    # The banner's link is reachable by keyboard and opens the consultation; the count goes.
    link = page.locator(f"#notices .notice-message[data-consultation='{cid}'] a")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*#/c/{cid}$"))
    page.wait_for_selector(".messages .message.theirs:has-text('Ja toinen huomio')")
    page.wait_for_function("() => !/^\\(\\d+\\) /.test(document.title)")
    assert page.locator(".notice-message").count() == 0


def test_a_colleagues_claim_clears_the_counter_alert(counter, own_server):
    sanna_tab, mikko_tab = counter(), counter()
    sanna = sanna_tab.sign_in("vantaa.sanna")
    mikko = mikko_tab.sign_in("vantaa.mikko")
    cid = _create(Api(own_server, "kela.eero"))
    sanna.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
    mikko.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
    assert sanna.title().startswith("(")
    # Mikko claims from his queue, which is kept up to date live (never an older answer over a newer).
    mikko.click(f"button.claim[data-consultation='{cid}']")
    mikko.wait_for_url(re.compile(rf".*#/c/{cid}$"))
    mikko.wait_for_selector(f".participants li[data-user='vantaa.mikko']")
    sanna.wait_for_selector(f".notice-urgent[data-consultation='{cid}']", state="detached")
    # The title counts only the alerts still standing (none, unless another offer came meanwhile).
    sanna.wait_for_function("""() => {
        const standing = document.querySelectorAll('.notice-urgent').length;
        const shown = /^\\((\\d+)\\) /.exec(document.title);
        return standing === (shown ? Number(shown[1]) : 0);
    }""")


def test_an_offered_consultation_open_on_screen_shows_a_colleagues_claim(counter, own_server):
    """An expert reading an offered consultation sees it taken by a colleague live: the claim
    button goes and the claim is shown with who took it, from an event that does not carry the
    consultation again."""
    sanna_tab = counter()
    sanna = sanna_tab.sign_in("vantaa.sanna")
    cid = _create(Api(own_server, "kela.eero"))
    sanna_tab.go(f"#/c/{cid}")
    sanna.wait_for_selector("button.claim")
    Api(own_server, "vantaa.mikko").call("POST", f"/api/v1/consultations/{cid}/claim")
    sanna.wait_for_selector("button.claim", state="detached")
    sanna.wait_for_function("() => document.querySelector('main').textContent.includes('vantaa.mikko')"
                            " || document.querySelector('main').textContent.includes('Mikko')")


def _sign_in_with_queue_reads_held(tab: Tab) -> tuple[Any, list[tuple[Any, Any]]]:
    """Sign ``tab`` in as Sanna while every read of her queue is answered by the server at once
    but handed to the page only when the test says: ``held`` gets (route, answer) pairs. The
    live channel's first ``ready`` makes the shell read the queue to catch up its alerts."""
    held: list[tuple[Any, Any]] = []

    def hold(route: Any) -> None:
        if route.request.method == "GET" and not getattr(tab, "queue_released", False):
            held.append((route, route.fetch()))
        else:
            route.continue_()

    tab.page.route("**/api/v1/queue*", hold)
    page = tab.sign_in("vantaa.sanna")
    for _ in range(200):  # the shell's catch-up read, made at the first ready
        if any("limit=100" in route.request.url for route, _answer in held):
            break
        page.wait_for_timeout(25)
    else:
        raise AssertionError("the first ready did not make the shell read the queue")
    return page, held


def _hand_over(tab: Tab, held: list[tuple[Any, Any]]) -> None:
    """Give the page the answers held so far (made before what the test did since), and let every
    later read of the queue through."""
    tab.queue_released = True
    for route, answer in held:
        route.fulfill(response=answer)
    tab.page.wait_for_load_state("networkidle")
    tab.settle()


def test_an_offer_alerted_while_the_queue_is_read_is_not_taken_back_by_the_older_answer(counter, own_server):
    """The expert has just signed in; the queue read that catches up her alerts was answered before
    an immediate consultation came, and reaches the page after its offer was alerted live: the
    alert stays (the read does not know of it; the offer is newer)."""
    tab = counter()
    page, held = _sign_in_with_queue_reads_held(tab)
    cid = _create(Api(own_server, "kela.eero"))
    try:
        page.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
        _hand_over(tab, held)
        assert page.locator(f".notice-urgent[data-consultation='{cid}']").count() == 1
        assert _title_counts_the_standing_alerts(page)
    finally:  # taken, so that it alerts nobody in the tests after this one
        Api(own_server, "vantaa.mikko").call("POST", f"/api/v1/consultations/{cid}/claim")


def test_an_offer_taken_while_the_queue_is_read_is_not_alerted_by_the_older_answer(counter, own_server):
    """An immediate consultation waits when the expert signs in; her catch-up read of the queue is
    answered with it, then a colleague claims it, and the answer reaches the page after the claim's
    notice: no alert is raised for a consultation nobody can take any more."""
    eero = Api(own_server, "kela.eero")
    cid = _create(eero)
    tab = counter()
    page, held = _sign_in_with_queue_reads_held(tab)
    # The claim's notice reaches her socket before the older answer reaches the page.
    page.evaluate("""(cid) => new Promise((done) => {
        window.__claimSeen = false;
        const seen = () => { window.__claimSeen = true; done(); };
        import("/static/js/live.js").then((live) => live.subscribe((e) => {
            if (e.type === "consultation.claimed" && (e.consultation_id || (e.consultation || {}).id) === cid) seen();
        }));
        setTimeout(done, 0);
    })""", cid)
    Api(own_server, "vantaa.mikko").call("POST", f"/api/v1/consultations/{cid}/claim")
    page.wait_for_function("() => window.__claimSeen === true")
    _hand_over(tab, held)
    assert page.locator(f".notice-urgent[data-consultation='{cid}']").count() == 0
    assert _title_counts_the_standing_alerts(page)


def _title_counts_the_standing_alerts(page: Any) -> bool:
    return bool(page.evaluate("""() => {
        const standing = document.querySelectorAll('.notice-urgent').length;
        const shown = /^\\((\\d+)\\) /.exec(document.title);
        return standing === (shown ? Number(shown[1]) : 0);
    }"""))


def _two_tabs(browser: Any, base: str, user: str, init: str = "") -> tuple[Any, Any, Any]:
    """Two tabs of one browser profile (one context): the first signs in as ``user``, the second,
    opened then, joins its session without signing in."""
    context = browser.new_context(locale="fi-FI", viewport={"width": 1280, "height": 900})
    # Counts the tones each tab plays (the browser's own AudioContext, wrapped, not our code).
    context.add_init_script("""(() => {
        window.__tones = 0;
        const original = window.AudioContext && window.AudioContext.prototype.createOscillator;
        if (original) window.AudioContext.prototype.createOscillator = function () {
          window.__tones += 1; return original.call(this); };
    })();""" + init)
    first = context.new_page()
    first.goto(f"{base}/#/signin")
    first.wait_for_selector("body[data-ready=true]")
    first.click(f"button[data-user='{user}']")
    first.wait_for_selector("#live-status.live-live")
    second = context.new_page()
    second.goto(f"{base}/")
    second.wait_for_selector("body[data-ready=true]")
    second.wait_for_selector("#live-status.live-live")
    return context, first, second


def test_a_tab_opened_beside_a_signed_in_one_joins_its_session(browser, own_server):
    """The second tab of the profile is signed in as the same user without a sign-in of its own;
    a token renewed in one tab is taken by the other (one session, not one per tab)."""
    context, first, second = _two_tabs(browser, own_server, "kela.aino")
    try:
        who = second.evaluate("() => JSON.parse(sessionStorage.getItem('konsulta.session')).user.id")
        assert who == "kela.aino"
        assert "Aino" in second.inner_text("#tools .who-name")
        second.wait_for_selector("#nav a[href='#/advisor']")
        renewed = first.evaluate("""async () => {
            const { api } = await import("/static/js/api.js");
            const { session } = await import("/static/js/session.js");
            const { broadcastToken } = await import("/static/js/notify.js");
            await new Promise((r) => setTimeout(r, 1100));  // a later exp than the token held
            session.renew((await api("POST", "/api/v1/dev/token/renew")).token);
            broadcastToken();
            return session.token;
        }""")
        second.wait_for_function("(t) => JSON.parse(sessionStorage.getItem('konsulta.session')).token === t", arg=renewed)
    finally:
        context.close()


def test_only_one_tab_of_the_expert_sounds_the_alert(browser, own_server):
    context, first, second = _two_tabs(browser, own_server, "vantaa.sanna")
    try:
        cid = _create(Api(own_server, "kela.eero"))
        for page in (first, second):
            page.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
        time.sleep(0.5)
        tones = [first.evaluate("() => window.__tones"), second.evaluate("() => window.__tones")]
        assert sorted(tones)[0] == 0 and sorted(tones)[1] > 0, tones
    finally:
        context.close()


def test_signing_out_in_one_tab_signs_out_every_tab_of_the_browser(browser, own_server):
    context, first, second = _two_tabs(browser, own_server, "kela.aino")
    try:
        first.click("#tools button:has-text('Kirjaudu ulos')")
        first.wait_for_selector("button[data-user]")
        second.wait_for_selector("button[data-user]")
        assert second.locator("#live-status").count() == 0
        assert second.evaluate("() => sessionStorage.getItem('konsulta.session')") is None
    finally:
        context.close()


def test_a_claim_while_the_advisors_consultation_loads_shows_live(counter, own_server):
    """The expert claims while the advisor's consultation view is still loading its messages (the
    load is held until the claim's live event has reached the page): the header names the expert
    without a reload."""
    cid = _create(Api(own_server, "kela.aino"), urgency="normal")
    tab = counter()
    page = tab.sign_in("kela.aino")
    mikko = Api(own_server, "vantaa.mikko")
    claimed: list[str] = []

    def claim_first(route: Any) -> None:
        if not claimed:
            claimed.append(mikko.call("POST", f"/api/v1/consultations/{cid}/claim")["id"])
            time.sleep(1.5)  # the claim's live event reaches the page meanwhile
        route.continue_()

    page.route(re.compile(rf".*/api/v1/consultations/{cid}/messages\?.*"), claim_first)
    tab.go(f"#/c/{cid}", ".c-header .facts")
    page.wait_for_selector(".participants li[data-user='vantaa.mikko']", timeout=10000)
    page.wait_for_selector(".c-header .badge-status-claimed")
    assert claimed == [cid]


def test_the_queue_never_shows_an_older_answer_over_a_newer_one(counter, own_server):
    """Two offers in quick succession: the queue's first read is answered late (held by the test)
    and must not replace the newer list that shows both offers."""
    tab = counter()
    page = tab.sign_in("vantaa.sanna")
    page.wait_for_selector("section[aria-labelledby=queue-h] table, section[aria-labelledby=queue-h] .empty")
    held: list[Any] = []

    def hold_first(route: Any) -> None:
        if held:
            route.continue_()
            return
        held.append((route, route.fetch()))  # the answer as it is now, handed over later

    page.route(re.compile(r".*/api/v1/consultations\?status=open.*"), hold_first)
    eero = Api(own_server, "kela.eero")
    first = _create(eero, urgency="normal")
    deadline = time.monotonic() + 15
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held, "the queue was not read after the first offer"
    second = _create(eero, urgency="normal")
    page.wait_for_timeout(2000)  # any second read answers first
    route, response = held[0]
    route.fulfill(response=response)
    page.wait_for_selector(f"button.claim[data-consultation='{second}']", timeout=10000)
    page.wait_for_selector(f"button.claim[data-consultation='{first}']")
    page.wait_for_timeout(1000)
    assert page.locator(f"button.claim[data-consultation='{second}']").count() == 1
    # The time waited and the time left to the deadline tick each second.
    row = page.locator("section[aria-labelledby=queue-h] tr", has=page.locator(f"button.claim[data-consultation='{second}']"))
    waited, due = row.locator(".queue-waited .clock"), row.locator(".queue-due .clock")
    before = (waited.inner_text(), due.inner_text())
    page.wait_for_timeout(2100)
    after = (waited.inner_text(), due.inner_text())
    assert after[0] != before[0] and after[1] != before[1], (before, after)


def _frames(page: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The live frames the page sends and receives (JSON), as Chromium's DevTools sees them."""
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def watch(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", watch)
    return sent, received


class _Requests:
    """The page's requests whose address holds ``fragment``, followed from now on."""

    def __init__(self, page: Any, fragment: str) -> None:
        self.page, self.fragment = page, fragment
        self.open, self.last = 0, time.monotonic()
        page.on("request", lambda r: self._count(r, 1))
        page.on("requestfinished", lambda r: self._count(r, -1))
        page.on("requestfailed", lambda r: self._count(r, -1))

    def _count(self, request: Any, change: int) -> None:
        if self.fragment in request.url:
            self.open += change
            self.last = time.monotonic()

    def quiet(self, for_s: float = 1.0) -> None:
        """Wait (up to 15 s) until none is under way and none began or ended for ``for_s`` s."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
            if self.open == 0 and time.monotonic() - self.last >= for_s:
                return
        raise AssertionError(f"requests to {self.fragment} did not stop")


def test_a_break_is_resumed_by_event_id_each_event_once(counter, own_server):
    """Needs a server that numbers its live events (``event_id``, ``ready.last_event_id``) and
    replays them: the reconnection's first frame names the last event the tab processed, the
    answer given during the break arrives by replay, once, and the open consultation is not read
    again when the replay was complete. A reload of the tab resumes from the same place."""
    relay = Relay(own_server)
    try:
        tab = counter(relay.base)
        page = tab.open("#/signin")
        sent, received = _frames(page)
        consultation_reads = _Requests(page, "/api/v1/consultations/")
        page.click("button[data-user='kela.aino']")
        page.wait_for_selector("#live-status.live-live")
        first_ready = next(f for f in received if f.get("type") == "ready")
        if not isinstance(first_ready.get("last_event_id"), int):
            pytest.skip("the server does not number its live events yet (ready.last_event_id)")
        cid = _ask(page)
        mikko = Api(own_server, "vantaa.mikko")
        mikko.call("POST", f"/api/v1/consultations/{cid}/claim")
        page.wait_for_selector(".c-header .badge-status-claimed")
        # A catch-up the view began before the break (the claim came while it read) ends first:
        # only what the resumption makes it read is counted.
        consultation_reads.quiet()
        last = max(f["event_id"] for f in received if isinstance(f.get("event_id"), int))
        reads: list[str] = []
        page.on("request", lambda r: reads.append(r.url) if f"/consultations/{cid}/messages?" in r.url else None)

        relay.cut()
        page.wait_for_selector("#live-status:not(.live-live)")
        mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Vastaus katkon aikana: kopio riittää."})
        relay.restore()
        page.wait_for_selector("#live-status.live-live", timeout=30000)
        page.wait_for_selector(".messages .message.theirs:has-text('Vastaus katkon aikana')", timeout=15000)
        auths = [f for f in sent if f.get("type") == "auth"]
        assert auths[-1].get("last_event_id") == last
        resumed = [f for f in received if f.get("type") == "live.resumed"]
        assert resumed and resumed[-1]["from"] == last and resumed[-1]["replayed"] >= 1
        page.wait_for_timeout(1000)
        assert page.locator(".messages .message:has-text('Vastaus katkon aikana')").count() == 1
        if resumed[-1]["complete"]:
            assert reads == []

        # A reload resumes from the last event processed in this tab.
        processed = page.evaluate("() => JSON.parse(sessionStorage.getItem('konsulta.live.last')).id")
        assert processed >= last + 1
        page.reload()
        page.wait_for_selector("#live-status.live-live")
        assert [f for f in sent if f.get("type") == "auth"][-1].get("last_event_id") == processed
    finally:
        relay.close()


def test_an_event_delivered_twice_is_processed_once(counter, own_server):
    """Needs a server that numbers its live events. The network hands the tab every frame of the
    real server twice (as a replay overlapping what came live would): each answer is shown and
    counted once."""
    tab = counter()
    page = tab.page
    numbered: list[bool] = []

    def twice(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))

        def down(message: Any) -> None:
            ws.send(message)
            frame = json.loads(message)
            if frame.get("type") == "ready":
                numbered.append(isinstance(frame.get("last_event_id"), int))
            if isinstance(frame.get("event_id"), int):
                ws.send(message)

        server.on_message(down)

    page.route_web_socket(re.compile(r".*/api/v1/ws$"), twice)
    tab.sign_in("kela.aino")
    if not numbered or not numbered[0]:
        pytest.skip("the server does not number its live events yet (ready.last_event_id)")
    cid = _ask(page)
    mikko = Api(own_server, "vantaa.mikko")
    mikko.call("POST", f"/api/v1/consultations/{cid}/claim")
    page.wait_for_selector(".c-header .badge-status-claimed")
    tab.go("#/advisor", "section[aria-labelledby=mine-h] table")
    mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Kopio riittää."})
    page.wait_for_selector(f"[data-unread='{cid}']:has-text('1 uutta')")
    mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Ja toinen."})
    page.wait_for_selector(f"[data-unread='{cid}']:has-text('2 uutta')")
    page.wait_for_timeout(500)
    assert page.evaluate("() => document.title").startswith("(2) ")


# Wraps the browser's own Notification (counting what the page shows and whether it asked) and
# lets the test say whether the document is in view (Chromium's headless pages always are).
NOTIFICATIONS = """(() => {
    window.__notes = [];
    window.__asked = 0;
    const Real = window.Notification;
    if (Real) {
      window.Notification = class extends Real {
        constructor(title, options) { window.__notes.push({ title, body: options && options.body, tag: options && options.tag });
          super(title, options); }
        static requestPermission(...args) { window.__asked += 1; return Real.requestPermission(...args); }
      };
    }
    let hidden = false;
    Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return hidden; } });
    Object.defineProperty(Document.prototype, "visibilityState", { configurable: true,
      get() { return hidden ? "hidden" : "visible"; } });
    window.__setHidden = (value) => { hidden = value; document.dispatchEvent(new Event("visibilitychange")); };
})();"""


def _notes(*pages: Any) -> list[dict[str, Any]]:
    return [n for page in pages for n in page.evaluate("() => window.__notes")]


def test_an_answer_while_no_tab_is_in_view_is_notified_once(browser, own_server):
    """Notifications are asked for from the button only (never on load); an answer that comes while
    both tabs of the advisor are hidden gives one system notification, naming who answered and not
    what; while one tab is in view, none."""
    context, first, second = _two_tabs(browser, own_server, "kela.aino", NOTIFICATIONS)
    pages = [first, second]
    try:
        assert first.evaluate("() => Notification.permission") == "default"
        assert first.evaluate("() => window.__asked") == 0 and second.evaluate("() => window.__asked") == 0
        context.grant_permissions(["notifications"], origin=own_server)
        first.click("#alerts-enable")
        first.wait_for_selector("#alert-settings:has-text('Ilmoitukset ja äänet käytössä')")
        assert first.evaluate("() => window.__asked") == 1

        aino = Api(own_server, "kela.aino")
        cid = _create(aino, urgency="normal")
        mikko = Api(own_server, "vantaa.mikko")
        mikko.call("POST", f"/api/v1/consultations/{cid}/claim")
        for page in pages:
            page.evaluate("() => window.__setHidden(true)")
        mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Luottamuksellinen vastausteksti."})
        first.wait_for_function("() => document.title.startsWith('(1) ')")
        second.wait_for_function("() => document.title.startsWith('(1) ')")
        first.wait_for_timeout(1500)
        notes = _notes(first, second)
        assert len(notes) == 1, notes
        assert "Mikko" in notes[0]["body"] and "Luottamuksellinen" not in notes[0]["body"]

        # One tab in view: it shows the answer, no notification anywhere.
        first.evaluate("() => window.__setHidden(false)")
        mikko.call("POST", f"/api/v1/consultations/{cid}/messages", {"text": "Toinen vastaus."})
        second.wait_for_function("() => document.title.startsWith('(2) ')")
        first.wait_for_timeout(1500)
        assert len(_notes(first, second)) == 1
    finally:
        context.close()


def test_the_tone_turned_on_is_ready_again_after_a_reload(browser, own_server):
    """In a browser that holds sound until a press (Chromium's default autoplay policy): the tone
    turned on with the button is remembered; after a reload, if the browser holds it, the page
    says so and the first press anywhere resumes it; an immediate offer then sounds."""
    strict = browser.browser_type.launch(executable_path=str(CHROMIUM),
                                         args=[a for a in CHROMIUM_ARGS if "autoplay" not in a])
    try:
        context = strict.new_context(locale="fi-FI", viewport={"width": 1280, "height": 900})
        context.add_init_script("""(() => {
            window.__tones = 0;
            const original = window.AudioContext && window.AudioContext.prototype.createOscillator;
            if (original) window.AudioContext.prototype.createOscillator = function () {
              if (this.state === "running") window.__tones += 1; return original.call(this); };
        })();""")
        page = context.new_page()
        page.goto(f"{own_server}/#/signin")
        page.wait_for_selector("body[data-ready=true]")
        page.click("button[data-user='vantaa.sanna']")
        page.wait_for_selector("#live-status.live-live")
        page.click("#alerts-enable")
        page.reload()
        page.wait_for_selector("#live-status.live-live")
        assert page.evaluate("() => localStorage.getItem('konsulta.sound')") == "on"
        # Chromium may hold the tone until a press, or allow it at once on a site the user has
        # pressed before: when held, the page says so and the first press resumes it.
        if page.locator("#sound-held").count():
            page.mouse.click(5, 5)
            page.wait_for_selector("#sound-held", state="detached")
        cid = _create(Api(own_server, "kela.eero"))
        page.wait_for_selector(f".notice-urgent[data-consultation='{cid}']")
        page.wait_for_function("() => window.__tones > 0")
        context.close()
    finally:
        strict.close()
