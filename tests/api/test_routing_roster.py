"""The roster: Finnish holidays, on-duty periods and weekly rules in Helsinki time, applied to the
directory's on_duty by the routing step, with the expert's own toggle holding until the roster's
next change. Time is a FixedClock advanced by the test."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from consult.services import duty
from consult.services.holidays import easter, finnish_holidays
from tests.api.routingutil import MONDAY_9, routed_api
from tests.api.wsutil import connect, next_event


@pytest.fixture
async def rapi(aiohttp_client, settings, monkeypatch):
    return await routed_api(aiohttp_client, settings, monkeypatch)


def test_easter_and_holidays_match_the_published_calendar():
    """Known answers from the Finnish almanac (Helsingin yliopiston almanakkatoimisto)."""
    assert [easter(y) for y in (2024, 2025, 2026, 2027, 2038)] == [
        date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5), date(2027, 3, 28), date(2038, 4, 25)]
    days = finnish_holidays(2026)
    assert {d.isoformat() for d in days} == {
        "2026-01-01", "2026-01-06", "2026-04-03", "2026-04-05", "2026-04-06", "2026-05-01", "2026-05-14",
        "2026-05-24", "2026-06-19", "2026-06-20", "2026-10-31", "2026-12-06", "2026-12-24", "2026-12-25",
        "2026-12-26"}
    assert days[date(2026, 5, 14)] == "helatorstai"
    assert date(2025, 6, 20) in finnish_holidays(2025) and date(2025, 11, 1) in finnish_holidays(2025)


def test_weekly_rule_is_off_on_holidays_and_follows_daylight_saving():
    rule = duty.WeeklyRule(5, time(8), time(16))  # Fridays 08-16 Helsinki
    # Good Friday 3 April 2026: no duty; the next Friday after the switch to summer time is 05-13 UTC.
    assert rule.on(date(2026, 4, 3)) is None
    assert rule.on(date(2026, 4, 10)) == (datetime(2026, 4, 10, 5, tzinfo=UTC), datetime(2026, 4, 10, 13, tzinfo=UTC))
    assert rule.on(date(2026, 3, 6)) == (datetime(2026, 3, 6, 6, tzinfo=UTC), datetime(2026, 3, 6, 14, tzinfo=UTC))
    # A period covering the holiday puts the expert on duty all the same.
    period = (datetime(2026, 4, 3, 7, tzinfo=UTC), datetime(2026, 4, 3, 9, tzinfo=UTC))
    assert duty.on_duty_at([period], [rule], datetime(2026, 4, 3, 8, tzinfo=UTC))
    assert not duty.on_duty_at([], [rule], datetime(2026, 4, 3, 8, tzinfo=UTC))
    assert duty.next_start([], [rule], datetime(2026, 4, 2, 12, tzinfo=UTC)) == datetime(2026, 4, 10, 5, tzinfo=UTC)


async def _experts(rapi):
    listing = await rapi.call("GET", "/api/v1/experts?org=vantaa", "kela.aino", expect=200)
    return {e["id"]: e["on_duty"] for e in listing["items"]}


async def test_period_puts_expert_on_and_off_duty_over_time(rapi):
    await rapi.call("PUT", "/api/v1/experts/vantaa.mikko", "vantaa.admin", json={"on_duty": False}, expect=200)
    start = MONDAY_9 + timedelta(hours=1)
    period = await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.mikko", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()})
    assert period["starts_local"] == "2026-03-02T10:00+02:00"
    assert (await _experts(rapi))["vantaa.mikko"] is False
    watcher = await connect(rapi, "kela.aino")
    await rapi.advance(hours=1)
    assert (await _experts(rapi))["vantaa.mikko"] is True
    updated = await next_event(watcher, "expert.updated")
    assert updated["expert"]["id"] == "vantaa.mikko" and updated["expert"]["on_duty"] is True
    await rapi.advance(hours=2)
    assert (await _experts(rapi))["vantaa.mikko"] is False
    await watcher.close()


async def test_own_toggle_holds_until_the_rosters_next_change(rapi):
    await rapi.call("POST", "/api/v1/roster/rules", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.sanna", "weekday": 1, "start": "08:00", "end": "16:00"})
    assert (await _experts(rapi))["vantaa.sanna"] is True  # a roster change applies at once
    await rapi.call("PUT", "/api/v1/experts/vantaa.sanna", "vantaa.sanna", json={"on_duty": False}, expect=200)
    await rapi.advance(hours=1)
    assert (await _experts(rapi))["vantaa.sanna"] is False  # the toggle holds within the shift
    await rapi.advance(hours=6, minutes=1)  # 16:01: the shift ended
    assert (await _experts(rapi))["vantaa.sanna"] is False
    await rapi.advance(hours=16)  # Tuesday 08:01: no rule on Tuesdays
    assert (await _experts(rapi))["vantaa.sanna"] is False
    await rapi.advance(days=6)  # next Monday 08:01: the rule starts again
    assert (await _experts(rapi))["vantaa.sanna"] is True


async def test_holiday_is_off_unless_a_period_covers_it(aiohttp_client, settings, monkeypatch):
    # Thursday 2 April 2026 15:00 Helsinki; Good Friday follows.
    rapi = await routed_api(aiohttp_client, settings, monkeypatch, at=datetime(2026, 4, 2, 12, tzinfo=UTC))
    for user in ("vantaa.sanna", "vantaa.mikko"):
        for weekday in range(1, 6):
            await rapi.call("POST", "/api/v1/roster/rules", "vantaa.admin", expect=201, json={
                "user_id": user, "weekday": weekday, "start": "08:00", "end": "16:00"})
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=201, json={
        "user_id": "vantaa.mikko", "starts_at": "2026-04-03T09:00:00+03:00", "ends_at": "2026-04-03T12:00:00+03:00"})
    assert (await _experts(rapi))["vantaa.sanna"] is True
    await rapi.advance(hours=18)  # Good Friday 09:00 (summer time from 29 March)
    on = await _experts(rapi)
    assert on["vantaa.sanna"] is False and on["vantaa.mikko"] is True
    roster = await rapi.call("GET", "/api/v1/roster?org=vantaa", "vantaa.admin", expect=200)
    assert {"date": "2026-04-03", "name": "pitkäperjantai"} in roster["holidays"]
    sanna = next(e for e in roster["experts"] if e["id"] == "vantaa.sanna")
    # Next duty after Easter: Tuesday 7 April 08:00 (Easter Monday is a holiday too).
    later = [i["from_local"] for i in sanna["on_duty_intervals"] if i["from_local"] > "2026-04-03"]
    assert later[0] == "2026-04-07T08:00+03:00"


async def test_roster_is_kept_by_admins_of_the_experts_org(rapi):
    body = {"user_id": "vantaa.sanna", "starts_at": "2026-03-03T08:00:00Z", "ends_at": "2026-03-03T10:00:00Z"}
    await rapi.call("POST", "/api/v1/roster/periods", "kela.admin", json=body, expect=404)
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.sanna", json=body, expect=403)
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=422,
                    json={**body, "ends_at": "2026-03-03T07:00:00Z"})
    await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", expect=422,
                    json={**body, "starts_at": "2026-03-03T08:00:00"})
    await rapi.call("POST", "/api/v1/roster/rules", "vantaa.admin", expect=422,
                    json={"user_id": "vantaa.sanna", "weekday": 8, "start": "08:00", "end": "16:00"})
    await rapi.call("POST", "/api/v1/roster/rules", "vantaa.admin", expect=422,
                    json={"user_id": "vantaa.sanna", "weekday": 1, "start": "16:00", "end": "08:00"})
    period = await rapi.call("POST", "/api/v1/roster/periods", "vantaa.admin", json=body, expect=201)
    await rapi.call("GET", "/api/v1/roster?org=vantaa", "kela.admin", expect=404)
    await rapi.call("DELETE", f"/api/v1/roster/periods/{period['id']}", "kela.admin", expect=404)
    await rapi.call("DELETE", f"/api/v1/roster/periods/{period['id']}", "vantaa.admin", expect=200)
    await rapi.call("DELETE", f"/api/v1/roster/periods/{period['id']}", "vantaa.admin", expect=404)
    holidays = await rapi.call("GET", "/api/v1/holidays?year=2027", "kela.aino", expect=200)
    assert {"date": "2027-03-26", "name": "pitkäperjantai"} in holidays["items"]
