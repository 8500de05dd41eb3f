"""Routing over HTTP: agreements, pools, the roster, the expert's queue, statistics and the
knowledge base (SPEC C6a, C6, C1, C8, C9). Parse, authenticate, call one service method."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from consult.errors import NotFound, Unprocessable
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.api import Route
from consult.http.principal import authenticate, context
from consult.model.vocabulary import URGENCIES
from consult.services import gate
from consult.services.agreements import AgreementInput
from consult.services.holidays import finnish_holidays
from consult.services.paging import clamp_limit
from consult.services.statistics import parse_month

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_NAME = re.compile(r"^[a-z0-9_.-]{1,64}$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _instant(data: dict[str, Any], field: str, *, required: bool = True) -> datetime | None:
    return v.instant(data, field, required=required)


# -- agreements ------------------------------------------------------------------------------


def _agreement_input(request: web.Request, data: dict[str, Any]) -> AgreementInput:
    parties = data.get("parties")
    if parties is not None and (not isinstance(parties, list) or len(parties) != 2
                                or not all(isinstance(p, str) and v._ORG.match(p) for p in parties)):
        raise Unprocessable("parties: two organisation ids", code="invalid_field")
    topics = v.slug_list(data, "topics")
    known = set(request.app[keys.SETTINGS].topics)
    if topics and not set(topics) <= known:
        raise Unprocessable("topics: unknown topic", code="invalid_field")
    return AgreementInput(
        reference=v.text(data, "reference", max_len=200, required=False, multiline=False),
        parties=(parties[0], parties[1]) if parties else None,
        valid_from=_instant(data, "valid_from", required=False),
        valid_until=_instant(data, "valid_until", required=False),
        clear_until="valid_until" in data and data["valid_until"] is None,
        topics=topics, pools=v.slug_list(data, "pools"),
    )


async def list_agreements(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json({"items": await request.app[keys.AGREEMENTS].list_for(who), "next": None})


async def create_agreement(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = _agreement_input(request, await v.json_body(request))
    return _json(await request.app[keys.AGREEMENTS].create(who, data, context(request)), status=201)


async def get_agreement(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.AGREEMENTS].get(who, v.path_id(request)))


async def update_agreement(request: web.Request) -> web.Response:
    who = await authenticate(request)
    agreement_id = v.path_id(request)
    data = _agreement_input(request, await v.json_body(request))
    return _json(await request.app[keys.AGREEMENTS].update(who, agreement_id, data, context(request)))


# -- pools and the queue ------------------------------------------------------------------------


async def list_pools(request: web.Request) -> web.Response:
    await authenticate(request)
    org = request.query.get("org")
    if org is not None and not v._ORG.match(org):
        return _json({"items": [], "next": None})
    routing = request.app[keys.ROUTING]
    # Questions to "any on-duty expert" of an organisation wait in no pool: counted apart.
    return _json({"items": await routing.pools(org), "next": None, "unpooled": await routing.unpooled_waiting(org)})


async def put_pool(request: web.Request) -> web.Response:
    who = await authenticate(request)
    org, name = request.match_info["org"], request.match_info["name"]
    if not v._ORG.match(org) or not _NAME.match(name) or gate.holds_identifier(name):
        raise NotFound()
    if who.org != org:
        raise NotFound()
    data = await v.json_body(request)
    values: dict[str, Any] = {}
    sla = data.get("sla_seconds")
    if sla is not None:
        if (not isinstance(sla, dict) or not set(sla) <= set(URGENCIES)
                or not all(isinstance(x, int) and not isinstance(x, bool) and 30 <= x <= 30 * 86400
                           for x in sla.values())):
            raise Unprocessable("sla_seconds: {urgency: 30..2592000 seconds}", code="invalid_field")
        values["sla_seconds"] = sla
    for field, low, high in (("reoffers", 0, 10), ("max_open_per_expert", 0, 100)):
        if field in data:
            value = data[field]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise Unprocessable(f"{field}: an integer {low}..{high}", code="invalid_field")
            values[field] = value
    if "backup_pool" in data:
        backup = data["backup_pool"]
        if backup is not None and (not isinstance(backup, str) or not _NAME.match(backup)):
            raise Unprocessable("backup_pool: a pool name or null", code="invalid_field")
        values["backup_pool"] = backup
    return _json(await request.app[keys.ROUTING].set_pool(who, org, name, values, context(request)))


async def my_queue(request: web.Request) -> web.Response:
    who = await authenticate(request)
    items = await request.app[keys.ROUTING].queue(who, clamp_limit(v.query_int(request, "limit")), context(request))
    return _json({"items": items, "next": None})


# -- roster ---------------------------------------------------------------------------------


async def get_roster(request: web.Request) -> web.Response:
    who = await authenticate(request)
    org = request.query.get("org") or who.org
    if not v._ORG.match(org):
        raise NotFound()
    body = await request.app[keys.ROSTER].view(who, org, v.query_instant(request, "from"),
                                               v.query_instant(request, "to"))
    return _json(body)


async def add_period(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = await v.json_body(request)
    user_id = v.identifier(data, "user_id")
    body = await request.app[keys.ROSTER].add_period(
        who, user_id, _instant(data, "starts_at"), _instant(data, "ends_at"), context(request))  # type: ignore[arg-type]
    return _json(body, status=201)


async def add_rule(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = await v.json_body(request)
    user_id = v.identifier(data, "user_id")
    weekday = data.get("weekday")
    if not isinstance(weekday, int) or isinstance(weekday, bool):
        raise Unprocessable("weekday: 1 (Monday) to 7 (Sunday)", code="invalid_field")
    start, end = data.get("start"), data.get("end")
    if not (isinstance(start, str) and _CLOCK.match(start) and isinstance(end, str) and _CLOCK.match(end)):
        raise Unprocessable("start, end: HH:MM in Helsinki time (end may be 24:00)", code="invalid_field")
    body = await request.app[keys.ROSTER].add_rule(who, user_id, weekday, start, end, v.day(data, "valid_from"),  # type: ignore[arg-type]
                                                   v.day(data, "valid_until"), context(request))
    return _json(body, status=201)


async def delete_period(request: web.Request) -> web.Response:
    who = await authenticate(request)
    item_id = v.path_id(request)
    await request.app[keys.ROSTER].remove(who, "period", item_id, context(request))
    return _json({"id": item_id, "deleted": True})


async def delete_rule(request: web.Request) -> web.Response:
    who = await authenticate(request)
    item_id = v.path_id(request)
    await request.app[keys.ROSTER].remove(who, "rule", item_id, context(request))
    return _json({"id": item_id, "deleted": True})


async def holidays(request: web.Request) -> web.Response:
    await authenticate(request)
    year = v.query_int(request, "year")
    year = request.app[keys.CLOCK].now().year if year is None else year
    if not 1900 <= year <= 2200:
        raise Unprocessable("year: 1900..2200", code="invalid_field")
    return _json({"year": year, "items": [{"date": d.isoformat(), "name": n}
                                           for d, n in finnish_holidays(year).items()]})


# -- statistics ---------------------------------------------------------------------------


async def stats(request: web.Request) -> web.Response:
    who = await authenticate(request)
    body = await request.app[keys.STATISTICS].report(
        who, parse_month(request.query.get("from"), "from"), parse_month(request.query.get("to"), "to"))
    return _json(body)


async def stats_csv(request: web.Request) -> web.Response:
    who = await authenticate(request)
    text = await request.app[keys.STATISTICS].csv(
        who, parse_month(request.query.get("from"), "from"), parse_month(request.query.get("to"), "to"))
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="konsulta-stats.csv"'})


# -- knowledge base -----------------------------------------------------------------------


async def propose_entry(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    data = await v.json_body(request)
    body = await request.app[keys.KNOWLEDGE].propose(
        who, consultation_id, v.text(data, "question", max_len=4000), v.text(data, "answer", max_len=8000),  # type: ignore[arg-type]
        v.identifier(data, "topic", required=False), context(request))
    return _json(body, status=201)


async def search_knowledge(request: web.Request) -> web.Response:
    who = await authenticate(request)
    query = request.query.get("q")
    if query is not None and len(query) > 200:
        raise Unprocessable("q: at most 200 characters", code="invalid_field")
    topic = request.query.get("topic") or None
    items = await request.app[keys.KNOWLEDGE].search(who, query, topic, clamp_limit(v.query_int(request, "limit")),
                                                     context(request))
    return _json({"items": items, "next": None})


async def knowledge_drafts(request: web.Request) -> web.Response:
    who = await authenticate(request)
    items = await request.app[keys.KNOWLEDGE].drafts(who, clamp_limit(v.query_int(request, "limit")), context(request))
    return _json({"items": items, "next": None})


async def get_entry(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.KNOWLEDGE].get(who, v.path_id(request), context(request)))


async def approve_entry(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.KNOWLEDGE].approve(who, v.path_id(request), context(request)))


async def withdraw_entry(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.KNOWLEDGE].withdraw(who, v.path_id(request), context(request)))


# -- schemas and routes --------------------------------------------------------------------------

_STR_LIST: s.S = {"type": "array", "items": s.STR}
AGREEMENT: s.S = {
    "type": "object",
    "required": ["id", "reference", "parties", "valid_from", "in_force", "topics", "pools", "version"],
    "properties": {"id": s.STR, "reference": s.STR, "parties": _STR_LIST, "valid_from": s.TS, "valid_until": s.TS,
                   "in_force": {"type": "boolean"}, "topics": _STR_LIST, "pools": _STR_LIST,
                   "version": {"type": "integer"}, "updated_at": s.TS, "updated_by": s.STR,
                   "versions": {"type": "array", "items": {"type": "object"}}},
}
AGREEMENT_IN: s.S = {
    "type": "object",
    "properties": {"reference": {"type": "string", "maxLength": 200}, "parties": _STR_LIST,
                   "valid_from": {"type": "string", "format": "date-time"},
                   "valid_until": {"type": ["string", "null"], "format": "date-time"},
                   "topics": _STR_LIST, "pools": _STR_LIST},
}
_SLA: s.S = {"type": "object", "properties": {u: {"type": "integer"} for u in URGENCIES}}
_NINT: s.S = {"type": ["integer", "null"]}
POOL: s.S = {
    "type": "object",
    "required": ["org", "name", "sla_seconds", "on_duty", "experts"],
    "properties": {"org": s.STR, "name": s.STR, "configured": {"type": "boolean"}, "sla_seconds": _SLA,
                   "reoffers": {"type": "integer"}, "backup_pool": s.NSTR, "max_open_per_expert": {"type": "integer"},
                   "experts": {"type": "integer"}, "on_duty": {"type": "integer"},
                   "on_duty_online": {"type": "integer", "description": "of those on duty, how many are connected now"},
                   "next_on_duty": s.TS,
                   "waiting": {"type": "integer"},
                   "expected_wait_seconds": {"type": "object", "properties": {u: _NINT for u in URGENCIES}}},
}
POOLS: s.S = {**s.page(POOL), "properties": {**s.page(POOL)["properties"], "unpooled": {
    "type": "array", "description": "open consultations per organisation sent to any on-duty expert (no pool)",
    "items": {"type": "object", "required": ["org", "waiting"],
              "properties": {"org": s.STR, "waiting": {"type": "integer"}}}}}}
POOL_PUT: s.S = {"type": "object", "properties": {
    "sla_seconds": _SLA, "reoffers": {"type": "integer", "minimum": 0, "maximum": 10},
    "backup_pool": s.NSTR, "max_open_per_expert": {"type": "integer", "minimum": 0, "maximum": 100,
                            "description": "0: no limit"}}}
QUEUE_ITEM: s.S = {"type": "object", "properties": {
    "id": s.STR, "topic": s.STR, "urgency": s.STR, "pool": s.NSTR, "escalated_pool": s.NSTR, "origin_org": s.STR,
    "created_at": s.TS, "waiting_seconds": {"type": "integer"}, "stage": s.NSTR, "offers": _NINT,
    "next_step_at": s.TS, "sla_due_at": s.TS}}
PERIOD: s.S = {"type": "object", "properties": {"id": s.STR, "user_id": s.STR, "starts_at": s.TS, "ends_at": s.TS,
                                                "starts_local": s.STR, "ends_local": s.STR}}
PERIOD_IN: s.S = {"type": "object", "required": ["user_id", "starts_at", "ends_at"], "properties": {
    "user_id": s.STR, "starts_at": {"type": "string", "format": "date-time"},
    "ends_at": {"type": "string", "format": "date-time"}}}
RULE: s.S = {"type": "object", "properties": {"id": s.STR, "user_id": s.STR, "weekday": {"type": "integer"},
                                              "start": s.STR, "end": s.STR,
                                              "valid_from": s.NSTR, "valid_until": s.NSTR}}
RULE_IN: s.S = {"type": "object", "required": ["user_id", "weekday", "start", "end"], "properties": {
    "user_id": s.STR, "weekday": {"type": "integer", "minimum": 1, "maximum": 7}, "start": s.STR, "end": s.STR,
    "valid_from": {"type": "string", "format": "date"}, "valid_until": {"type": "string", "format": "date"}}}
DELETED: s.S = {"type": "object", "properties": {"id": s.STR, "deleted": {"type": "boolean"}}}
ROSTER: s.S = {"type": "object", "properties": {
    "org": s.STR, "from": s.TS, "to": s.TS, "time_zone": s.STR,
    "holidays": {"type": "array", "items": {"type": "object"}},
    "experts": {"type": "array", "items": {"type": "object", "properties": {
        "id": s.STR, "name": s.STR, "pools": _STR_LIST, "on_duty": {"type": "boolean"},
        "periods": {"type": "array", "items": PERIOD}, "rules": {"type": "array", "items": RULE},
        "on_duty_intervals": {"type": "array", "items": {"type": "object"}}}}}}}
HOLIDAYS: s.S = {"type": "object", "properties": {"year": {"type": "integer"}, "items": {
    "type": "array", "items": {"type": "object", "properties": {"date": s.STR, "name": s.STR}}}}}
STATS: s.S = {"type": "object", "required": ["from", "to", "rows"], "properties": {
    "from": s.STR, "to": s.STR, "org": s.STR, "time_zone": s.STR, "quantiles": s.STR,
    "rows": {"type": "array", "items": {"type": "object"}}}}
ENTRY: s.S = {"type": "object", "required": ["id", "topic", "question", "answer", "status"], "properties": {
    "id": s.STR, "org": s.STR, "topic": s.STR, "question": s.STR, "answer": s.STR, "status": s.STR,
    "created_at": s.TS, "approved_at": s.TS, "source_consultation_id": s.NSTR, "created_by": s.NSTR,
    "approved_by": s.NSTR}}
ENTRY_IN: s.S = {"type": "object", "required": ["question", "answer"], "properties": {
    "question": {"type": "string", "minLength": 1, "maxLength": 4000},
    "answer": {"type": "string", "minLength": 1, "maxLength": 8000}, "topic": s.STR}}
_MONTHS = (("from", s.MONTH, "first month YYYY-MM (default: 11 months before to)"),
           ("to", s.MONTH, "last month YYYY-MM (default: this month)"))
_LIMIT = (s.LIMIT_QUERY,)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)

ROUTING_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/agreements", list_agreements, "Agreements your organisation is a party to",
          response=s.page(AGREEMENT), errors=(401,)),
    Route("POST", "/api/v1/agreements", create_agreement, action="agreement.manage",
          summary="Record an agreement between two organisations",
          who="admin of a party organisation", body=AGREEMENT_IN, response=AGREEMENT, status=201,
          errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/agreements/{id}", get_agreement, "One agreement with every version",
          who="user of a party organisation", response=AGREEMENT, errors=(401, 404)),
    Route("PUT", "/api/v1/agreements/{id}", update_agreement, action="agreement.manage",
          summary="Change an agreement (validity, topics, pools); a termination sets valid_until",
          who="admin of a party organisation", body=AGREEMENT_IN, response=AGREEMENT, errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/pools", list_pools, "Pools with who is on duty now, the next on-duty time and expected wait",
          response=POOLS, errors=(400, 401), query=(("org", {"type": "string"}, "only this organisation"),)),
    Route("PUT", "/api/v1/pools/{org}/{name}", put_pool, action="pool.manage",
          summary="Set a pool's SLA, re-offers, backup pool and load limit",
          who="admin of that org", body=POOL_PUT, response=POOL, errors=(400, 401, 403, 404, 413, 415, 422)),
    Route("GET", "/api/v1/queue", my_queue, action="consultation.claim",
          summary="Open consultations offered to you: most urgent first, then oldest",
          who="expert, intake social worker", response=s.page(QUEUE_ITEM), errors=(400, 401, 403), query=_LIMIT),
    Route("GET", "/api/v1/roster", get_roster, "The roster: periods, weekly rules and on-duty intervals",
          who="user of that org", response=ROSTER, errors=(400, 401, 404, 422),
          query=(("org", {"type": "string"}, "organisation (default yours)"),
                 ("from", s.TIME, "window start (default yesterday)"),
                 ("to", s.TIME, "window end (default 14 days on)"))),
    Route("POST", "/api/v1/roster/periods", add_period, action="roster.manage",
          summary="Add an on-duty period for a named expert",
          who="admin of the expert's org", body=PERIOD_IN, response=PERIOD, status=201, errors=_WRITE_ERRORS),
    Route("DELETE", "/api/v1/roster/periods/{id}", delete_period, "Remove an on-duty period",
          who="admin of the expert's org", response=DELETED, errors=(401, 403, 404)),
    Route("POST", "/api/v1/roster/rules", add_rule, action="roster.manage",
          summary="Add a weekly on-duty rule (Helsinki time; off on holidays)",
          who="admin of the expert's org", body=RULE_IN, response=RULE, status=201, errors=_WRITE_ERRORS),
    Route("DELETE", "/api/v1/roster/rules/{id}", delete_rule, "Remove a weekly rule",
          who="admin of the expert's org", response=DELETED, errors=(401, 403, 404)),
    Route("GET", "/api/v1/holidays", holidays, "Finnish public holidays of a year (days off for the roster)",
          response=HOLIDAYS, errors=(400, 401, 422),
          query=(("year", {"type": "integer", "minimum": 1900, "maximum": 2200}, "the year (default this year)"),)),
    Route("GET", "/api/v1/stats", stats, action="stats.read",
          summary="Statistics per month and pair of organisations (no personal data)",
          who="admin, privacy officer", response=STATS, errors=(401, 403, 422), query=_MONTHS),
    Route("GET", "/api/v1/stats.csv", stats_csv, action="stats.read",
          summary="The statistics as CSV (month, orgs, measure, key, value)",
          who="admin, privacy officer", response={"type": "string"}, errors=(401, 403, 422), query=_MONTHS,
          content_type="text/csv"),
    Route("POST", "/api/v1/consultations/{id}/knowledge", propose_entry, action="knowledge.propose",
          edge_checks_role=False,
          summary="Turn a closed consultation into a knowledge entry; refused (422, with kinds and positions) "
          "if it holds personal data", who="expert who took part", body=ENTRY_IN, response=ENTRY, status=201,
          errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/knowledge", search_knowledge, "Search the approved entries (Finnish full-text)",
          who="staff", response=s.page(ENTRY), errors=(400, 401, 403, 422),
          query=(("q", {"type": "string", "maxLength": 200}, "words to search"),
                 ("topic", {"type": "string"}, "only this topic"), *_LIMIT)),
    Route("GET", "/api/v1/knowledge/drafts", knowledge_drafts, action="knowledge.drafts",
          summary="Entries of your organisation awaiting approval",
          who="expert, admin", response=s.page(ENTRY), errors=(400, 401, 403), query=_LIMIT),
    Route("GET", "/api/v1/knowledge/{id}", get_entry, "One entry", response=ENTRY, errors=(401, 404)),
    Route("POST", "/api/v1/knowledge/{id}/approve", approve_entry, "Approve an entry (another expert than its author)",
          who="expert of the authoring org", response=ENTRY, errors=(401, 403, 404, 409, 422)),
    Route("POST", "/api/v1/knowledge/{id}/withdraw", withdraw_entry, "Withdraw an entry from search",
          who="expert or admin of the authoring org", response=ENTRY, errors=(401, 403, 404, 409)),
)
