"""Client registry, consents and disclosure prohibitions (SPEC C3), and the identifier scan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from consult.errors import Unprocessable
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http import vocabulary as vocab
from consult.http.api import Route
from consult.http.principal import authenticate, context
from consult.model import secrecy, wire
from consult.model.identifiers import ClientRef
from consult.policy.scan import scan
from consult.services.consents import GRANTORS, METHODS, ConsentScope
from consult.services.gate import notices_for
from consult.services.receipts import receipt_text


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=wire.dumps)


def _client_ref(request: web.Request) -> ClientRef:
    return ClientRef(v.path_id(request, "ref"))


def _names(data: dict[str, Any], field: str, allowed: frozenset[str], *, required: bool) -> list[str]:
    raw = data.get(field)
    if raw is None:
        if required:
            raise Unprocessable(f"{field}: is required", code="invalid_field")
        return []
    if not isinstance(raw, list) or len(raw) > 50 or not all(isinstance(x, str) for x in raw):
        raise Unprocessable(f"{field}: must be a list of names", code="invalid_field")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise Unprocessable(f"{field}: unknown " + ", ".join(unknown[:5]), code="invalid_field")
    if required and not raw:
        raise Unprocessable(f"{field}: must not be empty", code="invalid_field")
    return list(dict.fromkeys(raw))


def _moment(data: dict[str, Any], field: str) -> datetime | None:
    """An ISO 8601 time with zone, or a date meaning the end of that day in Helsinki."""
    return v.instant(data, field, required=False, day="last_second")


def _scope(request: web.Request, data: dict[str, Any]) -> ConsentScope:
    orgs = frozenset(request.app[keys.SETTINGS].orgs)
    names = vocab.of(request)
    purposes = _names(data, "purposes", names.client_purposes, required=False)
    single = v.choice(data, "purpose", names.client_purposes, required=False)
    if single:
        purposes = list(dict.fromkeys([single, *purposes]))
    if not purposes:
        raise Unprocessable("purpose: is required (a client purpose, not 'general')", code="invalid_field")
    users = data.get("recipient_users") or []
    if not isinstance(users, list) or len(users) > 50 or not all(isinstance(u, str) and v._ID.match(u) for u in users):
        raise Unprocessable("recipient_users: must be a list of user ids", code="invalid_field")
    return ConsentScope(
        categories=_names(data, "categories", names.client_categories, required=True),
        disclosing_org=v.choice(data, "disclosing_org", orgs, required=False),
        recipient_orgs=_names(data, "recipient_orgs", orgs, required=True),
        recipient_roles=_names(data, "recipient_roles", names.roles, required=False),
        recipient_users=list(dict.fromkeys(users)),
        purposes=purposes,
        valid_from=_moment(data, "valid_from"),
        valid_until=_moment(data, "valid_until"),
        method=v.choice(data, "method", METHODS),  # type: ignore[arg-type]
        grantor=v.choice(data, "grantor", GRANTORS, required=False) or "self",
        evidence_ref=v.text(data, "evidence_ref", max_len=200, required=False, multiline=False),
        witnessed_by=v.text(data, "witnessed_by", max_len=200, required=False, multiline=False),
    )


# -- clients --------------------------------------------------------------------------------


async def register_client(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = await v.json_body(request)
    hetu = data.get("hetu")
    if not isinstance(hetu, str) or len(hetu) > 32:
        raise Unprocessable("hetu is not a valid Finnish personal identity code.", code="invalid_hetu")
    link = await request.app[keys.CLIENTS].register(who, hetu, context(request))
    return _json(link, status=201 if link.created else 200)


async def scan_text(request: web.Request) -> web.Response:
    await authenticate(request)
    data = await v.json_body(request)
    text = v.text(data, "text", max_len=10000, allow_empty=True) or ""
    purpose = v.choice(data, "purpose", vocab.of(request).purposes, required=False) or "general"
    return _json({"identifiers": notices_for(scan(text), purpose)})


# -- consents --------------------------------------------------------------------------------


async def create_consent(request: web.Request) -> web.Response:
    who = await authenticate(request)
    ref = _client_ref(request)
    scope = _scope(request, await v.json_body(request))
    body = await request.app[keys.CONSENTS].create(who, ref, scope, context(request))
    return _json(body, status=201)


async def list_consents(request: web.Request) -> web.Response:
    who = await authenticate(request)
    items = await request.app[keys.CONSENTS].list_for_client(who, _client_ref(request), context(request))
    return _json({"items": items, "next": None})


async def get_consent(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.CONSENTS].get(who, v.path_id(request), context(request)))


async def new_consent_version(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consent_id = v.path_id(request)
    scope = _scope(request, await v.json_body(request))
    body = await request.app[keys.CONSENTS].new_version(who, consent_id, scope, context(request))
    return _json(body, status=201)


def _status_change(action: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        who = await authenticate(request)
        body = await request.app[keys.CONSENTS].change_status(who, v.path_id(request), action, context(request))
        return _json(body)

    handler.__name__ = f"{action}_consent"
    return handler


async def confirm_consent(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(await request.app[keys.CONSENTS].confirm(who, v.path_id(request), context(request)))


async def consent_receipt(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consent = await request.app[keys.CONSENTS].get(who, v.path_id(request), context(request), action="consent.receipt")
    lang = request.query.get("lang", "fi")
    if lang not in ("fi", "sv", "en"):
        lang = "fi"
    text = secrecy.marked(receipt_text(consent.wire(), lang, request.app[keys.SETTINGS].controllers), lang)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


# -- prohibitions ------------------------------------------------------------------------------


async def create_prohibition(request: web.Request) -> web.Response:
    who = await authenticate(request)
    ref = _client_ref(request)
    data = await v.json_body(request)
    category = v.choice(data, "category", vocab.of(request).client_categories, required=False)
    org = v.choice(data, "org", frozenset(request.app[keys.SETTINGS].orgs), required=False)
    body = await request.app[keys.CONSENTS].prohibit(who, ref, category, org, context(request))
    return _json(body, status=201)


async def list_prohibitions(request: web.Request) -> web.Response:
    who = await authenticate(request)
    items = await request.app[keys.CONSENTS].list_prohibitions(who, _client_ref(request), context(request))
    return _json({"items": items, "next": None})


async def revoke_prohibition(request: web.Request) -> web.Response:
    who = await authenticate(request)
    body = await request.app[keys.CONSENTS].revoke_prohibition(who, v.path_id(request), context(request))
    return _json(body)


CONSENT_SCOPE: s.S = {
    "type": "object",
    "required": ["categories", "recipient_orgs", "purpose", "method", "valid_until"],
    "properties": {
        "categories": {"type": "array", "items": {"type": "string", "enum": s.CLIENT_CATEGORY_NAMES},
                       "description": "Categories the purpose can carry (else 422 purpose_binding)"},
        "disclosing_org": {"type": "string", "description": "The organisation that discloses; defaults to yours "
                           "when yours is not a recipient"},
        "recipient_orgs": {"type": "array", "items": s.STR},
        "recipient_roles": {"type": "array", "items": {"type": "string", "enum": s.ROLE_NAMES}},
        "recipient_users": {"type": "array", "items": s.STR},
        "purpose": {"type": "string", "enum": s.CLIENT_PURPOSE_NAMES},
        "purposes": {"type": "array", "items": {"type": "string", "enum": s.CLIENT_PURPOSE_NAMES},
                     "description": "Accepted for compatibility; must name the same single purpose"},
        "valid_from": s.STR,
        "valid_until": {"type": "string", "description": "Required; at most CONSULT_CONSENT_MAX_DAYS after "
                        "valid_from (422 open_ended, validity_too_long)"},
        "method": {"type": "string", "enum": sorted(METHODS)},
        "grantor": {"type": "string", "enum": sorted(GRANTORS)},
        "evidence_ref": {"type": "string", "maxLength": 200,
                         "description": "Where the evidence is; required for an oral consent"},
        "witnessed_by": {"type": "string", "maxLength": 200,
                         "description": "Who witnessed an oral consent; required for one (422 oral_evidence)"},
    },
}
CONSENT: s.S = {
    "type": "object",
    "required": ["id", "version", "client_ref", "status"],
    "properties": {
        "id": s.STR, "version": {"type": "integer"}, "client_ref": s.STR,
        "status": {"type": "string", "enum": ["active", "suspended", "withdrawn", "expired"]},
        "grantor": s.STR, "categories": {"type": "array", "items": s.STR}, "disclosing_org": s.NSTR,
        "recipient_orgs": {"type": "array", "items": s.STR}, "recipient_roles": {"type": "array", "items": s.STR},
        "recipient_users": {"type": "array", "items": s.STR}, "purposes": {"type": "array", "items": s.STR},
        "valid_from": s.TS, "valid_until": s.TS, "method": s.STR, "evidence_ref": s.NSTR, "witnessed_by": s.NSTR,
        "recorded_by": s.STR, "recorded_org": s.STR, "status_changed_at": s.TS, "created_at": s.TS,
        "confirmed_at": s.TS, "confirmed_by": s.NSTR,
        "events": {"type": "array", "items": {"type": "object"}},
    },
}
PROHIBITION: s.S = {
    "type": "object",
    "properties": {
        "id": s.STR, "client_ref": s.STR, "category": s.NSTR, "org": s.NSTR, "active": {"type": "boolean"},
        "created_at": s.TS, "created_by": s.STR, "created_org": s.STR, "revoked_at": s.TS,
    },
}
ALL = (400, 401, 403, 404, 409, 413, 415, 422)

CLIENT_ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/clients", register_client, action="client.register",
          summary="Register a client by HETU; the same HETU gives the same ref",
          who="advisor, expert, social worker",
          body={"type": "object", "required": ["hetu"], "properties": {"hetu": s.STR}},
          response={"type": "object", "required": ["client_ref"],
                    "properties": {"client_ref": s.STR, "created": {"type": "boolean"}}},
          status=201, errors=(400, 401, 403, 413, 415, 422)),
    Route("POST", "/api/v1/scan", scan_text, "Which identifiers free text contains and what will happen to them",
          body={"type": "object", "required": ["text"], "properties": {"text": s.STR, "purpose": s.STR}},
          response={"type": "object", "properties": {"identifiers": {"type": "array", "items": {"type": "object"}}}},
          errors=(400, 401, 413, 415, 422)),
    Route("POST", "/api/v1/clients/{ref}/consents", create_consent, action="consent.record",
          summary="Record a consent for a disclosure your organisation makes or receives",
          who="advisor, social worker of the disclosing or a receiving organisation", body=CONSENT_SCOPE,
          response=CONSENT, status=201, errors=ALL),
    Route("GET", "/api/v1/clients/{ref}/consents", list_consents,
          "The client's consents that concern your organisation (recording, disclosing or receiving)",
          who="advisor, social worker, privacy officer", response=s.page(CONSENT), errors=(401, 403, 404)),
    Route("GET", "/api/v1/consents/{id}", get_consent, "One consent with its events and its confirmation",
          who="advisor, social worker, privacy officer of an organisation it concerns", response=CONSENT,
          errors=(401, 404)),
    Route("POST", "/api/v1/consents/{id}/confirm", confirm_consent,
          "The disclosing organisation confirms it has checked the consent it relies on (audited)",
          who="advisor, social worker of the disclosing organisation", response=CONSENT,
          errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/versions", new_consent_version,
          "Change the scope: a new version; the old one is superseded",
          who="advisor, social worker of the recording organisation", body=CONSENT_SCOPE, response=CONSENT,
          status=201, errors=ALL),
    Route("POST", "/api/v1/consents/{id}/revoke", _status_change("withdraw"), "Withdraw (final)",
          who="advisor, social worker of an organisation the consent concerns", response=CONSENT,
          errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/suspend", _status_change("suspend"), "Suspend until resumed",
          who="advisor, social worker of the recording organisation", response=CONSENT, errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consents/{id}/resume", _status_change("resume"), "Resume a suspended consent",
          who="advisor, social worker of the recording organisation", response=CONSENT, errors=(401, 403, 404, 409)),
    Route("GET", "/api/v1/consents/{id}/receipt", consent_receipt,
          "A printable consent receipt for the client, with the secrecy marking", secret=True,
          who="advisor, social worker, privacy officer", response={"type": "string"}, errors=(401, 404),
          query=(("lang", {"type": "string", "enum": ["fi", "sv", "en"]}, "language of the receipt"),),
          content_type="text/plain"),
    Route("POST", "/api/v1/clients/{ref}/prohibitions", create_prohibition, action="prohibition.record",
          summary="Record a disclosure prohibition (a category, an organisation, or all)",
          who="advisor, social worker",
          body={"type": "object", "properties": {"category": s.STR, "org": s.STR}}, response=PROHIBITION,
          status=201, errors=ALL),
    Route("GET", "/api/v1/clients/{ref}/prohibitions", list_prohibitions,
          "The client's disclosure prohibitions that your organisation recorded (another organisation's are not "
          "shown); the read is logged",
          who="advisor, social worker, privacy officer", response=s.page(PROHIBITION), errors=(401, 403, 404)),
    Route("POST", "/api/v1/prohibitions/{id}/revoke", revoke_prohibition, "Lift a prohibition",
          who="advisor, social worker of the recording organisation", response=PROHIBITION,
          errors=(401, 404, 409)),
)
