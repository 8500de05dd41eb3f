"""The privacy officer's API over the audit log (docs/capabilities.md: public API, C5): tree heads,
checkpoints and proofs that anyone can check, searches, the client access report, exports,
anomalies and break-glass."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import UNSET, Meta, UnsetType, field

from consult.http import keys
from consult.http import schemas as s
from consult.http import validation as v
from consult.http.principal import caller, context
from consult.http.route import Route
from consult.http.schemas import Author, Instant, ItemOut, Secrecy
from consult.http.shapes import Answer, Body, CategoryName, Query, UserId, any_text, whole
from consult.model import identifiers
from consult.model.audit_fields import ProblemKind
from consult.model.vocabulary import Status
from consult.services import log_extract as log_extract_words
from consult.services.audit import JUSTIFICATION_MAX, JUSTIFICATION_MIN, AuditQuery, ExportFormat

PO = "privacy officer"
#: The longest written reason the edge takes (white space around it included); the service keeps
#: ``JUSTIFICATION_MIN``..``JUSTIFICATION_MAX`` characters once trimmed.
REASON_MAX = 2 * JUSTIFICATION_MAX


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _text(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


class AuditFilter(Query):
    """Which records a search, an export or the disclosures view takes (all when none is given)."""

    client_ref: Annotated[UserId, Meta(description="the client")] | None = None
    actor: Annotated[UserId, Meta(description="the user who acted")] | None = None
    action: Annotated[str, Meta(pattern=whole(r"[a-z0-9_.]{1,64}(,[a-z0-9_.]{1,64}){0,9}"), max_length=650,
                                description="an action, or up to ten comma-separated")] | None = None
    outcome: Annotated[Literal["permit", "deny"], Meta(description="permit or deny")] | None = None
    category: Annotated[CategoryName, Meta(description="data category")] | None = None
    basis: Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_.:@-]{1,200}"),
                               description="statute, consent, internal, or an exact basis")] | None = None
    consultation_id: Annotated[UserId, Meta(description="the consultation")] | None = None
    since: s.Since | None = field(default=None, name="from")
    until: s.Until | None = field(default=None, name="to")

    def audit_query(self) -> AuditQuery:
        return AuditQuery(
            client_ref=identifiers.as_client_ref(self.client_ref), actor_id=self.actor,
            actions=tuple(self.action.split(",")) if self.action else (), outcome=self.outcome,
            category=self.category, basis=self.basis, consultation_id=self.consultation_id,
            since=self.since, until=self.until)


class AuditSearch(AuditFilter):
    limit: s.Limit | None = None
    cursor: s.Cursor | None = None


class AuditExport(AuditFilter):
    format: Annotated[ExportFormat, Meta(description="csv or jsonl (default)")] = "jsonl"


class Window(Query):
    since: s.Since | None = field(default=None, name="from")
    until: s.Until | None = field(default=None, name="to")


class AnomalyQuery(Window):
    limit: s.Limit | None = None
    cursor: s.Cursor | None = None


class Reaching(Window):
    reason: Annotated[str, any_text(REASON_MAX, description="why, when reaching back over two years")] | None = None


class ExtractQuery(Reaching):
    lang: Annotated[Literal["fi", "sv"], Meta(description="fi (default) or sv")] = "fi"


class InclusionQuery(Query):
    index: Annotated[s.Position, Meta(description="leaf index")]
    size: Annotated[s.Position, Meta(description="tree size (default: now)")] | None = None


class ConsistencyQuery(Query):
    first: Annotated[s.Position, Meta(description="older tree size")]
    second: Annotated[s.Position, Meta(description="newer tree size (default: now)")] | None = None


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


async def inclusion_proof(request: web.Request, *, query: InclusionQuery) -> web.Response:
    return _json(await _trail(request).inclusion(caller(request), query.index, query.size))


async def consistency_proof(request: web.Request, *, query: ConsistencyQuery) -> web.Response:
    return _json(await _trail(request).consistency(caller(request), query.first, query.second))


async def verify(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).verify(who, context(request)))


# -- searches, report, export, anomalies ----------------------------------------------------------


async def events(request: web.Request, *, query: AuditSearch) -> web.Response:
    return _json(await _trail(request).events(caller(request), query.audit_query(), limit=query.limit,
                                              cursor=query.cursor, ctx=context(request)))


async def disclosures(request: web.Request, *, query: AuditSearch) -> web.Response:
    return _json(await _trail(request).disclosures(caller(request), query.audit_query(), limit=query.limit,
                                                   cursor=query.cursor, ctx=context(request)))


async def access_report(request: web.Request, *, query: Reaching) -> web.Response:
    return _json(await _trail(request).access_report(
        caller(request), v.path_id(request, "ref"), since=query.since, until=query.until, reason=query.reason,
        ctx=context(request)))


async def log_extract(request: web.Request, *, query: ExtractQuery) -> web.Response:
    policy = request.app[keys.POLICY].policy
    return _json(await _trail(request).log_extract(
        caller(request), v.path_id(request, "ref"), lang=query.lang, since=query.since, until=query.until,
        reason=query.reason, ctx=context(request),
        org_names={org: log_extract_words.plain_name(name) for org, name in policy.organisation_names.items()},
        citation=lambda rule_id: _statute(policy, rule_id)))


def _statute(policy, rule_id: str) -> str | None:  # type: ignore[no-untyped-def]
    """The statute a permit rule's secrecy exception cites, for the client's extract."""
    rule = next((r for r in policy.rules if r.id == rule_id), None)
    if rule is None or rule.secrecy is None or rule.secrecy.exception != "statute":
        return None
    return str(rule.secrecy.citation)


async def anomalies(request: web.Request, *, query: AnomalyQuery) -> web.Response:
    return _json(await _trail(request).anomalies(
        caller(request), since=query.since, until=query.until, limit=query.limit, cursor=query.cursor,
        ctx=context(request)))


async def export(request: web.Request, *, query: AuditExport) -> web.StreamResponse:
    fmt = query.format
    lines = await _trail(request).export(caller(request), query.audit_query(), fmt, context(request))
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
    justification: Annotated[str, any_text(REASON_MAX, description=(
        f"Why the content must be opened: {JUSTIFICATION_MIN} to {JUSTIFICATION_MAX} characters once trimmed, "
        "no identifiers (else 422 reason_required, invalid_field or identifier_in_text)"))] | None = None


async def break_glass(request: web.Request, body: BreakGlassBody) -> web.Response:
    return _json(await _trail(request).break_glass(caller(request), v.path_id(request, "id"), body.justification,
                                                   context(request)))


async def reason(request: web.Request) -> web.Response:
    who = caller(request)
    return _json(await _trail(request).reason(who, v.path_id(request, "id"), context(request)))


# -- the route table ---------------------------------------------------------------------------------

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
          who=PO, response=EventPage, query=AuditSearch, errors=(400, 401, 403, 422), secret=True),
    Route("GET", "/api/v1/audit/disclosures", disclosures, action="audit.read",
          summary="Disclosures: which categories went to whom, on what basis; the search is logged",
          who=PO, response=DisclosurePage, query=AuditSearch, errors=(400, 401, 403, 422),
          secret=True),
    Route("GET", "/api/v1/audit/export", export, action="audit.read",
          summary="Export matching records as CSV or JSON Lines; the export is logged",
          who=PO, query=AuditExport, content_type="application/jsonl", other_content_types=("text/csv",),
          response=str, secret=True,
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/audit/anomalies", anomalies, action="audit.read",
          summary="Anomaly flags: many clients per hour, off-hours access, break-glass, referrals without consent",
          who=PO, response=AnomalyPage, query=AnomalyQuery,
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
          response=Inclusion, query=InclusionQuery,
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/audit/proof/consistency", consistency_proof, action="audit.read",
          summary="RFC 9162 consistency proof", who=PO,
          response=Consistency,
          query=ConsistencyQuery,
          errors=(400, 401, 403, 422)),
    Route("GET", "/api/v1/clients/{ref}/access-report", access_report, action="audit.read",
          summary="The client access report: who processed the client's data, to whom it was disclosed, when, on what "
          "basis (two years; older with a written reason); the report is logged",
          who=PO, response=AccessReport, secret=True, query=Reaching,
          errors=(400, 401, 403, 404, 422)),
    Route("GET", "/api/v1/clients/{ref}/log-extract", log_extract, action="audit.read",
          summary="The log extract (lokitieto-ote, loggutdrag) to hand to the client, in Finnish or Swedish: "
          "who used or received the client's data, when, what and on what basis, in words (laki 703/2023 11 §); "
          "the same records as the access report, permitted ones only; logged like it",
          who=PO, response=LogExtract, secret=True, query=ExtractQuery,
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
