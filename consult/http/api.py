"""The public API handlers (SPEC §5): parse, authenticate, call one service method, serialise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from consult.errors import Unprocessable
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http import vocabulary as vocab
from consult.http.principal import authenticate, context, guarded
from consult.model import secrecy, wire
from consult.model.identifiers import as_client_ref
from consult.model.vocabulary import OUTCOMES, STATUSES, URGENCIES
from consult.policy.model import REFERRAL_CONDITIONS, Referral
from consult.services.consultations import NewConsultation
from consult.services.directory import ExpertInput
from consult.services.messages import DataItem
from consult.services.sensitive import Confirmation, confirmation_reason

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ITEMS = 50
MAX_VALUE = 4000


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    who: str = "any user"
    auth: bool = True
    body: s.S | None = None
    response: s.S | None = None
    status: int = 200
    query: tuple[tuple[str, s.S, str], ...] = ()
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 413, 422))
    content_type: str = "application/json"
    #: Further content types of the success answer (e.g. a format chosen by a query parameter).
    other_content_types: tuple[str, ...] = ()
    body_type: str = "application/json"
    other_responses: tuple[tuple[int, str, s.S], ...] = ()  # (status, description, schema), not errors
    #: The success answer carries secret client data: it gets the secrecy marking header
    #: (consult/model/secrecy.py; julkisuuslaki 621/1999 § 25).
    secret: bool = False
    #: The action whose roles may call the route (consult/model/actions.py); checked before the
    #: handler runs and published as ``x-roles``. None: any signed-in user, the rest is decided
    #: by the service and the policy.
    action: str | None = None
    #: False where the route must first hide whether its subject exists (404 before 403): the
    #: service then checks the same table after resolving what the caller may see.
    edge_checks_role: bool = True

    @property
    def endpoint(self) -> Handler:
        """The handler as the router runs it: behind the role check of `action`, if any."""
        if self.action is None or not self.edge_checks_role:
            return self.handler
        return guarded(self.handler, self.action)

    def __post_init__(self) -> None:
        # The body schema the document shows is the one the edge enforces: closed to other fields.
        if self.body is not None:
            object.__setattr__(self, "body", s.closed(self.body))


def _json(data: Any, status: int = 200) -> web.Response:
    """The answer as JSON: records are written in their wire form (consult/model/wire.py)."""
    return web.json_response(data, status=status, dumps=wire.dumps)


# -- health and identity --------------------------------------------------------------------


async def healthz(_request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def me(request: web.Request) -> web.Response:
    who = await authenticate(request)
    return _json(who.as_json())


# -- directory ------------------------------------------------------------------------------


async def list_experts(request: web.Request) -> web.Response:
    await authenticate(request)
    org = request.query.get("org")
    if org is not None and not v._ORG.match(org):
        return _json({"items": [], "next": None})
    items = await request.app[keys.DIRECTORY].list_experts(org)
    return _json({"items": items, "next": None})


async def put_expert(request: web.Request) -> web.Response:
    who = await authenticate(request)
    user_id = v.path_id(request, "user_id")
    data = await v.json_body(request)
    entry = ExpertInput(
        name=v.text(data, "name", max_len=200, required=False, multiline=False),
        topics=v.slug_list(data, "topics"),
        pools=v.slug_list(data, "pools"),
        languages=v.slug_list(data, "languages"),
        on_duty=v.boolean(data, "on_duty"),
    )
    body = await request.app[keys.DIRECTORY].put_expert(who, user_id, entry, context(request))
    return _json(body)


# -- consultations ----------------------------------------------------------------------------


async def create_consultation(request: web.Request) -> web.Response:
    who = await authenticate(request)
    data = await v.json_body(request)
    settings = request.app[keys.SETTINGS]
    new = NewConsultation(
        topic=v.choice(data, "topic", frozenset(settings.topics)),  # type: ignore[arg-type]
        urgency=v.choice(data, "urgency", URGENCIES),  # type: ignore[arg-type]
        question=v.text(data, "question", max_len=10000),  # type: ignore[arg-type]
        purpose=v.choice(data, "purpose", vocab.of(request).purposes),  # type: ignore[arg-type]
        target_org=v.org(data, "target_org"),  # type: ignore[arg-type]
        expert_id=v.identifier(data, "expert_id", required=False),
        pool=v.identifier(data, "pool", required=False),
        client_ref=as_client_ref(v.identifier(data, "client_ref", required=False)),
        case_ref=v.text(data, "case_ref", max_len=128, required=False, multiline=False),
        confirmation=sensitive_confirmation(data, vocab.of(request).categories),
    )
    body = await request.app[keys.CONSULTATIONS].create(who, new, context(request))
    return _json(body, status=201)


async def notify_child_welfare(request: web.Request) -> web.Response:
    """A child-welfare notification (lastensuojelulaki 417/2007 25 §): no consent is asked."""
    who = await authenticate(request)
    data = await v.json_body(request)
    topics = request.app[keys.SETTINGS].topics
    default_topic = next((t for t in ("urgent_assistance", "other") if t in topics), topics[0])
    body = await request.app[keys.CONSULTATIONS].notify_child_welfare(
        who,
        target_org=v.org(data, "target_org"),  # type: ignore[arg-type]
        client_ref=v.identifier(data, "client_ref"),  # type: ignore[arg-type]
        text=v.text(data, "text", max_len=10000),  # type: ignore[arg-type]
        topic=v.choice(data, "topic", frozenset(topics), required=False) or default_topic,
        confirmation=sensitive_confirmation(data, vocab.of(request).categories),
        ctx=context(request),
    )
    return _json(body, status=201)


async def get_child_welfare_notification(request: web.Request) -> web.Response:
    who = await authenticate(request)
    body = await request.app[keys.CONSULTATIONS].notification(who, v.path_id(request), context(request))
    return _json(body)


async def list_consultations(request: web.Request) -> web.Response:
    who = await authenticate(request)
    page = await request.app[keys.CONSULTATIONS].list_for(
        who,
        status=v.query_choice(request, "status", STATUSES),
        limit=v.query_int(request, "limit"),
        cursor=request.query.get("cursor"),
        ctx=context(request),
    )
    return _json(page)


async def get_consultation(request: web.Request) -> web.Response:
    who = await authenticate(request)
    body = await request.app[keys.CONSULTATIONS].get(who, v.path_id(request), context(request))
    return _json(body)


async def claim_consultation(request: web.Request) -> web.Response:
    who = await authenticate(request)
    body = await request.app[keys.CONSULTATIONS].claim(who, v.path_id(request), context(request))
    return _json(body)


async def add_participant(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    data = await v.json_body(request)
    user_id = v.identifier(data, "user_id")
    body = await request.app[keys.CONSULTATIONS].add_participant(
        who, consultation_id, user_id, context(request)  # type: ignore[arg-type]
    )
    return _json(body)


async def close_consultation(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    data = await v.json_body(request)
    outcome = v.choice(data, "outcome", OUTCOMES)
    note = v.text(data, "note", max_len=2000, required=False)
    body = await request.app[keys.CONSULTATIONS].close(
        who, consultation_id, outcome, note, context(request),  # type: ignore[arg-type]
        confirmation=sensitive_confirmation(data, vocab.of(request).categories),
    )
    return _json(body)


# -- messages -----------------------------------------------------------------------------------


def _items(data: dict[str, Any], categories: frozenset[str]) -> list[DataItem]:
    raw = data.get("data", [])
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise Unprocessable(f"data must be a list of at most {MAX_ITEMS} items.", code="invalid_field")
    items = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise Unprocessable(f"data[{index}] must be an object.", code="invalid_field")
        category = entry.get("category")
        if not isinstance(category, str) or category not in categories:
            raise Unprocessable(f"data[{index}].category is not a known category.", code="unknown_category")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Unprocessable(f"data[{index}].value must be a string or a number.", code="invalid_field")
        value = str(value)
        if not value.strip() or len(value) > MAX_VALUE or v._CONTROL.search(value):
            raise Unprocessable(f"data[{index}].value must be 1..{MAX_VALUE} printable characters.",
                                code="invalid_field")
        consent_id = v.identifier(entry, "consent_id", required=False)
        items.append(DataItem(category=category, value=value, consent_id=consent_id,
                              referral=_referral(entry.get("referral"), index)))
    return items


def _referral(raw: Any, index: int) -> Referral | None:
    """The recorded ground of a § 35(2) referral without consent (sosiaalihuoltolaki 1301/2014)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Unprocessable(f"data[{index}].referral must be {{condition, justification, why_no_consent}}.",
                            code="invalid_field")
    condition = v.choice(raw, "condition", REFERRAL_CONDITIONS)
    justification = v.text(raw, "justification", max_len=2000)
    # 35 § 2 mom. applies only when consent cannot be obtained: the record says why it could not.
    why = v.text(raw, "why_no_consent", max_len=2000)
    return Referral(condition=condition, justification=justification, why_no_consent=why)  # type: ignore[arg-type]


def sensitive_confirmation(data: dict[str, Any], known: frozenset[str]) -> Confirmation | None:
    """``sensitive_confirmation``: the sender confirms free text that looks like a category
    withheld from a recipient — the categories they were shown and a written reason. The
    attachment upload reads the same object from a multipart part of that name."""
    raw = data.get("sensitive_confirmation")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Unprocessable("sensitive_confirmation must be {reason, categories}.", code="invalid_field")
    reason = v.text(raw, "reason", max_len=1000, multiline=True)
    categories = raw.get("categories")
    if (not isinstance(categories, list) or not categories or len(categories) > len(known)
            or not all(isinstance(c, str) and c in known for c in categories)):
        raise Unprocessable("sensitive_confirmation.categories must list the flagged categories.",
                            code="invalid_field")
    return Confirmation(reason=confirmation_reason(reason or ""), categories=frozenset(categories))


async def _message_input(request: web.Request) -> tuple[str, list[DataItem], Confirmation | None]:
    data = await v.json_body(request)
    text = v.text(data, "text", max_len=10000, required=False, allow_empty=True) or ""
    known = vocab.of(request).categories
    return text, _items(data, known), sensitive_confirmation(data, known)


async def post_message(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    text, items, confirmation = await _message_input(request)
    body = await request.app[keys.MESSAGES].post(who, consultation_id, text, items, context(request),
                                                 confirmation=confirmation)
    return _json(body, status=201)


async def preview_message(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    text, items, _confirmation_ignored = await _message_input(request)
    return _json(await request.app[keys.MESSAGES].preview(who, consultation_id, text, items, context(request)))


async def list_messages(request: web.Request) -> web.Response:
    who = await authenticate(request)
    page = await request.app[keys.MESSAGES].list_for(
        who,
        v.path_id(request),
        limit=v.query_int(request, "limit"),
        cursor=request.query.get("cursor"),
        ctx=context(request),
    )
    return _json({"items": page.items, "next": page.next, "secrecy": secrecy.field()})


async def mark_read(request: web.Request) -> web.Response:
    who = await authenticate(request)
    consultation_id = v.path_id(request)
    data = await v.json_body(request)
    message_id = v.identifier(data, "message_id")
    body = await request.app[keys.MESSAGES].mark_read(who, consultation_id, message_id, context(request))  # type: ignore[arg-type]
    return _json(body)


_LIST_QUERY = (s.LIMIT_QUERY, s.CURSOR_QUERY)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", healthz, "Liveness", who="anyone", auth=False, response=s.HEALTH, errors=()),
    Route("GET", "/api/v1/me", me, "The caller as the service sees them", response=s.ME, errors=(401,)),
    Route("GET", "/api/v1/experts", list_experts, "Named experts with duty and presence",
          response=s.page(s.EXPERT), errors=(401,),
          query=(("org", {"type": "string"}, "only this organisation's experts"),)),
    Route("PUT", "/api/v1/experts/{user_id}", put_expert, action="expert.update", summary="Name or update an expert",
          who="admin of that org (an expert may set their own on_duty)", body=s.EXPERT_PUT, response=s.EXPERT),
    Route("POST", "/api/v1/consultations", create_consultation, action="consultation.create",
          summary="Open a consultation",
          who="advisor, social worker", body=s.CONSULTATION_NEW, response=s.CONSULTATION, status=201,
          errors=(400, 401, 403, 404, 409, 413, 422),
          other_responses=((409, "A question that looks like a category withheld from the target "
                                 "organisation (code sensitive_text, with the flagged passages): move it into a "
                                 "message data item or send again with sensitive_confirmation",
                            s.SENSITIVE_ERROR),)),
    Route("POST", "/api/v1/child-welfare-notifications", notify_child_welfare, action="child_welfare.notify",
          summary="Notify the county's child-welfare intake (lastensuojelulaki 417/2007 25 §): no consent, immediate, "
          "the notifier and the statutory basis recorded; one-way",
          who="Kela advisor (as the policy permits)", body=s.CHILD_WELFARE_NOTIFICATION_NEW,
          response=s.CHILD_WELFARE_NOTIFICATION, status=201, errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Text that looks like a category withheld from the intake (code sensitive_text): "
                                 "send again with sensitive_confirmation", s.SENSITIVE_ERROR),)),
    Route("GET", "/api/v1/child-welfare-notifications/{id}", get_child_welfare_notification,
          "A child-welfare notification with its notifier and basis", who="participants, the child-welfare intake",
          response=s.CHILD_WELFARE_NOTIFICATION, errors=(401, 404)),
    Route("GET", "/api/v1/consultations", list_consultations, "Consultations visible to the caller",
          who="participants, on-duty experts", response=s.page(s.CONSULTATION), errors=(400, 401),
          query=(("status", {"type": "string", "enum": list(STATUSES)}, "filter by status"), *_LIST_QUERY)),
    Route("GET", "/api/v1/consultations/{id}", get_consultation, "One consultation",
          who="participant, or an on-duty expert it is offered to", response=s.CONSULTATION, errors=(401, 404),
          secret=True),
    Route("POST", "/api/v1/consultations/{id}/claim", claim_consultation, action="consultation.claim",
          edge_checks_role=False,
          summary="Claim: the first expert wins",
          who="expert of the target org", response=s.CONSULTATION, errors=(401, 403, 404, 409)),
    Route("POST", "/api/v1/consultations/{id}/participants", add_participant, "Add a participant",
          who="participant", body=s.ADD_PARTICIPANT, response=s.CONSULTATION,
          errors=(400, 401, 403, 404, 409, 413, 415, 422)),
    Route("POST", "/api/v1/consultations/{id}/close", close_consultation, "Close with an outcome code",
          who="participant", body=s.CLOSE, response=s.CONSULTATION, errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Already closed, or a note that looks like a category withheld from a "
                                 "participant of another organisation (code sensitive_text, with the flagged "
                                 "passages): move it into a message data item or close again with "
                                 "sensitive_confirmation", s.SENSITIVE_ERROR),)),
    Route("POST", "/api/v1/consultations/{id}/messages", post_message, "Post a message with data items",
          who="participant", body=s.MESSAGE_NEW, response=s.MESSAGE, status=201,
          errors=(400, 401, 403, 404, 409, 413, 415, 422),
          other_responses=((409, "Closed, or free text that looks like a category withheld from a recipient "
                                 "(code sensitive_text, with the flagged passages): move it into a data item or "
                                 "send again with sensitive_confirmation", s.SENSITIVE_ERROR),)),
    Route("POST", "/api/v1/consultations/{id}/messages/preview", preview_message,
          "What the policy would withhold from whom, and what the identifier scan found — nothing is stored",
          who="participant", body=s.MESSAGE_NEW, response=s.PREVIEW, errors=(400, 401, 403, 404, 409, 413, 415, 422)),
    Route("GET", "/api/v1/consultations/{id}/messages", list_messages, "Messages as this reader may see them",
          secret=True,
          who="participant", response=s.marked(s.page(s.MESSAGE)), errors=(400, 401, 404), query=_LIST_QUERY),
    Route("POST", "/api/v1/consultations/{id}/read", mark_read, "Read receipt up to a message",
          who="participant", body=s.MARK_READ, response=s.READ_RECEIPT,
          errors=(400, 401, 403, 404, 413, 415, 422)),
)
