"""Routing over HTTP: agreements, pools, the roster, the expert's queue, statistics and the
knowledge base (docs/capabilities.md C6a, C6, C1, C8, C9). Parse, authenticate, call one service method."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType, field

from consult.errors import NotFound
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.schemas import Instant
from consult.http.shapes import Answer, Body, Name, OrgId, Query, TopicName, UserId, line, text
from consult.model import instant
from consult.services import gate
from consult.services.agreements import AgreementInput
from consult.services.holidays import finnish_holidays
from consult.services.paging import clamp_limit

_NAME = re.compile(r"^[a-z0-9_.-]{1,64}$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


_TIME = Meta(max_length=instant.MAX_LENGTH, description="ISO 8601 time with zone")
_DATE = Meta(max_length=instant.MAX_LENGTH, description="A date YYYY-MM-DD")
_CLOCK_TIME = Meta(pattern=r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$(?!\n)|^24:00$(?!\n)",
                   description="HH:MM in Helsinki time (an end may be 24:00)")


class AgreementIn(Body):
    reference: Annotated[str, line(200)] | None = None
    parties: Annotated[list[OrgId], Meta(min_length=2, max_length=2, description="the two organisations")] | None = None
    valid_from: Annotated[str, _TIME] | None = None
    #: null ends nothing: it clears the end of an agreement that had one.
    valid_until: Annotated[str, _TIME] | UnsetType | None = UNSET
    topics: Annotated[list[TopicName], Meta(max_length=50)] | None = None
    pools: Annotated[list[Name], Meta(max_length=50)] | None = None


Seconds = Annotated[int, Meta(ge=30, le=30 * 86400)]


class SlaSeconds(Body):
    """Seconds to the first response, per urgency."""

    immediate: Seconds | UnsetType = UNSET
    today: Seconds | UnsetType = UNSET
    normal: Seconds | UnsetType = UNSET


class PoolPut(Body):
    sla_seconds: SlaSeconds | None = None
    reoffers: Annotated[int, Meta(ge=0, le=10)] | UnsetType = UNSET
    #: null clears the backup pool.
    backup_pool: Name | UnsetType | None = UNSET
    max_open_per_expert: Annotated[int, Meta(ge=0, le=100, description="0: no limit")] | UnsetType = UNSET


class PeriodIn(Body):
    user_id: UserId
    starts_at: Annotated[str, _TIME]
    ends_at: Annotated[str, _TIME]


class RuleIn(Body):
    user_id: UserId
    weekday: Annotated[int, Meta(ge=1, le=7, description="1 (Monday) to 7 (Sunday)")]
    start: Annotated[str, _CLOCK_TIME]
    end: Annotated[str, _CLOCK_TIME]
    valid_from: Annotated[str, _DATE] | None = None
    valid_until: Annotated[str, _DATE] | None = None


class EntryIn(Body):
    question: Annotated[str, text(4000)]
    answer: Annotated[str, text(8000)]
    topic: UserId | None = None


def _present(body: msgspec.Struct) -> dict[str, Any]:
    """The fields of ``body`` that the request sent."""
    return {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}


# -- agreements ------------------------------------------------------------------------------


def _agreement_input(body: AgreementIn) -> AgreementInput:
    parties = body.parties
    return AgreementInput(
        reference=body.reference,
        parties=(parties[0], parties[1]) if parties else None,
        valid_from=v.moment(body.valid_from, "valid_from"),
        valid_until=v.moment(body.valid_until or None, "valid_until"),
        clear_until=body.valid_until is None,
        topics=None if body.topics is None else list(dict.fromkeys(body.topics)),
        pools=None if body.pools is None else list(dict.fromkeys(body.pools)),
    )


async def list_agreements(request: web.Request) -> web.Response:
    who = caller(request)
    return _json({"items": await request.app[keys.AGREEMENTS].list_for(who), "next": None})


async def create_agreement(request: web.Request, body: AgreementIn) -> web.Response:
    return _json(await request.app[keys.AGREEMENTS].create(caller(request), _agreement_input(body), context(request)),
                 status=201)


async def get_agreement(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.AGREEMENTS].get(who, v.path_id(request)))


async def update_agreement(request: web.Request, body: AgreementIn) -> web.Response:
    return _json(await request.app[keys.AGREEMENTS].update(caller(request), v.path_id(request),
                                                           _agreement_input(body), context(request)))


# -- pools and the queue ------------------------------------------------------------------------


async def list_pools(request: web.Request, *, query: s.OrgQuery) -> web.Response:
    org = query.org
    routing = request.app[keys.ROUTING]
    # Questions to "any on-duty expert" of an organisation wait in no pool: counted apart.
    return _json({"items": await routing.pools(org), "next": None, "unpooled": await routing.unpooled_waiting(org)})


async def put_pool(request: web.Request, body: PoolPut) -> web.Response:
    who = caller(request)
    org, name = request.match_info["org"], request.match_info["name"]
    if not v._ORG.match(org) or not _NAME.match(name) or gate.holds_identifier(name):
        raise NotFound()
    if who.org != org:
        raise NotFound()
    values = _present(body)
    if body.sla_seconds is not None:
        values["sla_seconds"] = _present(body.sla_seconds)
    else:
        values.pop("sla_seconds")
    return _json(await request.app[keys.ROUTING].set_pool(who, org, name, values, context(request)))


async def my_queue(request: web.Request, *, query: s.LimitQuery) -> web.Response:
    who = caller(request)
    items = await request.app[keys.ROUTING].queue(who, clamp_limit(query.limit), context(request))
    return _json({"items": items, "next": None})


# -- roster ---------------------------------------------------------------------------------


class RosterQuery(Query):
    org: Annotated[OrgId, Meta(description="organisation (default yours)")] | None = None
    since: Annotated[datetime, Meta(description="window start (default yesterday)")] | None = field(
        default=None, name="from")
    until: Annotated[datetime, Meta(description="window end (default 14 days on)")] | None = field(
        default=None, name="to")


async def get_roster(request: web.Request, *, query: RosterQuery) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.ROSTER].view(who, query.org or who.org, query.since, query.until))


async def add_period(request: web.Request, body: PeriodIn) -> web.Response:
    answer = await request.app[keys.ROSTER].add_period(
        caller(request), body.user_id, v.moment(body.starts_at, "starts_at"), v.moment(body.ends_at, "ends_at"),
        context(request))
    return _json(answer, status=201)


async def add_rule(request: web.Request, body: RuleIn) -> web.Response:
    answer = await request.app[keys.ROSTER].add_rule(
        caller(request), body.user_id, body.weekday, body.start, body.end, v.date_of(body.valid_from, "valid_from"),
        v.date_of(body.valid_until, "valid_until"), context(request))
    return _json(answer, status=201)


async def delete_period(request: web.Request) -> web.Response:
    who = caller(request)
    item_id = v.path_id(request)
    await request.app[keys.ROSTER].remove(who, "period", item_id, context(request))
    return _json({"id": item_id, "deleted": True})


async def delete_rule(request: web.Request) -> web.Response:
    who = caller(request)
    item_id = v.path_id(request)
    await request.app[keys.ROSTER].remove(who, "rule", item_id, context(request))
    return _json({"id": item_id, "deleted": True})


class HolidayQuery(Query):
    year: Annotated[int, Meta(ge=instant.EARLIEST.year, le=instant.LATEST.year - 1,
                              description="the year (default this year)")] | None = None


async def holidays(request: web.Request, *, query: HolidayQuery) -> web.Response:
    year = request.app[keys.CLOCK].now().year if query.year is None else query.year
    return _json({"year": year, "items": [{"date": d.isoformat(), "name": n}
                                           for d, n in finnish_holidays(year).items()]})


# -- statistics ---------------------------------------------------------------------------


class Months(Query):
    first: Annotated[s.Month, Meta(description="first month (default: 11 months before to)")] | None = field(
        default=None, name="from")
    last: Annotated[s.Month, Meta(description="last month (default: this month)")] | None = field(
        default=None, name="to")


async def stats(request: web.Request, *, query: Months) -> web.Response:
    return _json(await request.app[keys.STATISTICS].report(caller(request), query.first, query.last))


async def stats_csv(request: web.Request, *, query: Months) -> web.Response:
    text = await request.app[keys.STATISTICS].csv(caller(request), query.first, query.last)
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="konsulta-stats.csv"'})


# -- knowledge base -----------------------------------------------------------------------


async def propose_entry(request: web.Request, body: EntryIn) -> web.Response:
    answer = await request.app[keys.KNOWLEDGE].propose(caller(request), v.path_id(request), body.question,
                                                       body.answer, body.topic, context(request))
    return _json(answer, status=201)


# The longest knowledge search, in the URL (GET) or the body (POST).
KNOWLEDGE_QUERY_MAX = 200


#: The words of a knowledge search, in the URL (GET) or the body (POST).
SearchWords = Annotated[str, text(KNOWLEDGE_QUERY_MAX, description="words to search (Finnish full-text)")]


class KnowledgeQuery(Query):
    q: SearchWords | None = None
    topic: Annotated[TopicName, Meta(description="only this topic")] | None = None
    limit: s.Limit | None = None


async def search_knowledge(request: web.Request, *, query: KnowledgeQuery) -> web.Response:
    items = await request.app[keys.KNOWLEDGE].search(caller(request), query.q, query.topic, clamp_limit(query.limit),
                                                     context(request))
    return _json({"items": items, "next": None})


async def search_knowledge_body(request: web.Request, body: KnowledgeSearch) -> web.Response:
    """The words come in the body, never in the URL (proxy logs, history, Referer)."""
    items = await request.app[keys.KNOWLEDGE].search(caller(request), body.q, body.topic, clamp_limit(body.limit),
                                                     context(request))
    return _json({"items": items, "next": None})


async def knowledge_drafts(request: web.Request, *, query: s.LimitQuery) -> web.Response:
    who = caller(request)
    items = await request.app[keys.KNOWLEDGE].drafts(who, clamp_limit(query.limit), context(request))
    return _json({"items": items, "next": None})


async def get_entry(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.KNOWLEDGE].get(who, v.path_id(request), context(request)))


async def approve_entry(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.KNOWLEDGE].approve(who, v.path_id(request), context(request)))


async def withdraw_entry(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.KNOWLEDGE].withdraw(who, v.path_id(request), context(request)))


# -- answers and routes --------------------------------------------------------------------------

Names = list[str]


class AgreementVersion(Answer):
    version: int
    at: Instant
    by: str | None
    agreement: dict[str, Any]


class Agreement(Answer):
    id: str
    reference: str
    parties: Names
    valid_from: Instant
    valid_until: Instant
    in_force: bool
    topics: Names
    pools: Names
    version: int
    updated_at: Instant
    updated_by: str | None
    versions: list[AgreementVersion] | UnsetType = UNSET


class AgreementPage(Answer):
    items: list[Agreement]
    next: str | None


class Pool(Answer):
    org: str
    name: str
    configured: bool
    sla_seconds: dict[str, int]
    reoffers: int
    backup_pool: str | None
    max_open_per_expert: int
    experts: int
    on_duty: int
    on_duty_online: Annotated[int, Meta(description="of those on duty, how many are connected now")]
    next_on_duty: Instant
    waiting: int
    expected_wait_seconds: dict[str, int | None]


class Unpooled(Answer):
    org: str
    waiting: int


class Pools(Answer):
    items: list[Pool]
    next: str | None
    unpooled: Annotated[list[Unpooled], Meta(
        description="open consultations per organisation sent to any on-duty expert (no pool)")]


class QueueItem(Answer):
    id: str
    topic: str
    urgency: str
    pool: str | None
    escalated_pool: str | None
    origin_org: str
    created_at: Instant
    waiting_seconds: int
    stage: str | None
    offers: int | None
    next_step_at: Instant
    sla_due_at: Instant


class Queue(Answer):
    items: list[QueueItem]
    next: str | None


class Period(Answer):
    id: str
    user_id: str
    starts_at: Instant
    ends_at: Instant
    starts_local: str
    ends_local: str


class WeeklyRule(Answer):
    id: str
    user_id: str
    weekday: int
    start: str
    end: str
    valid_from: str | None
    valid_until: str | None


class Interval(Answer, rename={"start": "from", "end": "to", "start_local": "from_local", "end_local": "to_local"}):
    start: Instant
    end: Instant
    start_local: str
    end_local: str


class RosterExpert(Answer):
    id: str
    name: str | None
    pools: Names
    on_duty: bool
    periods: list[Period]
    rules: list[WeeklyRule]
    on_duty_intervals: list[Interval]


class Holiday(Answer):
    date: str
    name: str


class RosterView(Answer, rename={"start": "from", "end": "to"}):
    org: str
    start: Instant
    end: Instant
    time_zone: str
    holidays: list[Holiday]
    experts: list[RosterExpert]


class Deleted(Answer):
    id: str
    deleted: bool


class Holidays(Answer):
    year: int
    items: list[Holiday]


class Stats(Answer, rename={"first": "from", "last": "to"}):
    first: str
    last: str
    org: str
    time_zone: str
    quantiles: str
    rows: Annotated[list[dict[str, Any]], Meta(description="one per month and pair of organisations")]


class Entry(Answer):
    id: str
    org: str
    topic: str | None
    question: str
    answer: str
    status: str
    created_at: Instant
    approved_at: Instant
    source_consultation_id: str | UnsetType | None = UNSET
    created_by: str | UnsetType | None = UNSET
    approved_by: str | UnsetType | None = UNSET


class EntryPage(Answer):
    items: list[Entry]
    next: str | None


class KnowledgeSearch(Body):
    """A search of the approved entries, in the body so that the words typed are in no URL."""

    q: SearchWords
    topic: TopicName | None = None
    limit: s.Limit | None = None


_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)

ROUTING_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/agreements", list_agreements, "Agreements your organisation is a party to",
          response=AgreementPage, errors=(401,)),
    Route("POST", "/api/v1/agreements", create_agreement, action="agreement.manage",
          summary="Record an agreement between two organisations",
          who="admin of a party organisation", body=AgreementIn, response=Agreement, status=201,
          errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/agreements/{id}", get_agreement, "One agreement with every version",
          who="user of a party organisation", response=Agreement, errors=(401, 404)),
    Route("PUT", "/api/v1/agreements/{id}", update_agreement, action="agreement.manage",
          summary="Change an agreement (validity, topics, pools); a termination sets valid_until",
          who="admin of a party organisation", body=AgreementIn, response=Agreement, errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/pools", list_pools, "Pools with who is on duty now, the next on-duty time and expected wait",
          response=Pools, errors=(400, 401), query=s.OrgQuery),
    Route("PUT", "/api/v1/pools/{org}/{name}", put_pool, action="pool.manage",
          summary="Set a pool's SLA, re-offers, backup pool and load limit",
          who="admin of that org", body=PoolPut, response=Pool, errors=(400, 401, 403, 404, 413, 415, 422)),
    Route("GET", "/api/v1/queue", my_queue, action="consultation.claim",
          summary="Open consultations offered to you: most urgent first, then oldest",
          who="expert, intake social worker", response=Queue, errors=(400, 401, 403), query=s.LimitQuery),
    Route("GET", "/api/v1/roster", get_roster, "The roster: periods, weekly rules and on-duty intervals",
          who="user of that org", response=RosterView, errors=(400, 401, 404, 422),
          query=RosterQuery),
    Route("POST", "/api/v1/roster/periods", add_period, action="roster.manage",
          summary="Add an on-duty period for a named expert",
          who="admin of the expert's org", body=PeriodIn, response=Period, status=201, errors=_WRITE_ERRORS),
    Route("DELETE", "/api/v1/roster/periods/{id}", delete_period, "Remove an on-duty period",
          who="admin of the expert's org", response=Deleted, errors=(401, 403, 404)),
    Route("POST", "/api/v1/roster/rules", add_rule, action="roster.manage",
          summary="Add a weekly on-duty rule (Helsinki time; off on holidays)",
          who="admin of the expert's org", body=RuleIn, response=WeeklyRule, status=201, errors=_WRITE_ERRORS),
    Route("DELETE", "/api/v1/roster/rules/{id}", delete_rule, "Remove a weekly rule",
          who="admin of the expert's org", response=Deleted, errors=(401, 403, 404)),
    Route("GET", "/api/v1/holidays", holidays, "Finnish public holidays of a year (days off for the roster)",
          response=Holidays, errors=(400, 401, 422),
          query=HolidayQuery),
    Route("GET", "/api/v1/stats", stats, action="stats.read",
          summary="Statistics per month and pair of organisations (no personal data)",
          who="admin, privacy officer", response=Stats, errors=(400, 401, 403, 422), query=Months),
    Route("GET", "/api/v1/stats.csv", stats_csv, action="stats.read",
          summary="The statistics as CSV (month, orgs, measure, key, value)",
          who="admin, privacy officer", response=str, errors=(400, 401, 403, 422), query=Months,
          content_type="text/csv"),
    Route("POST", "/api/v1/consultations/{id}/knowledge", propose_entry, action="knowledge.propose",
          edge_checks_role=False,
          summary="Turn a closed consultation into a knowledge entry; refused (422, with kinds and positions) "
          "if it holds personal data", who="expert who took part", body=EntryIn, response=Entry, status=201,
          errors=_WRITE_ERRORS),
    Route("GET", "/api/v1/knowledge", search_knowledge, "Search the approved entries (Finnish full-text)",
          who="staff", response=EntryPage, errors=(400, 401, 403, 422),
          query=KnowledgeQuery),
    Route("POST", "/api/v1/knowledge/search", search_knowledge_body,
          "Search the approved entries (Finnish full-text), the words in the body (never in a URL)",
          who="staff", body=KnowledgeSearch, response=EntryPage, errors=(400, 401, 403, 413, 415, 422)),
    Route("GET", "/api/v1/knowledge/drafts", knowledge_drafts, action="knowledge.drafts",
          summary="Entries of your organisation awaiting approval",
          who="expert, admin", response=EntryPage, errors=(400, 401, 403), query=s.LimitQuery),
    Route("GET", "/api/v1/knowledge/{id}", get_entry, "One entry", response=Entry, errors=(401, 404)),
    Route("POST", "/api/v1/knowledge/{id}/approve", approve_entry, "Approve an entry (another expert than its author)",
          who="expert of the authoring org", response=Entry, errors=(401, 403, 404, 409, 422)),
    Route("POST", "/api/v1/knowledge/{id}/withdraw", withdraw_entry, "Withdraw an entry from search",
          who="expert or admin of the authoring org", response=Entry, errors=(401, 403, 404, 409)),
)
