"""Retention and key administration over HTTP: legal hold, and key status for admins."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta, field

from consult.http import keys
from consult.http import schemas as s
from consult.http import shapes as sh
from consult.http import validation as v
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.schemas import Instant
from consult.http.shapes import Answer, Body, Query, UserId
from consult.model import identifiers


class LegalHoldBody(Body):
    hold: bool


class LegalHold(Answer):
    consultation_id: str
    legal_hold: bool
    shredded_at: Instant


class EndSessionsBody(Body):
    user_id: UserId


class SessionsEnded(Answer):
    user_id: str
    org: str
    ended_at: Instant


class KeyVersion(Answer):
    version: int
    status: str
    data_keys: int


class KeyStatus(Answer):
    current: int
    versions: list[KeyVersion]
    destroyed_data_keys: int


async def legal_hold(request: web.Request, body: LegalHoldBody) -> web.Response:
    answer = await request.app[keys.RETENTION].legal_hold(caller(request), v.path_id(request), body.hold,
                                                          context(request))
    return web.json_response(answer)


class RecordExportQuery(Query):
    since: Annotated[s.Since, Meta(description="closed at or after")] | None = field(default=None, name="from")
    until: Annotated[s.Until, Meta(description="closed before (a date counts whole)")] | None = field(
        default=None, name="to")
    client_ref: Annotated[tuple[sh.ClientRef, ...], Meta(max_length=1000,
                                                      description="only these clients (repeatable)")] = ()


async def client_record_export(request: web.Request, *, query: RecordExportQuery) -> web.Response:
    lines = await request.app[keys.CLIENT_RECORD].export(
        caller(request), context(request), since=query.since, until=query.until,
        client_refs=tuple(identifiers.ClientRef(r) for r in query.client_ref))
    return web.Response(body="".join(lines).encode("utf-8"), content_type="application/jsonl", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="client-record.jsonl"'})


async def key_status(request: web.Request) -> web.Response:
    return web.json_response(await request.app[keys.KEYS].status())


async def end_sessions(request: web.Request, body: EndSessionsBody) -> web.Response:
    return web.json_response(await request.app[keys.SESSIONS].end(caller(request), body.user_id, context(request)))


ADMIN_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/sessions/end", end_sessions, action="sessions.end",
          summary="End every session of a user of your organisation: tokens issued until now are refused and live "
          "connections are closed (4403); audited as sessions.end",
          who="admin (own organisation's users only)",
          body=EndSessionsBody, response=SessionsEnded,
          errors=(400, 401, 403, 404, 413, 415, 422)),
    Route("POST", "/api/v1/consultations/{id}/legal-hold", legal_hold, action="legal_hold.set",
          summary="Set or lift a legal hold: a held consultation is not deleted at the end of its retention period",
          who="privacy officer or admin of either party organisation",
          body=LegalHoldBody, response=LegalHold,
          errors=(400, 401, 403, 404, 413, 415, 422)),
    Route("GET", "/api/v1/retention/client-record", client_record_export,
          "Export § 35 contacts and decision-relevant advice of your organisation's closed consultations for "
          "the county's client record (JSON Lines, schema konsulta.client-record/1); every exported "
          "consultation is audited",
          who="privacy officer or admin",
          query=RecordExportQuery,
          content_type="application/jsonl", response=str, errors=(400, 401, 403)),
    Route("GET", "/api/v1/keys/status", key_status, action="keys.status",
          summary="Key-encryption key versions and what uses them",
          who="admin",
          response=KeyStatus,
          errors=(401, 403)),
)
