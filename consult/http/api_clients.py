"""Client registry, consents and disclosure prohibitions (docs/capabilities.md C3), and the identifier scan."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from consult.errors import Unprocessable
from consult.http import keys
from consult.http import validation as v
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.schemas import IdentifierNotice, Instant
from consult.http.shapes import (
    Answer,
    Body,
    ClientCategoryName,
    ClientPurposeName,
    KnownOrg,
    PurposeName,
    Query,
    RoleName,
    UserId,
    any_text,
    line,
)
from consult.model import instant, secrecy, wire
from consult.model.identifiers import ClientRef
from consult.policy.scan import scan
from consult.services.consents import ConsentScope
from consult.services.gate import notices_for
from consult.services.receipts import receipt_text

_TIME = Meta(max_length=instant.MAX_LENGTH,
             description="ISO 8601 time with zone, or a date YYYY-MM-DD meaning the end of that day in Helsinki")


class Hetu(Body):
    hetu: Annotated[str, Meta(max_length=32, extra={"code": "invalid_hetu"})]


class Registered(Answer):
    client_ref: str
    created: bool


class ScanBody(Body):
    text: Annotated[str, any_text(10000)]
    purpose: PurposeName | None = None


class Scanned(Answer):
    identifiers: list[IdentifierNotice]


class ConsentScopeBody(Body):
    categories: Annotated[list[ClientCategoryName], Meta(
        min_length=1, max_length=50, description="Categories the purpose can carry (else 422 purpose_binding)")]
    recipient_orgs: Annotated[list[KnownOrg], Meta(min_length=1, max_length=50)]
    method: Literal["e_service", "oral", "written"]
    disclosing_org: Annotated[KnownOrg, Meta(description="The organisation that discloses; defaults to yours when "
                                                         "yours is not a recipient")] | None = None
    recipient_roles: Annotated[list[RoleName], Meta(max_length=50)] | None = None
    recipient_users: Annotated[list[UserId], Meta(max_length=50)] | None = None
    purpose: ClientPurposeName | None = None
    purposes: Annotated[list[ClientPurposeName], Meta(
        max_length=50, description="Accepted for compatibility; must name the same single purpose")] | None = None
    valid_from: Annotated[str, _TIME] | None = None
    valid_until: Annotated[str, Meta(max_length=instant.MAX_LENGTH, description=(
        "Required (422 open_ended without it); at most CONSULT_CONSENT_MAX_DAYS after valid_from "
        "(422 validity_too_long); a date means the end of that day in Helsinki"))] | None = None
    grantor: Literal["guardian", "legal_representative", "self"] | None = None
    evidence_ref: Annotated[str, line(200, "Where the evidence is; required for an oral consent")] | None = None
    witnessed_by: Annotated[str, line(200, "Who witnessed an oral consent; required for one (422 "
                                            "oral_evidence)")] | None = None


class ConsentEvent(Answer):
    event: str
    version: int
    at: Instant
    actor_org: str | None


class Consent(Answer):
    id: str
    version: int
    client_ref: str
    status: Literal["active", "suspended", "withdrawn", "expired"]
    grantor: str
    categories: list[str]
    disclosing_org: str | None
    recipient_orgs: list[str]
    recipient_roles: list[str]
    recipient_users: list[str]
    purposes: list[str]
    valid_from: Instant
    valid_until: Instant
    method: str
    evidence_ref: str | None
    witnessed_by: str | None
    recorded_by: str
    recorded_org: str
    status_changed_at: Instant
    created_at: Instant
    confirmed_at: Instant | UnsetType = UNSET
    confirmed_by: str | UnsetType | None = UNSET
    events: list[ConsentEvent] | UnsetType = UNSET


class ConsentPage(Answer):
    items: list[Consent]
    next: str | None


class ProhibitionBody(Body):
    category: ClientCategoryName | None = None
    org: KnownOrg | None = None


class Prohibition(Answer):
    id: str
    client_ref: str
    category: str | None
    org: str | None
    active: bool
    created_at: Instant
    created_by: str
    created_org: str
    revoked_at: Instant


class ProhibitionPage(Answer):
    items: list[Prohibition]
    next: str | None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=wire.dumps)


def _client_ref(request: web.Request) -> ClientRef:
    return ClientRef(v.path_id(request, "ref"))


def _scope(body: ConsentScopeBody) -> ConsentScope:
    purposes: list[str] = list(dict.fromkeys([*([body.purpose] if body.purpose else []), *(body.purposes or [])]))
    if not purposes:
        raise Unprocessable("purpose: is required (a client purpose, not 'general')", code="invalid_field")
    return ConsentScope(
        categories=list(dict.fromkeys(body.categories)),
        disclosing_org=body.disclosing_org,
        recipient_orgs=list(dict.fromkeys(body.recipient_orgs)),
        recipient_roles=list(dict.fromkeys(body.recipient_roles or [])),
        recipient_users=list(dict.fromkeys(body.recipient_users or [])),
        purposes=purposes,
        # A date means the end of that day in Helsinki.
        valid_from=v.moment(body.valid_from, "valid_from", day="last_second"),
        valid_until=v.moment(body.valid_until, "valid_until", day="last_second"),
        method=body.method,
        grantor=body.grantor or "self",
        evidence_ref=body.evidence_ref,
        witnessed_by=body.witnessed_by,
    )


# -- clients --------------------------------------------------------------------------------


async def register_client(request: web.Request, body: Hetu) -> web.Response:
    link = await request.app[keys.CLIENTS].register(caller(request), body.hetu, context(request))
    return _json(link, status=201 if link.created else 200)


async def scan_text(request: web.Request, body: ScanBody) -> web.Response:
    return _json({"identifiers": notices_for(scan(body.text), body.purpose or "general")})


# -- consents --------------------------------------------------------------------------------


async def create_consent(request: web.Request, body: ConsentScopeBody) -> web.Response:
    answer = await request.app[keys.CONSENTS].create(caller(request), _client_ref(request), _scope(body),
                                                     context(request))
    return _json(answer, status=201)


async def list_consents(request: web.Request) -> web.Response:
    who = caller(request)
    items = await request.app[keys.CONSENTS].list_for_client(who, _client_ref(request), context(request))
    return _json({"items": items, "next": None})


async def get_consent(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.CONSENTS].get(who, v.path_id(request), context(request)))


async def new_consent_version(request: web.Request, body: ConsentScopeBody) -> web.Response:
    answer = await request.app[keys.CONSENTS].new_version(caller(request), v.path_id(request), _scope(body),
                                                          context(request))
    return _json(answer, status=201)


def _status_change(action: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        who = caller(request)
        body = await request.app[keys.CONSENTS].change_status(who, v.path_id(request), action, context(request))
        return _json(body)

    handler.__name__ = f"{action}_consent"
    return handler


async def confirm_consent(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await request.app[keys.CONSENTS].confirm(who, v.path_id(request), context(request)))


class ReceiptQuery(Query):
    lang: Annotated[Literal["fi", "sv", "en"], Meta(description="language of the receipt (default fi)")] = "fi"


async def consent_receipt(request: web.Request, *, query: ReceiptQuery) -> web.Response:
    who = caller(request)
    consent = await request.app[keys.CONSENTS].get(who, v.path_id(request), context(request), action="consent.receipt")
    lang = query.lang
    text = secrecy.marked(receipt_text(consent.wire(), lang, request.app[keys.SETTINGS].controllers), lang)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


# -- prohibitions ------------------------------------------------------------------------------


async def create_prohibition(request: web.Request, body: ProhibitionBody) -> web.Response:
    answer = await request.app[keys.CONSENTS].prohibit(caller(request), _client_ref(request), body.category,
                                                       body.org, context(request))
    return _json(answer, status=201)


async def list_prohibitions(request: web.Request) -> web.Response:
    who = caller(request)
    items = await request.app[keys.CONSENTS].list_prohibitions(who, _client_ref(request), context(request))
    return _json({"items": items, "next": None})


async def revoke_prohibition(request: web.Request) -> web.Response:
    who = caller(request)
    body = await request.app[keys.CONSENTS].revoke_prohibition(who, v.path_id(request), context(request))
    return _json(body)


ALL = (400, 401, 403, 404, 409, 413, 415, 422)

CLIENT_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/clients", register_client, action="client.register",
          summary="Register a client by HETU; the same HETU gives the same ref",
          who="advisor, expert, social worker",
          body=Hetu, response=Registered,
          status=201, errors=(400, 401, 403, 413, 415, 422)),
    Route("POST", "/api/v1/scan", scan_text, "Which identifiers free text contains and what will happen to them",
          body=ScanBody, response=Scanned,
          errors=(400, 401, 413, 415, 422)),
    Route("POST", "/api/v1/clients/{ref}/consents", create_consent, action="consent.record",
          summary="Record a consent for a disclosure your organisation makes or receives",
          who="advisor, social worker of the disclosing or a receiving organisation", body=ConsentScopeBody,
          response=Consent, status=201, errors=ALL),
    Route("GET", "/api/v1/clients/{ref}/consents", list_consents,
          "The client's consents that concern your organisation (recording, disclosing or receiving)",
          who="advisor, social worker, privacy officer", response=ConsentPage, errors=(401, 403, 404)),
    Route("GET", "/api/v1/consents/{id}", get_consent, "One consent with its events and its confirmation",
          who="advisor, social worker, privacy officer of an organisation it concerns", response=Consent,
          errors=(401, 404)),
    Route("POST", "/api/v1/consents/{id}/confirm", confirm_consent,
          "The disclosing organisation confirms it has checked the consent it relies on (audited)",
          who="advisor, social worker of the disclosing organisation", response=Consent,
          errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/versions", new_consent_version,
          "Change the scope: a new version; the old one is superseded",
          who="advisor, social worker of the recording organisation", body=ConsentScopeBody, response=Consent,
          status=201, errors=ALL),
    Route("POST", "/api/v1/consents/{id}/revoke", _status_change("withdraw"), "Withdraw (final)",
          who="advisor, social worker of an organisation the consent concerns", response=Consent,
          errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/suspend", _status_change("suspend"), "Suspend until resumed",
          who="advisor, social worker of the recording organisation", response=Consent, errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/resume", _status_change("resume"), "Resume a suspended consent",
          who="advisor, social worker of the recording organisation", response=Consent, errors=(401, 403, 404, 409)),
    Route("GET", "/api/v1/consents/{id}/receipt", consent_receipt,
          "A printable consent receipt for the client, with the secrecy marking", secret=True,
          who="advisor, social worker, privacy officer", response=str, errors=(401, 404),
          query=ReceiptQuery,
          content_type="text/plain"),
    Route("POST", "/api/v1/clients/{ref}/prohibitions", create_prohibition, action="prohibition.record",
          summary="Record a disclosure prohibition (a category, an organisation, or all)",
          who="advisor, social worker",
          body=ProhibitionBody, response=Prohibition,
          status=201, errors=ALL),
    Route("GET", "/api/v1/clients/{ref}/prohibitions", list_prohibitions,
          "The client's disclosure prohibitions that your organisation recorded (another organisation's are not "
          "shown); the read is logged",
          who="advisor, social worker, privacy officer", response=ProhibitionPage, errors=(401, 403, 404)),
    Route("POST", "/api/v1/prohibitions/{id}/revoke", revoke_prohibition, "Lift a prohibition",
          who="advisor, social worker of the recording organisation", response=Prohibition,
          errors=(401, 404, 409)),
)
