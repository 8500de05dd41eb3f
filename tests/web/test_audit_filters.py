"""The privacy officer's log search filters by action (chosen by its words), by actor (picked by
name or typed) and by time (a day, or a moment of it in Helsinki time); the officer's own
searches can be hidden or shown; the export downloads what the filters select."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.synthetic import hetu
from tests.web.test_words import _withheld_answer

HELSINKI = ZoneInfo("Europe/Helsinki")
ROOT = Path(__file__).resolve().parents[2]


def _rows(page) -> list[str]:
    return page.locator(".results table tbody tr").all_inner_texts()


def _search(page) -> None:
    """Submit and wait for this search's answer (an earlier table stays until it replaces it)."""
    page.click("form.filters button[type=submit]")
    page.wait_for_selector(".results[aria-busy=false] :is(table, .empty)")


def test_officer_filters_the_log_by_action_actor_and_time_and_exports_it(tabs):
    _withheld_answer(tabs, hetu(46, sign="A", birth="150305"))
    officer = tabs()
    o = officer.sign_in("vantaa.ville")
    officer.go("#/privacy/events", ready=".results table")

    # Action: chosen by its words from the log's actions, not typed as a code.
    assert o.locator("form.filters input[name=action]").count() == 0
    o.select_option("form.filters select[name=action]", label="jätetty luovuttamatta (sääntöjen mukaan)")
    _search(o)
    rows = _rows(o)
    assert rows and all("jätetty luovuttamatta" in r for r in rows)

    # Actor: the people the app knows are offered by name; the id is what is sent.
    assert o.locator("datalist option[value='vantaa.sanna']").get_attribute("label") == "Sanna Asiantuntija"
    o.select_option("form.filters select[name=action]", "")
    o.fill("form.filters input[name=actor]", "vantaa.sanna")
    _search(o)
    rows = _rows(o)
    assert rows and all("Sanna Asiantuntija" in r for r in rows)

    # Time: from tomorrow there is nothing; today until midnight this morning, nothing either;
    # today as a whole day, the rows are there.
    today = datetime.now(HELSINKI).date()
    o.fill("form.filters input[name=from]", (today + timedelta(days=1)).isoformat())
    _search(o)
    assert _rows(o) == [] and o.locator(".results .empty").count() == 1
    o.fill("form.filters input[name=from]", "")
    o.fill("form.filters input[name=to]", today.isoformat())
    o.fill("form.filters input[name=to_time]", "00:00")
    _search(o)
    assert _rows(o) == []
    o.fill("form.filters input[name=to_time]", "")
    o.fill("form.filters input[name=from]", today.isoformat())
    _search(o)
    assert _rows(o)

    # The officer's own searches: hidden by default, shown with one click.
    o.fill("form.filters input[name=actor]", "vantaa.ville")
    _search(o)
    assert _rows(o) == []
    o.get_by_label("Piilota omat lokihakuni ja selvitykseni").uncheck()
    o.wait_for_selector(".results table >> text=lokihaku")
    words = json.loads((ROOT / "web" / "i18n" / "fi.json").read_text(encoding="utf-8"))
    own = [w for key, w in words.items() if key.startswith("action.audit.") or key == "action.client.lookup"]
    assert all("Ville Tietosuoja" in r and any(word in r for word in own) for r in _rows(o))
    officer.check("the log search filtered to the officer's own searches")

    # The export downloads the filtered log: only the chosen action.
    o.fill("form.filters input[name=actor]", "")
    o.select_option("form.filters select[name=action]", "disclose.withheld")
    _search(o)
    with o.expect_download() as info:
        o.click("button[data-format=csv]")
    records = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert records and {r["action"] for r in records} == {"disclose.withheld"}
