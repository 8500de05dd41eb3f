"""The privacy officer's API over the audit log (docs/capabilities.md: public API, C5): tree heads,
checkpoints and proofs that anyone can check, searches, the client access report, exports,
anomalies and break-glass."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from consult.errors import BadRequest
from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http import vocabulary as vocab
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.schemas import Author, Instant, ItemOut, Secrecy, Status
from consult.http.shapes import Answer, Body, any_text
from consult.model import identifiers
from consult.model.audit_fields import ProblemKind
from consult.services import log_extract as log_extract_words
from consult.services.audit import EXPORT_FORMATS, JUSTIFICATION_MAX, JUSTIFICATION_MIN, AuditQuery

_ID = identifiers.USER_ID
_NAME = re.compile(r"^[a-z0-9_.:-]{1,64}$")
_MAX_INDEX = 1 << 62
PO = "privacy officer"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _text(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def _id(request: web.Request, name: str, *, pattern: re.Pattern[str] = _ID) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not pattern.match(raw):
        raise BadRequest(f"{name} is not a valid value.", code="bad_query")
    return raw


def _index(request: web.Request, name: str, *, required: bool) -> int | None:
    return v.query_int(request, name, required=required, high=_MAX_INDEX)


def _query(request: web.Request) -> AuditQuery:
    actions = _id(request, "action", pattern=re.compile(r"^[a-z0-9_.]{1,64}(,[a-z0-9_.]{1,64}){0,9}$"))
    category = _id(request, "category", pattern=_NAME)
    if category is not None and category not in vocab.of(request).categories:
        raise BadRequest("category is not a known category.", code="bad_query")
    return AuditQuery(
        client_ref=identifiers.as_client_ref(_id(request, "client_ref")),
        actor_id=_id(request, "actor"),
        actions=tuple(actions.split(",")) if actions else (),
        outcome=v.query_choice(request, "outcome", ("permit", "deny")),
        category=category,
        basis=_id(request, "basis", pattern=re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")),
        consultation_id=_id(request, "consultation_id"),
        since=v.query_instant(request, "from", day="start"),
        until=v.query_instant(request, "to", day="next_start"),
    )


def _trail(request: web.Request):  # type: ignore[no-untyped-def]
    return request.app[keys.AUDIT]


# -- tree, checkpoints, proofs -------------------------------------------------------------------


async def tree_head(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).tree_head(who))


async def checkpoint(request: web.Request) -> web.Response:
    who = caller(request)
    return _text(await _trail(request).checkpoint(who))


async def verifier_key(request: web.Request) -> web.Response:
    who = caller(request)
    return _text(_trail(request).verifier_key(who) + "\n")


async def inclusion_proof(request: web.Request) -> web.Response:
    who = caller(request)
    index = _index(request, "index", required=True)
    size = _index(request, "size", required=False)
    return _json(await _trail(request).inclusion(who, index, size))


async def consistency_proof(request: web.Request) -> web.Response:
    who = caller(request)
    first = _index(request, "first", required=True)
    second = _index(request, "second", required=False)
    return _json(await _trail(request).consistency(who, first, second))


async def verify(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).verify(who, context(request)))


# -- searches, report, export, anomalies ----------------------------------------------------------


async def events(request: web.Request) -> web.Response:
    who = caller(request)
    q = _query(request)
    return _json(await _trail(request).events(who, q, limit=v.query_int(request, "limit"),
                                              cursor=request.query.get("cursor"), ctx=context(request)))


async def disclosures(request: web.Request) -> web.Response:
    who = caller(request)
    q = _query(request)
    return _json(await _trail(request).disclosures(who, q, limit=v.query_int(request, "limit"),
                                                   cursor=request.query.get("cursor"), ctx=context(request)))


async def access_report(request: web.Request) -> web.Response:
    who = caller(request)
    ref = v.path_id(request, "ref")
    reason = request.query.get("reason")
    if reason is not None and len(reason) > 4000:
        raise BadRequest("reason is too long.", code="bad_query")
    return _json(await _trail(request).access_report(
        who, ref, since=v.query_instant(request, "from", day="start"),
        until=v.query_instant(request, "to", day="next_start"),
        reason=reason, ctx=context(request)))


async def log_extract(request: web.Request) -> web.Response:
    who = caller(request)
    ref = v.path_id(request, "ref")
    lang = v.query_choice(request, "lang", ("fi", "sv")) or "fi"
    reason = request.query.get("reason")
    if reason is not None and len(reason) > 4000:
        raise BadRequest("reason is too long.", code="bad_query")
    policy = request.app[keys.POLICY].policy
    return _json(await _trail(request).log_extract(
        who, ref, lang=lang, since=v.query_instant(request, "from", day="start"),
        until=v.query_instant(request, "to", day="next_start"), reason=reason, ctx=context(request),
        org_names={org: log_extract_words.plain_name(name) for org, name in policy.organisation_names.items()},
        citation=lambda rule_id: _statute(policy, rule_id)))


def _statute(policy, rule_id: str) -> str | None:  # type: ignore[no-untyped-def]
    """The statute a permit rule's secrecy exception cites, for the client's extract."""
    rule = next((r for r in policy.rules if r.id == rule_id), None)
    if rule is None or rule.secrecy is None or rule.secrecy.exception != "statute":
        return None
    return str(rule.secrecy.citation)


async def anomalies(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).anomalies(
        who, since=v.query_instant(request, "from", day="start"),
        until=v.query_instant(request, "to", day="next_start"),
        limit=v.query_int(request, "limit"), cursor=request.query.get("cursor"), ctx=context(request)))


async def export(request: web.Request) -> web.StreamResponse:
    who = caller(request)
    fmt = v.query_choice(request, "format", EXPORT_FORMATS) or "jsonl"
    q = _query(request)
    lines = await _trail(request).export(who, q, fmt, context(request))
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl; charset=utf-8",
        "Content-Disposition": f'attachment; filename="audit-export.{fmt}"',
    })
    await response.prepare(request)
    async for chunk in lines:
        await response.write(chunk.encode("utf-8"))
    await response.write_eof()
    return response


class BreakGlassBody(Body):
    justification: Annotated[str, any_text(4000, description=(
        f"Why the content must be opened: {JUSTIFICATION_MIN} to {JUSTIFICATION_MAX} characters once trimmed, "
        "no identifiers (else 422 reason_required, invalid_field or identifier_in_text)"))] | None = None


async def break_glass(request: web.Request, body: BreakGlassBody) -> web.Response:
    return _json(await _trail(request).break_glass(caller(request), v.path_id(request, "id"), body.justification,
                                                   context(request)))


async def reason(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).reason(who, v.path_id(request, "id"), context(request)))


# -- the route table ---------------------------------------------------------------------------------

_Q_INT = s.INDEX
_Q_TIME = (s.TIME_OR_DATE, "ISO 8601 time with zone, or a date (Helsinki)")
_FILTERS: tuple[tuple[str, s.S, str], ...] = (
    ("client_ref", {"type": "string", "maxLength": 128}, "the client"),
    ("actor", {"type": "string", "maxLength": 128}, "the user who acted"),
    ("action", {"type": "string", "maxLength": 650}, "action, or several comma-separated"),
    ("outcome", {"type": "string", "enum": ["permit", "deny"]}, "permit or deny"),
    ("category", {"type": "string", "enum": s.CATEGORY_NAMES}, "data category"),
    ("basis", {"type": "string", "maxLength": 200}, "statute, consent, internal, or an exact basis"),
    ("consultation_id", {"type": "string", "maxLength": 128}, "the consultation"),
    ("from", *_Q_TIME),
    ("to", *_Q_TIME),
)
_PAGING: tuple[tuple[str, s.S, str], ...] = (
    s.LIMIT_QUERY,
    s.CURSOR_QUERY,
)
Hex = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
Index = Annotated[int, Meta(ge=0)]
Day = date


class Actor(Answer):
    id: str | None
    org: str | None
    role: str | None


class ConsentRef(Answer):
    id: str
    version: int | None


class RecipientRef(Answer):
    org: str | None
    role: str | None


class Event(Answer):
    leaf_index: Index
    id: str
    at: Instant
    actor: Actor
    action: str
    outcome: str
    consultation_id: str | None
    message_id: str | None
    client_ref: str | None
    categories: list[str]
    purpose: str | None
    basis: str | None
    rule_id: str | None
    policy_version: str | None
    consent: ConsentRef | None
    subject_user: str | None
    recipient: RecipientRef | None
    flags: list[str]
    reason_id: str | None
    request_id: str | None
    source: str | None
    leaf_hash: Hex


class EventPage(Answer):
    items: list[Event]
    next: str | None


class DisclosedTo(Answer):
    org: str | None
    role: str | None
    user_id: str | None


class Disclosure(Answer, rename={"sender": "from", "recipient": "to"}):
    leaf_index: Index
    at: Instant
    client_ref: str | None
    consultation_id: str | None
    message_id: str | None
    categories: list[str]
    sender: Actor
    recipient: DisclosedTo
    outcome: str
    purpose: str | None
    basis: str | None
    rule_id: str | None
    policy_version: str | None
    consent: ConsentRef | None
    flags: list[str]


class DisclosurePage(Answer):
    items: list[Disclosure]
    next: str | None


class SignedAt(Answer):
    tree_size: Index
    signed_at: Instant


class TreeHead(Answer):
    tree_size: Index
    root_hash: Hex
    timestamp: Instant
    origin: str
    checkpoint: SignedAt | None


class Inclusion(Answer):
    leaf_index: Index
    tree_size: Index
    leaf_hash: Hex
    path: list[Hex]
    root_hash: Hex


class Consistency(Answer):
    first: Index
    second: Index
    first_hash: Hex
    second_hash: Hex
    path: list[Hex]


class ReasonActor(Answer):
    id: str
    org: str


class Reason(Answer):
    id: str
    kind: str
    text: str
    at: Instant
    actor: ReasonActor


class Problem(Answer):
    """A fault the verification found: what kind, in words, and where (a leaf, a checkpoint row)."""

    kind: ProblemKind
    detail: str
    leaf_index: Index | None
    checkpoint: int | None


class CheckpointFileState(Answer):
    status: Literal["absent", "read", "unreadable"]
    newest_size: Index | None


class RestoredTo(Answer):
    """The log holds ``size`` records, fewer than ``checkpoint`` signed later."""

    size: Index
    checkpoint: Index


class Verification(Answer):
    ok: bool
    size: Index
    root_hash: Hex
    records: Index
    checkpoints: Index
    checkpoints_verified: Index
    external_checkpoints: Index
    first_bad_index: Index | None
    first_bad_range: Annotated[tuple[Index, Index], Meta(
        description="the first bad entry is among leaves first..second-1 (when only a root tells)")] | None
    problems: list[Problem]
    state: Literal["intact", "tampered", "restored"]
    summary: str
    anchored_size: Index
    checkpoint_file: CheckpointFileState
    restored: RestoredTo | None
    restore_acknowledged: bool


class Period(Answer, rename={"since": "from", "until": "to"}):
    since: datetime
    until: datetime


class Person(Answer):
    """A member of staff as the directory names them (``name`` null where it does not)."""

    id: str | None
    name: str | None
    org: str | None
    role: str | None


class Staff(Answer):
    id: str
    name: str | None
    org: str


class Processing(Answer):
    leaf_index: Index
    at: datetime
    who: Person
    action: str
    outcome: str
    purpose: str | None
    basis: str | None
    consultation_id: str | None
    categories: list[str]
    flags: list[str]


class ReportedDisclosure(Answer, rename={"sender": "from", "recipient": "to"}):
    leaf_index: Index
    at: datetime
    sender: Person
    recipient: Person
    categories: list[str]
    outcome: str
    purpose: str | None
    basis: str | None
    rule_id: str | None
    consent: ConsentRef | None
    consultation_id: str | None
    flags: list[str]


class ReportSummary(Answer):
    records: Index
    processed_by: list[Staff]
    organisations: list[str]
    disclosed: Index
    withheld: Index


class AccessReport(Answer):
    client_ref: str
    merged_refs: Annotated[list[str], Meta(description="references merged into this client as duplicates of one "
                                                       "identity code; their records are included")]
    organisation: str
    period: Period
    generated_at: datetime
    processing: list[Processing]
    disclosures: list[ReportedDisclosure]
    summary: ReportSummary
    truncated: bool
    tree_size: Index
    secrecy: Secrecy


class ExtractLine(Answer):
    """One line of the extract in words: when (local time), who, what, which data, to whom, on what basis."""

    at: str
    who: str
    what: str
    data: str | None
    to: str | None
    basis: str


class LogExtract(Answer):
    client_ref: str
    lang: Literal["fi", "sv"]
    organisation: str
    period: Period
    generated_at: datetime
    used: list[ExtractLine]
    disclosed: list[ExtractLine]
    truncated: bool
    text: Annotated[str, Meta(description="the printable extract, secrecy marking first and last")]
    secrecy: Secrecy


class Flagged(Answer):
    actor: ReasonActor
    at: datetime
    leaf_index: Index


class ManyClients(Flagged, tag_field="kind", tag="many_clients"):
    """More distinct clients in an hour than the threshold, by one user."""

    until: datetime
    count: int
    threshold: int


class OffHours(Flagged, tag_field="kind", tag="off_hours"):
    """Access outside office hours on one day (Helsinki), by one user: the first and the last."""

    until: datetime
    date: Day
    count: int
    office_hours: str


class FlaggedRecord(Flagged):
    consultation_id: str | None
    client_ref: str | None
    recipient_org: str | None


class BreakGlassFlag(FlaggedRecord, tag_field="kind", tag="break_glass"):
    """A break-glass opening of a consultation's content."""


class ReferralFlag(FlaggedRecord, tag_field="kind", tag="referral_without_consent"):
    """A disclosure without consent on a recorded ground (sosiaalihuoltolaki 35 § 2 mom.)."""


class SensitiveTextFlag(FlaggedRecord, tag_field="kind", tag="sensitive_free_text"):
    """Free text sent on the sender's confirmation that it looked like a withheld category."""


class AnomalyRulesShown(Answer):
    clients_per_hour: int
    office_hours: str
    office_days: str
    timezone: str


class AnomalyPage(Answer):
    items: list[ManyClients | OffHours | BreakGlassFlag | ReferralFlag | SensitiveTextFlag]
    next: str | None
    rules: AnomalyRulesShown


class OpenedConsultation(Answer):
    id: str
    topic: str
    status: Status
    purpose: str
    origin_org: str
    target_org: str
    client_ref: str | None
    question: str
    created_at: datetime
    closed_at: datetime | None


class OpenedItem(ItemOut):
    """An item as the officer's organisation may see it; a withheld one names the basis of the decision."""

    basis: str | UnsetType = UNSET


class OpenedMessage(Answer):
    id: str
    author: Author
    text: str
    data: list[OpenedItem]
    content_destroyed: bool
    created_at: datetime


class Recorded(Answer):
    leaf_index: Index
    flagged: bool


class BreakGlass(Answer):
    consultation: OpenedConsultation
    organisation: str
    messages: list[OpenedMessage]
    audit: Recorded
    secrecy: Secrecy


AUDIT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/audit/events", events, action="audit.read",
          summary="Search the access log (newest first); the search is logged",
          who=PO, response=EventPage, query=_FILTERS + _PAGING, errors=(400, 401, 403, 422), secret=True),
    Route("GET", "/api/v1/audit/disclosures", disclosures, action="audit.read",
          summary="Disclosures: which categories went to whom, on what basis; the search is logged",
          who=PO, response=DisclosurePage, query=_FILTERS + _PAGING, errors=(400, 401, 403, 422),
          secret=True),
    Route("GET", "/api/v1/audit/export", export, action="audit.read",
          summary="Export matching records as CSV or JSON Lines; the export is logged",
          who=PO, query=(("format", {"type": "string", "enum": list(EXPORT_FORMATS)}, "csv or jsonl (default)"),
                         *_FILTERS), content_type="application/jsonl", other_content_types=("text/csv",),
          response=str, secret=True,
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/audit/anomalies", anomalies, action="audit.read",
          summary="Anomaly flags: many clients per hour, off-hours access, break-glass, referrals without consent",
          who=PO, response=AnomalyPage, query=(("from", *_Q_TIME), ("to", *_Q_TIME), *_PAGING),
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/audit/verify", verify, action="audit.read",
          summary="Recompute the whole log and check every signed checkpoint",
          who=PO, response=Verification, errors=(401, 403)),
    Route("GET", "/api/v1/audit/tree-head", tree_head, action="audit.read",
          summary="The current RFC 9162 tree head", who=PO,
          response=TreeHead, errors=(401, 403)),
    Route("GET", "/api/v1/audit/checkpoint", checkpoint, action="audit.read",
          summary="The newest tree head as a C2SP tlog-checkpoint in an Ed25519 signed note", who=PO,
          content_type="text/plain", response=str, errors=(401, 403)),
    Route("GET", "/api/v1/audit/verifier-key", verifier_key, action="audit.read",
          summary="The signed-note verifier key of the log", who=PO,
          content_type="text/plain", response=str, errors=(401, 403)),
    Route("GET", "/api/v1/audit/proof/inclusion", inclusion_proof, action="audit.read",
          summary="RFC 9162 inclusion proof", who=PO,
          response=Inclusion, query=(("index", _Q_INT, "leaf index"), ("size", _Q_INT, "tree size (default: now)")),
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/audit/proof/consistency", consistency_proof, action="audit.read",
          summary="RFC 9162 consistency proof", who=PO,
          response=Consistency,
          query=(("first", _Q_INT, "older tree size"), ("second", _Q_INT, "newer tree size (default: now)")),
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/clients/{ref}/access-report", access_report, action="audit.read",
          summary="The client access report: who processed the client's data, to whom it was disclosed, when, on what "
          "basis (two years; older with a written reason); the report is logged",
          who=PO, response=AccessReport, secret=True,
          query=(("from", *_Q_TIME), ("to", *_Q_TIME),
                 ("reason", {"type": "string", "maxLength": 2000}, "why, when reaching back over two years")),
          errors=(400, 401, 403, 404, 422)),
    Route("GET", "/api/v1/clients/{ref}/log-extract", log_extract, action="audit.read",
          summary="The log extract (lokitieto-ote, loggutdrag) to hand to the client, in Finnish or Swedish: "
          "who used or received the client's data, when, what and on what basis, in words (laki 703/2023 11 §); "
          "the same records as the access report, permitted ones only; logged like it",
          who=PO, response=LogExtract, secret=True,
          query=(("lang", {"type": "string", "enum": ["fi", "sv"]}, "fi (default) or sv"),
                 ("from", *_Q_TIME), ("to", *_Q_TIME),
                 ("reason", {"type": "string", "maxLength": 2000}, "why, when reaching back over two years")),
          errors=(400, 401, 403, 404, 422)),
    Route("GET", "/api/v1/audit/reasons/{id}", reason,
          "A written reason kept beside the log (a sender's confirmation of sensitive free text, a "
          "break-glass justification); reading it is logged",
          who="privacy officer of an organisation its records concern", response=Reason,
          errors=(401, 403, 404)),
    Route("POST", "/api/v1/consultations/{id}/break-glass", break_glass,
          "Open a consultation's content with a written justification, as the officer's own organisation may see "
          "it through the policy (another organisation's withheld items stay withheld); logged and flagged",
          who="privacy officer of a party organisation", body=BreakGlassBody, response=BreakGlass, secret=True,
          errors=(400, 401, 403, 404, 413, 415, 422)),
)
