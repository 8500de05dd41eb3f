"""The public API handlers (docs/capabilities.md): parse, authenticate, call one service method, serialise."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.model import secrecy, wire
from consult.model.identifiers import ClientRef, as_client_ref
from consult.policy.model import Referral
from consult.services.consultations import SEARCH_SCAN, NewConsultation
from consult.services.directory import ExpertInput
from consult.services.messages import DataItem
from consult.services.sensitive import Confirmation, confirmation_reason


def _json(data: Any, status: int = 200) -> web.Response:
    """The answer as JSON: records are written in their wire form (consult/model/wire.py)."""
    return web.json_response(data, status=status, dumps=wire.dumps)


# -- health and identity --------------------------------------------------------------------


async def healthz(_request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def me(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(who.as_json())


# -- directory ------------------------------------------------------------------------------


async def list_experts(request: web.Request, *, query: s.OrgQuery) -> web.Response:
    items = await request.app[keys.DIRECTORY].list_experts(query.org)
    return _json({"items": items, "next": None})


def _unique(names: list[str] | None) -> list[str] | None:
    return None if names is None else list(dict.fromkeys(names))


async def put_expert(request: web.Request, body: s.ExpertPut) -> web.Response:
    who = caller(request)
    user_id = v.path_id(request, "user_id")
    entry = ExpertInput(name=body.name, topics=_unique(body.topics), pools=_unique(body.pools),
                        languages=_unique(body.languages), on_duty=body.on_duty)
    return _json(await request.app[keys.DIRECTORY].put_expert(who, user_id, entry, context(request)))


# -- consultations ----------------------------------------------------------------------------


async def create_consultation(request: web.Request, body: s.NewConsultationBody) -> web.Response:
    new = NewConsultation(
        topic=body.topic, urgency=body.urgency, question=body.question, purpose=body.purpose,
        target_org=body.target_org, expert_id=body.expert_id, pool=body.pool, client_ref=as_client_ref(body.client_ref),
        case_ref=body.case_ref, confirmation=confirmation(body.sensitive_confirmation),
    )
    return _json(await request.app[keys.CONSULTATIONS].create(caller(request), new, context(request)), status=201)


async def notify_child_welfare(request: web.Request, body: s.ChildWelfareNotificationBody) -> web.Response:
    """A child-welfare notification (lastensuojelulaki 417/2007 25 §): no consent is asked."""
    topics = request.app[keys.SETTINGS].topics
    default_topic = next((t for t in ("urgent_assistance", "other") if t in topics), topics[0])
    answer = await request.app[keys.CONSULTATIONS].notify_child_welfare(
        caller(request), target_org=body.target_org, client_ref=ClientRef(body.client_ref), text=body.text,
        topic=body.topic or default_topic, confirmation=confirmation(body.sensitive_confirmation),
        ctx=context(request),
    )
    return _json(answer, status=201)


async def get_child_welfare_notification(request: web.Request) -> web.Response:
    who = caller(request)
    body = await request.app[keys.CONSULTATIONS].notification(who, v.path_id(request), context(request))
    return _json(body)


async def list_consultations(request: web.Request, *, query: s.ConsultationListQuery) -> web.Response:
    page = await request.app[keys.CONSULTATIONS].list_for(
        caller(request), status=query.status, limit=query.limit, cursor=query.cursor, ctx=context(request))
    return _json(page)


async def search_consultations(request: web.Request, body: s.ConsultationSearch) -> web.Response:
    """The search words come in the body, never in the URL (proxy logs, history, Referer)."""
    page = await request.app[keys.CONSULTATIONS].search(
        caller(request), body.q, status=body.status, limit=body.limit, cursor=body.cursor, ctx=context(request))
    return _json(page)


async def get_consultation(request: web.Request) -> web.Response:
    who = caller(request)
    body = await request.app[keys.CONSULTATIONS].get(who, v.path_id(request), context(request))
    return _json(body)


async def claim_consultation(request: web.Request) -> web.Response:
    who = caller(request)
    body = await request.app[keys.CONSULTATIONS].claim(who, v.path_id(request), context(request))
    return _json(body)


async def add_participant(request: web.Request, body: s.AddParticipant) -> web.Response:
    return _json(await request.app[keys.CONSULTATIONS].add_participant(
        caller(request), v.path_id(request), body.user_id, context(request)))


async def close_consultation(request: web.Request, body: s.CloseBody) -> web.Response:
    return _json(await request.app[keys.CONSULTATIONS].close(
        caller(request), v.path_id(request), body.outcome, body.note, context(request),
        confirmation=confirmation(body.sensitive_confirmation),
    ))


# -- messages -----------------------------------------------------------------------------------


def _items(data: list[s.ItemIn] | None) -> list[DataItem]:
    return [DataItem(category=item.category, value=str(item.value), consent_id=item.consent_id,
                     referral=_referral(item.referral))
            for item in data or ()]


def _referral(body: s.ReferralBody | None) -> Referral | None:
    """The recorded ground of a § 35(2) referral without consent (sosiaalihuoltolaki 1301/2014)."""
    if body is None:
        return None
    # 35 § 2 mom. applies only when consent cannot be obtained: the record says why it could not.
    return Referral(condition=body.condition, justification=body.justification, why_no_consent=body.why_no_consent)


def confirmation(body: s.SensitiveConfirmation | None) -> Confirmation | None:
    """``sensitive_confirmation``: the sender confirms free text that looks like a category
    withheld from a recipient — the categories they were shown and a written reason. The
    attachment upload reads the same object from a multipart part of that name."""
    if body is None:
        return None
    return Confirmation(reason=confirmation_reason(body.reason), categories=frozenset(body.categories))


async def post_message(request: web.Request, body: s.MessageNew) -> web.Response:
    answer = await request.app[keys.MESSAGES].post(caller(request), v.path_id(request), body.text or "",
                                                   _items(body.data), context(request),
                                                   confirmation=confirmation(body.sensitive_confirmation))
    return _json(answer, status=201)


async def preview_message(request: web.Request, body: s.MessageNew) -> web.Response:
    return _json(await request.app[keys.MESSAGES].preview(caller(request), v.path_id(request), body.text or "",
                                                          _items(body.data), context(request)))


async def list_messages(request: web.Request, *, query: s.PageQuery) -> web.Response:
    page = await request.app[keys.MESSAGES].list_for(
        caller(request), v.path_id(request), limit=query.limit, cursor=query.cursor, ctx=context(request))
    return _json({"items": page.items, "next": page.next, "secrecy": secrecy.field()})


async def mark_read(request: web.Request, body: s.MarkRead) -> web.Response:
    return _json(await request.app[keys.MESSAGES].mark_read(
        caller(request), v.path_id(request), body.message_id, context(request)))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", healthz, "Liveness", who="anyone", auth=False, response=s.Health, errors=()),
    Route("GET", "/api/v1/me", me, "The caller as the service sees them", response=s.Me, errors=(401,)),
    Route("GET", "/api/v1/experts", list_experts, "Named experts with duty and presence",
          response=s.ExpertPage, errors=(401,),
          query=s.OrgQuery),
    Route("PUT", "/api/v1/experts/{user_id}", put_expert, action="expert.update", summary="Name or update an expert",
          who="admin of that org (an expert may set their own on_duty)", body=s.ExpertPut, response=s.Expert),
    Route("POST", "/api/v1/consultations", create_consultation, action="consultation.create",
          summary="Open a consultation",
          who="advisor, social worker", body=s.NewConsultationBody, response=s.Consultation, status=201,
          errors=(400, 401, 403, 404, 409, 413, 422),
          other_responses=((409, "A question that looks like a category withheld from the target "
                                 "organisation (code sensitive_text, with the flagged passages): move it into a "
                                 "message data item or send again with sensitive_confirmation",
                            s.SensitiveError),)),
    Route("POST", "/api/v1/child-welfare-notifications", notify_child_welfare, action="child_welfare.notify",
          summary="Notify the county's child-welfare intake (lastensuojelulaki 417/2007 25 §): no consent, immediate, "
          "the notifier and the statutory basis recorded; one-way",
          who="Kela advisor (as the policy permits)", body=s.ChildWelfareNotificationBody,
          response=s.ChildWelfareNotification, status=201, errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Text that looks like a category withheld from the intake (code sensitive_text): "
                                 "send again with sensitive_confirmation", s.SensitiveError),)),
    Route("GET", "/api/v1/child-welfare-notifications/{id}", get_child_welfare_notification,
          "A child-welfare notification with its notifier and basis", who="participants, the child-welfare intake",
          response=s.ChildWelfareNotification, errors=(401, 404)),
    Route("GET", "/api/v1/consultations", list_consultations, "Consultations visible to the caller",
          who="participants, on-duty experts", response=s.ConsultationPage, errors=(400, 401, 422),
          query=s.ConsultationListQuery),
    Route("POST", "/api/v1/consultations/search", search_consultations,
          f"Search the consultations visible to the caller, the words in the body (never in a URL): at most "
          f"{SEARCH_SCAN} are looked at per request, and next goes on (a page may be short, even empty)",
          who="participants, on-duty experts", body=s.ConsultationSearch, response=s.ConsultationPage,
          errors=(400, 401, 413, 415, 422)),
    Route("GET", "/api/v1/consultations/{id}", get_consultation, "One consultation",
          who="participant, or an on-duty expert it is offered to", response=s.Consultation, errors=(401, 404),
          secret=True),
    Route("POST", "/api/v1/consultations/{id}/claim", claim_consultation, action="consultation.claim",
          edge_checks_role=False,
          summary="Claim: the first expert wins",
          who="expert of the target org", response=s.Consultation, errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consultations/{id}/participants", add_participant, "Add a participant",
          who="participant", body=s.AddParticipant, response=s.Consultation,
          errors=(400, 401, 403, 404, 409, 413, 415, 422)),
    Route("POST", "/api/v1/consultations/{id}/close", close_consultation, "Close with an outcome code",
          who="participant", body=s.CloseBody, response=s.Consultation, errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Already closed, or a note that looks like a category withheld from a "
                                 "participant of another organisation (code sensitive_text, with the flagged "
                                 "passages): move it into a message data item or close again with "
                                 "sensitive_confirmation", s.SensitiveError),)),
    Route("POST", "/api/v1/consultations/{id}/messages", post_message, "Post a message with data items",
          who="participant", body=s.MessageNew, response=s.Message, status=201,
          errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Closed, or free text that looks like a category withheld from a recipient "
                                 "(code sensitive_text, with the flagged passages): move it into a data item or "
                                 "send again with sensitive_confirmation", s.SensitiveError),)),
    Route("POST", "/api/v1/consultations/{id}/messages/preview", preview_message,
          "What the policy would withhold from whom, and what the identifier scan found — nothing is stored",
          who="participant", body=s.MessageNew, response=s.Preview, errors=(400, 401, 403, 404, 409, 413, 415, 422)),
    Route("GET", "/api/v1/consultations/{id}/messages", list_messages, "Messages as this reader may see them",
          secret=True,
          who="participant", response=s.MessagePage, errors=(400, 401, 404), query=s.PageQuery),
    Route("POST", "/api/v1/consultations/{id}/read", mark_read, "Read receipt up to a message",
          who="participant", body=s.MarkRead, response=s.ReadReceipt,
          errors=(400, 401, 403, 404, 413, 415, 422)),
)
