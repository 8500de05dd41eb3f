"""The shapes of the public API (docs/capabilities.md, public API): each request body and success
answer declared once as a msgspec ``Struct`` (consult/http/shapes.py), from which the edge reads bodies, the
development-mode answer check runs and the OpenAPI document is generated. Every route declares its query parameters,
JSON body and answers this way (here, or beside its route).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from msgspec import UNSET, Meta, UnsetType

from consult.http.shapes import (
    DAY,
    FORM,
    Answer,
    Body,
    CategoryName,
    FilePart,
    ItemCategory,
    Name,
    OrgId,
    PurposeName,
    Query,
    TopicName,
    UserId,
    any_text,
    line,
    text,
)
from consult.model.vocabulary import Status
from consult.services.consultations import SEARCH_MAX_CHARS, SEARCH_MAX_WORDS
from consult.services.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_POSITION

Urgency = Literal["immediate", "today", "normal"]
Outcome = Literal["advice_given", "data_disclosed", "declined", "referred"]
ReferralCondition = Literal["unable_to_look_after_self", "child_interest"]
Instant = datetime | None
Names = list[str]


# -- request bodies ------------------------------------------------------------------------------


class SensitiveConfirmation(Body):
    """The sender confirms free text that was flagged: the categories they were shown and why the
    text must say it. Recorded in the audit log (the reason beside it); the reason must not
    contain identifiers."""

    reason: Annotated[str, text(1000, min_length=10)]
    categories: Annotated[list[CategoryName], Meta(min_length=1, max_length=200)]


class ExpertPut(Body):
    name: Annotated[str, line(200)] | None = None
    topics: Annotated[list[Name], Meta(max_length=50)] | None = None
    pools: Annotated[list[Name], Meta(max_length=50)] | None = None
    languages: Annotated[list[Name], Meta(max_length=50)] | None = None
    on_duty: bool | None = None


class NewConsultationBody(Body):
    topic: TopicName
    urgency: Urgency
    question: Annotated[str, text(10000)]
    purpose: PurposeName
    target_org: OrgId
    expert_id: UserId | None = None
    pool: UserId | None = None
    client_ref: UserId | None = None
    case_ref: Annotated[str, line(128)] | None = None
    sensitive_confirmation: SensitiveConfirmation | None = None


class ChildWelfareNotificationBody(Body):
    target_org: OrgId
    client_ref: Annotated[UserId, Meta(description="The client whose matter gave rise to the concern")]
    text: Annotated[str, text(10000, description="The concern")]
    topic: TopicName | None = None
    sensitive_confirmation: SensitiveConfirmation | None = None


class AddParticipant(Body):
    user_id: UserId


class CloseBody(Body):
    outcome: Outcome
    note: Annotated[str, text(2000)] | None = None
    #: A note that looks like a category withheld from another organisation's participant.
    sensitive_confirmation: SensitiveConfirmation | None = None


class ReferralBody(Body):
    """The recorded ground of a sosiaalihuoltolaki 35 § 2 mom. contact without consent."""

    condition: ReferralCondition
    justification: Annotated[str, text(2000)]
    why_no_consent: Annotated[str, text(2000, description="Why the person's consent could not be obtained")]


MAX_VALUE = 4000


class ItemIn(Body):
    category: ItemCategory
    value: Annotated[str, text(MAX_VALUE)] | int | float
    consent_id: UserId | None = None
    referral: ReferralBody | None = None


class MessageNew(Body):
    text: Annotated[str, any_text(10000)] | None = None
    data: Annotated[list[ItemIn], Meta(max_length=50)] | None = None
    sensitive_confirmation: SensitiveConfirmation | None = None


class MarkRead(Body):
    message_id: UserId


class ConsultationSearch(Body):
    """A search of the caller's consultations, in the body so that the words typed (which may
    be what a client said) are in no URL: no proxy log, browser history or Referer holds them."""

    q: Annotated[str, text(SEARCH_MAX_CHARS, description=(
        f"words that must all be found (case-insensitive) in what the caller may read of a consultation: its "
        f"question, case and client reference, codes; at most {SEARCH_MAX_WORDS} words. A refusal never "
        "repeats it"))]
    status: Status | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] | None = None
    cursor: Annotated[str, Meta(max_length=200, description="the `next` of the previous answer")] | None = None


# -- answers ---------------------------------------------------------------------------------------


class Health(Answer):
    status: str


class Me(Answer):
    id: str
    org: str
    roles: Names
    name: str


class Expert(Answer):
    id: str
    name: str
    org: str
    topics: Names
    pools: Names
    languages: Names
    on_duty: bool
    presence: Literal["online", "offline"]
    updated_at: Instant = None


class ExpertPage(Answer):
    items: list[Expert]
    next: str | None


class Participant(Answer):
    user_id: str
    org: str
    role: str
    added_at: Instant = None


class Recipient(Answer):
    user_id: str | None
    org: str
    role: str


class Withholding(Answer):
    recipient: Recipient
    rule: str
    citation: str
    reason: str


class SensitivePassage(Answer):
    """A passage of the free text that looks like a category the policy withholds from a
    recipient in another organisation (policies/signals.toml); start/end index the text as sent."""

    category: str
    start: Annotated[int, Meta(ge=0)]
    end: Annotated[int, Meta(ge=0)]
    withheld_from: list[Withholding]
    signal: str | UnsetType = UNSET


class IdentifierNotice(Answer):
    """An identifier found in free text and what happens to it: its kind, never its value."""

    kind: str
    action: str
    start: int | UnsetType = UNSET
    end: int | UnsetType = UNSET
    client_ref: str | UnsetType = UNSET
    #: The data item whose value holds it (``data[i].value``); absent for the text.
    field: str | UnsetType = UNSET


class Notifier(Answer):
    user_id: str
    name: str | None
    org: str
    role: str


class Notification(Answer):
    notifier: Notifier
    rule_id: str | None
    basis: str | None
    citation: str | None
    policy_version: str | None
    notified_at: Instant


class RoutingPlan(Answer):
    state: str
    offered_to: int
    on_duty: int
    at_capacity: int
    sla_seconds: int
    sla_due_at: Instant
    next_on_duty: Instant
    expected_wait_seconds: int | None
    queue_position: int | None
    #: Of those offered it, how many are connected now (on any instance).
    offered_online: int | UnsetType = UNSET
    # Read back while open (GET of a consultation): the stored step and the time of the reading.
    stage: str | UnsetType | None = UNSET
    offers: int | UnsetType | None = UNSET
    next_step_at: Instant | UnsetType = UNSET
    escalated_pool: str | UnsetType | None = UNSET
    as_of: Instant | UnsetType = UNSET


class Consultation(Answer):
    id: str
    topic: str
    urgency: Urgency
    question: str
    purpose: str
    origin_org: str
    created_by: str
    target_org: str
    pool: str | None
    expert_id: str | None
    client_ref: str | None
    case_ref: str | None
    status: Status
    claimed_by: str | None
    outcome: str | None
    outcome_note: str | None
    legal_hold: bool
    flagged_categories: Annotated[Names, Meta(description="categories the question looked like, sent on the "
                                                           "sender's confirmation")]
    outcome_flagged_categories: Annotated[Names, Meta(description="categories the close note looked like, sent "
                                                                   "on the closer's confirmation")]
    content_destroyed: bool
    created_at: Instant
    claimed_at: Instant
    first_response_at: Instant
    closed_at: Instant
    shredded_at: Instant
    participants: list[Participant] | UnsetType = UNSET
    offered_to: int | UnsetType = UNSET
    identifiers: list[IdentifierNotice] | UnsetType = UNSET
    sensitive: list[SensitivePassage] | UnsetType = UNSET
    #: Where an open consultation stands in routing (on creation, and on GET while it is open;
    #: null once claimed or closed).
    routing: RoutingPlan | UnsetType | None = UNSET
    notification: Notification | UnsetType | None = UNSET


class ChildWelfareNotification(Consultation):
    """A consultation with the notification it carries."""


class ConsultationPage(Answer):
    items: list[Consultation]
    next: str | None


class Author(Answer):
    id: str
    name: str | None
    org: str
    role: str


class ConsentState(Answer):
    id: str
    status: str
    since: Instant


class ReferralShown(Answer):
    condition: str


class ItemOut(Answer):
    category: str
    value: str | int | float | bool | UnsetType = UNSET
    consent_id: str | UnsetType = UNSET
    attachment_id: str | UnsetType = UNSET
    referral: ReferralShown | UnsetType = UNSET
    withheld: bool | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    rule: str | UnsetType = UNSET
    citation: str | UnsetType = UNSET
    consent: ConsentState | UnsetType = UNSET


class ReadMark(Answer):
    user_id: str
    read_at: Instant


class Withheld(Answer):
    recipient: Recipient
    index: int | None
    category: str
    effect: str
    rule: str
    citation: str
    reason: str


class PolicyOutcome(Answer):
    version: str
    withheld: list[Withheld]


class Message(Answer):
    id: str
    consultation_id: str
    author: Author
    text: str
    data: list[ItemOut]
    created_at: Instant
    flagged_categories: Annotated[Names, Meta(description="categories the free text looked like, sent on the "
                                                           "sender's confirmation")]
    content_destroyed: bool
    read_by: list[ReadMark]
    policy: PolicyOutcome | UnsetType = UNSET
    identifiers: list[IdentifierNotice] | UnsetType = UNSET
    sensitive: list[SensitivePassage] | UnsetType = UNSET


class Secrecy(Answer):
    """The secrecy marking of the answer, per language (julkisuuslaki 621/1999 § 24(1) 25 k.)."""

    fi: str
    sv: str
    en: str


class MessagePage(Answer):
    items: list[Message]
    next: str | None
    secrecy: Secrecy


class Preview(Answer):
    policy: PolicyOutcome
    identifiers: list[IdentifierNotice]
    sensitive: list[SensitivePassage]


class ReadReceipt(Answer):
    consultation_id: str
    user_id: str
    message_id: str
    read_at: Instant


class Ready(Answer):
    status: Literal["ready"]


Check = Literal["ok", "failed", "skipped"]


class Checks(Answer):
    database: Check
    schema: Check
    keys: Check
    policy: Check
    identity: Check


class NotReady(Answer):
    status: Literal["not_ready"]
    failed: list[Literal["database", "schema", "keys", "policy", "identity"]]
    checks: Checks


class Attachment(Answer):
    id: str
    content_type: str
    size: int
    message: Message


class Upload(Body):
    """An attachment upload (multipart/form-data): the file and the parts beside it, read by the
    upload's handler into this type; the ``sensitive_confirmation`` part is JSON."""

    file: FilePart
    text: Annotated[str, any_text(2000)] | None = None
    consent_id: UserId | None = None
    sensitive_confirmation: SensitiveConfirmation | None = None


class ErrorDetail(Answer):
    code: str
    message: str


class Error(Answer):
    error: ErrorDetail


class SensitiveErrorDetail(Answer):
    code: str
    message: str
    categories: Names
    flagged: list[SensitivePassage]


class SensitiveError(Answer):
    """Free text that looks like a category withheld from a recipient (code sensitive_text)."""

    error: SensitiveErrorDetail


# -- query parameters: each route's declared once, read by shapes.read_query ---------------------------

#: At most this many items on a page.
Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT,
                            description=f"at most this many, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})")]
#: The ``next`` of the previous page (base64url).
Cursor = Annotated[str, Meta(max_length=200,
                             description="the `next` of the previous page")]
#: A time with its zone, or a date meaning the first moment of that day in Helsinki.
Since = Annotated[datetime, Meta(extra={DAY: "start"})]
#: A time with its zone, or a date meaning up to the end of that day (the next day's first moment).
Until = Annotated[datetime, Meta(extra={DAY: "next_start"})]
#: A month YYYY-MM (its first day).
Month = Annotated[date, Meta(extra={FORM: "month"})]
#: A leaf index or tree size of the audit log.
Position = Annotated[int, Meta(ge=0, le=MAX_POSITION)]


class LimitQuery(Query):
    limit: Limit | None = None


class PageQuery(LimitQuery):
    cursor: Cursor | None = None


class OrgQuery(Query):
    org: Annotated[OrgId, Meta(description="only this organisation")] | None = None


class ConsultationListQuery(PageQuery):
    refused: ClassVar[Mapping[str, str]] = {
        # Search words in a URL end up in proxy logs, browser history and Referer: not echoed either.
        "q": "search with POST /api/v1/consultations/search, the words in the body."}

    status: Annotated[Status, Meta(description="filter by status")] | None = None
