"""The records' wire form is the JSON shape SPEC §5 fixes, key for key and in the same order as
the plain dictionaries it replaced; `wire.dumps` writes a record inside plain data as that form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from consult.http import schemas
from consult.model import wire
from consult.model.consents import Confirmation, ConsentAnswer, ConsentEvent, ConsentVersion
from consult.model.consultations import (
    Consultation,
    ConsultationAnswer,
    ConsultationPage,
    ConsultationView,
    Notification,
    Participant,
)
from consult.model.identifiers import ClientRef
from consult.model.messages import (
    AuthorView,
    ConsentState,
    MessagePage,
    MessageView,
    PostedMessage,
    ReadMarker,
    ShownItem,
    WithheldItem,
)

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _message() -> MessageView:
    return MessageView(
        id="m1", consultation_id="c1", author=AuthorView("kela.aino", "Aino", "kela", "advisor"), text="Hello",
        data=(ShownItem("application.status", "in process"),
              ShownItem("health", "x", consent_id="k1", attachment_id="a1", referral_condition="unable"),
              WithheldItem("debt", "Not for you.", "rule-1", "cite", ConsentState("k1", "withdrawn", AT)),
              WithheldItem.by_retention("income.other")),
        created_at=AT, flagged_categories=("health",), content_destroyed=False,
        read_by=(ReadMarker("vantaa.sanna", 3, AT),))


MESSAGE = {
    "id": "m1", "consultation_id": "c1",
    "author": {"id": "kela.aino", "name": "Aino", "org": "kela", "role": "advisor"},
    "text": "Hello",
    "data": [
        {"category": "application.status", "value": "in process"},
        {"category": "health", "value": "x", "consent_id": "k1", "attachment_id": "a1",
         "referral": {"condition": "unable"}},
        {"category": "debt", "withheld": True, "reason": "Not for you.", "rule": "rule-1", "citation": "cite",
         "consent": {"id": "k1", "status": "withdrawn", "since": "2026-01-02T03:04:05.678Z"}},
        {"category": "income.other", "withheld": True, "rule": "retention", "citation": "",
         "reason": "Destroyed at the end of the retention period."},
    ],
    "created_at": "2026-01-02T03:04:05.678Z",
    "flagged_categories": ["health"],
    "content_destroyed": False,
    "read_by": [{"user_id": "vantaa.sanna", "read_at": "2026-01-02T03:04:05.678Z"}],
}


def test_a_message_reads_on_the_wire_as_before() -> None:
    assert wire.dumps(_message()) == json.dumps(MESSAGE)
    page = {"items": MessagePage((_message(),), "cur").items, "next": "cur"}
    assert wire.dumps(page) == json.dumps({"items": [MESSAGE], "next": "cur"})


def test_the_senders_answer_adds_policy_identifiers_and_sensitive_after_the_message() -> None:
    posted = PostedMessage(_message(), "v1", ({"index": 0},), ({"kind": "iban"},), ())
    assert wire.dumps(posted) == json.dumps({**MESSAGE, "policy": {"version": "v1", "withheld": [{"index": 0}]},
                                             "identifiers": [{"kind": "iban"}], "sensitive": []})


def test_a_consent_reads_on_the_wire_with_confirmation_and_events_last() -> None:
    version = ConsentVersion(
        id="k1", version=2, client_ref=ClientRef("cl_1"), grantor="self", categories=("health",),
        recipient_orgs=("vantaa",), recipient_roles=(), recipient_users=(), purposes=("sh.multidisciplinary",),
        valid_from=AT, valid_until=None, method="written", evidence_ref=None, witnessed_by=None,
        disclosing_org=None, recorded_by="kela.aino", recorded_org="kela", status="active",
        status_changed_at=AT, created_at=AT)
    body = json.loads(wire.dumps(ConsentAnswer(version, "active", "kela", AT, Confirmation(AT, "kela.aino"),
                                               (ConsentEvent("created", 2, AT, "kela.aino", "kela"),))))
    assert list(body) == ["id", "version", "client_ref", "status", "grantor", "categories", "disclosing_org",
                          "recipient_orgs", "recipient_roles", "recipient_users", "purposes", "valid_from",
                          "valid_until", "method", "evidence_ref", "witnessed_by", "recorded_by", "recorded_org",
                          "status_changed_at", "created_at", "confirmed_at", "confirmed_by", "events"]
    assert body["events"] == [{"event": "created", "version": 2, "at": "2026-01-02T03:04:05.678Z",
                               "actor_org": "kela"}]


def _consultation() -> Consultation:
    return Consultation(
        seq=7, id="c1", topic="other", urgency="normal", question_sealed=b"sealed", question_spans=None,
        purpose="sh.multidisciplinary", origin_org="kela", created_by="kela.aino", created_role="advisor",
        target_org="vantaa", pool="toimeentulotuki", expert_id=None, client_ref=ClientRef("cl_1"), case_ref="K-1",
        status="closed", claimed_by="vantaa.sanna", claimed_at=AT, first_response_at=AT, closed_at=AT,
        outcome="answered", outcome_note_sealed=b"note", outcome_note_spans=None, closed_by="vantaa.sanna",
        closed_org="vantaa", closed_role="expert", legal_hold=False, shredded_at=None, created_at=AT,
        escalated_pool=None, question_flagged=("health",), outcome_flagged=(), question="stored question",
        outcome_note="stored note")


PARTICIPANT = Participant("c1", "kela.aino", "kela", "advisor", "kela.aino", AT)
NOTIFICATION = Notification("c1", "kela.aino", "Aino", "kela", "advisor", "ls-25", "statute:ls-25", "LsL 25 §",
                            "v1", AT)
STAMP = "2026-01-02T03:04:05.678Z"
CONSULTATION = {
    "id": "c1", "topic": "other", "urgency": "normal", "question": "as rendered", "purpose": "sh.multidisciplinary",
    "origin_org": "kela", "created_by": "kela.aino", "target_org": "vantaa", "pool": "toimeentulotuki",
    "expert_id": None, "client_ref": "cl_1", "case_ref": "K-1", "status": "closed", "claimed_by": "vantaa.sanna",
    "outcome": "answered", "outcome_note": "note as rendered", "legal_hold": False, "flagged_categories": ["health"],
    "outcome_flagged_categories": [], "content_destroyed": False, "created_at": STAMP, "claimed_at": STAMP,
    "first_response_at": STAMP, "closed_at": STAMP, "shredded_at": None,
}


def test_a_consultation_reads_on_the_wire_as_rendered_for_its_reader_and_as_before() -> None:
    """The question and note are the reader's rendering, never the record's clear text; the
    participants only when given (a reader told who takes part)."""
    view = ConsultationView(_consultation(), "as rendered", "note as rendered")
    assert wire.dumps(view) == json.dumps(CONSULTATION)
    with_participants = ConsultationView(_consultation(), "as rendered", "note as rendered", (PARTICIPANT,))
    assert wire.dumps(with_participants) == json.dumps({**CONSULTATION, "participants": [
        {"user_id": "kela.aino", "org": "kela", "role": "advisor", "added_at": STAMP}]})
    assert wire.dumps(ConsultationPage((view,), "cur")) == json.dumps({"items": [CONSULTATION], "next": "cur"})


def test_an_answer_adds_what_the_act_tells_after_the_consultation() -> None:
    answer = ConsultationAnswer(ConsultationView(_consultation(), "as rendered", None), notification=NOTIFICATION,
                                offered_to=2, identifiers=({"kind": "iban"},), sensitive=(), routing=None,
                                with_routing=True)
    body = json.loads(wire.dumps(answer))
    assert list(body)[-5:] == ["notification", "offered_to", "identifiers", "sensitive", "routing"]
    assert body["notification"] == {
        "notifier": {"user_id": "kela.aino", "name": "Aino", "org": "kela", "role": "advisor"},
        "rule_id": "ls-25", "basis": "statute:ls-25", "citation": "LsL 25 §", "policy_version": "v1",
        "notified_at": STAMP}
    assert body["routing"] is None  # answered as null: no longer waiting
    bare = json.loads(wire.dumps(ConsultationAnswer(ConsultationView(_consultation(), "q", None))))
    assert not {"notification", "offered_to", "identifiers", "sensitive", "routing"} & set(bare)


def test_the_consultation_records_write_the_declared_answer_types() -> None:
    """The declared answer types of the API are the contract the records are written to."""
    answer = ConsultationAnswer(ConsultationView(_consultation(), "q", "n", (PARTICIPANT,)),
                                notification=NOTIFICATION, offered_to=1, identifiers=(), sensitive=())
    decoded = msgspec.json.decode(wire.dumps(answer), type=schemas.ChildWelfareNotification)
    assert decoded.participants[0].user_id == "kela.aino"
    page = msgspec.json.decode(wire.dumps(ConsultationPage((answer.consultation,), None)),
                               type=schemas.ConsultationPage)
    assert page.items[0].id == "c1"


def test_anything_else_is_still_refused() -> None:
    with pytest.raises(TypeError):
        wire.dumps({"at": AT})


def test_plain_takes_exactly_what_the_wire_protocol_admits() -> None:
    """`plain` skips the runtime protocol check for speed; it still admits what ``isinstance(x, Wire)``
    admits and refuses the rest."""

    class NotCallable:
        wire = "text"

    class Shaped:
        def wire(self) -> dict[str, int]:
            return {"a": 1}

    for value in (_message(), Shaped(), NotCallable(), object(), {"wire": 1}, 3, AT):
        if isinstance(value, wire.Wire) and callable(getattr(value, "wire", None)):
            assert wire.plain(value) == value.wire()
        else:
            with pytest.raises(TypeError):
                wire.plain(value)
