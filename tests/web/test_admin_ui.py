"""The admin's pitfalls closed: pools are chosen from those that exist (a new pool is its own,
confirmed action, and the server refuses any other), roster entries go only after a
confirmation, several weekdays are added at once, and the keys view says what each key version
does."""

from __future__ import annotations

from tests.web.test_words import _api


def roster_of(page, user_id: str) -> dict:
    roster = _api(page, "GET", "/api/v1/roster?org=vantaa", None)
    return next(e for e in roster["experts"] if e["id"] == user_id)


def restore_duty(page, user_id: str, on_duty: bool) -> None:
    """The server is shared with other tests: the expert's weekly rules go, and the on-duty state
    the expert had comes back (a roster change sets it to what the roster says)."""
    for rule in roster_of(page, user_id)["rules"]:
        _api(page, "DELETE", f"/api/v1/roster/rules/{rule['id']}", None)
    _api(page, "PUT", f"/api/v1/experts/{user_id}", {"on_duty": on_duty})


def _pools(page) -> set[str]:
    return {p["name"] for p in _api(page, "GET", "/api/v1/pools?org=vantaa", None)["items"]}


def test_pools_are_chosen_and_a_new_pool_is_confirmed(tabs):
    admin = tabs()
    d = admin.sign_in("vantaa.admin")
    admin.go("#/admin/experts", ready="#experts-h")
    d.get_by_role("button", name="Muokkaa: Sanna Asiantuntija").click()
    d.wait_for_selector("#edit-h")
    # No free-text pool field: the pools are the organisation's, each a checkbox.
    assert d.locator("#edit-h ~ form input[type=text][name=pools], #edit-h ~ form input:not([type])").count() == 0
    choices = d.locator(".pool-choices input[type=checkbox][name=pools]")
    assert sorted(choices.evaluate_all("(xs) => xs.map((x) => x.value)")) == sorted(_pools(d))
    assert d.is_checked(".pool-choices input[value=toimeentulotuki]")

    before = _pools(d)
    admin.go("#/admin/pools", ready="#pools-h")
    d.click("#pool-new")
    d.fill("input[name=pool_name]", "toimeentulotuki")
    d.click("form.pool-new-form button[type=submit]")
    d.wait_for_selector("text=Pooli toimeentulotuki on jo olemassa.")
    d.fill("input[name=pool_name]", "Toimeentulo tuki")
    d.click("form.pool-new-form button[type=submit]")
    d.wait_for_selector("text=/Nimessä voi olla vain/")
    assert d.locator("dialog[open]").count() == 0

    d.fill("input[name=pool_name]", "toimeentulotuk")
    d.click("form.pool-new-form button[type=submit]")
    dialog = d.wait_for_selector("dialog[open]")
    assert "toimeentulotuk" in dialog.inner_text() and "Neuvojat näkevät" in dialog.inner_text()
    d.get_by_role("button", name="Peruuta").click()
    d.wait_for_selector("dialog", state="detached")
    assert _pools(d) == before  # cancelled: nothing made

    d.click("form.pool-new-form button[type=submit]")
    d.wait_for_selector("dialog[open]")
    d.get_by_role("button", name="Luo pooli", exact=True).click()
    d.wait_for_selector("button[data-pool=toimeentulotuk]")
    assert _pools(d) == before | {"toimeentulotuk"}


def test_a_pool_that_does_not_exist_is_refused_with_what_to_do(tabs):
    """The server names an expert only to a pool that exists (422 unknown_pool): a form whose pool
    list is out of date says, in the user's language, to create the pool under Pools first; the
    expert keeps the pools they had."""
    admin = tabs()
    d = admin.sign_in("vantaa.admin")
    admin.go("#/admin/experts", ready="#experts-h")
    d.get_by_role("button", name="Muokkaa: Liisa Varahenkilö").click()
    d.wait_for_selector("#edit-h")
    # A choice the organisation does not have (as a list read before a change would offer).
    box = d.locator(".pool-choices input[type=checkbox][name=pools]").first
    box.evaluate("(el) => { el.value = 'vara-pooli-puuttuu'; el.checked = true; }")
    d.click("#edit-h ~ form button[type=submit]")
    error = d.wait_for_selector("#edit-h ~ .status-area .error")
    assert "Luo pooli ensin Poolit-osiossa" in error.inner_text()
    assert "vara-pooli-puuttuu" in error.inner_text()  # the server's detail names it
    admin.axe("the unknown pool error of the expert form")
    liisa = next(e for e in _api(d, "GET", "/api/v1/experts?org=vantaa", None)["items"] if e["id"] == "vantaa.liisa")
    assert liisa["pools"] == ["backup"]
    assert "vara-pooli-puuttuu" not in _pools(d)


def test_roster_rules_for_several_days_and_removal_after_confirmation(tabs):
    admin = tabs()
    d = admin.sign_in("vantaa.admin")
    admin.go("#/admin/roster", ready="#rule-h")
    was_on_duty = roster_of(d, "vantaa.liisa")["on_duty"]
    try:
        _rules_and_removal(d)
    finally:
        restore_duty(d, "vantaa.liisa", was_on_duty)


def _rules_and_removal(d) -> None:
    d.select_option("form.rule-form select[name=user_id]", "vantaa.liisa")
    d.uncheck("form.rule-form input[name=weekday][value='1']")
    for day in ("2", "4", "6"):
        d.check(f"form.rule-form input[name=weekday][value='{day}']")
    d.fill("form.rule-form input[name=start]", "09:00")
    d.fill("form.rule-form input[name=end]", "12:00")
    d.click("form.rule-form button[type=submit]")
    d.wait_for_selector("text=/Viikkovuoro lisätty: tiistai, torstai, lauantai/")

    def rules() -> list[dict]:
        return roster_of(d, "vantaa.liisa")["rules"]

    assert sorted(r["weekday"] for r in rules() if r["start"] == "09:00") == [2, 4, 6]
    remove = d.locator("button[data-remove]").first
    remove.click()
    d.wait_for_selector("dialog[open]")
    d.keyboard.press("Escape")  # cancelled: nothing removed, focus back on the button
    d.wait_for_selector("dialog", state="detached")
    assert len(rules()) == 3
    assert d.evaluate("() => document.activeElement.dataset.remove") is not None
    remove.click()
    d.get_by_role("button", name="Poista", exact=True).click()
    d.wait_for_selector("text=Poistettu vuorolistasta.")
    assert len(rules()) == 2


def test_the_keys_view_says_what_each_version_does(tabs):
    admin = tabs()
    d = admin.sign_in("vantaa.admin")
    admin.go("#/admin/keys", ready=".section-body table")
    status = _api(d, "GET", "/api/v1/keys/status", None)
    rows = d.locator(".section-body table tbody tr")
    for i, version in enumerate(status["versions"]):
        text = rows.nth(i).inner_text()
        if version["version"] == status["current"]:
            assert "salaa uudet" in text and "avaa vanhoja" not in text
        elif version["status"] == "active":
            assert "avaa vain" in text


def test_admin_ends_a_users_sessions_after_confirmation(tabs):
    other, admin = tabs(), tabs()
    m = other.sign_in("vantaa.mikko")
    d = admin.sign_in("vantaa.admin")
    admin.go("#/admin/sessions", ready="#sessions-h")
    d.click("form.sessions-form button[type=submit]")
    d.wait_for_selector("form.sessions-form [aria-invalid=true]")
    d.fill("input[name=user_id]", "vantaa.nobody")
    d.click("form.sessions-form button[type=submit]")
    d.get_by_role("dialog").get_by_role("button", name="Päätä istunnot").click()
    d.wait_for_selector("text=Organisaatiosi käyttäjistä kukaan ei ole kirjautunut tällä tunnuksella.")

    d.fill("input[name=user_id]", "vantaa.mikko")
    d.click("form.sessions-form button[type=submit]")
    dialog = d.wait_for_selector("dialog[open]")
    assert "Mikko" in dialog.inner_text()
    d.get_by_role("dialog").get_by_role("button", name="Peruuta").click()
    d.wait_for_selector("dialog", state="detached")
    m.wait_for_timeout(500)
    assert m.locator("#live-status.live-live").count() == 1  # cancelled: still signed in

    d.click("form.sessions-form button[type=submit]")
    d.get_by_role("dialog").get_by_role("button", name="Päätä istunnot").click()
    d.wait_for_selector("text=/istunnot päätetty/")
    m.wait_for_selector("button[data-user]")  # the other tab is back at sign-in
