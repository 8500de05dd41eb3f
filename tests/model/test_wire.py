"""The records' wire form is the JSON shape SPEC §5 fixes, key for key and in the same order as
the plain dictionaries it replaced; `wire.dumps` writes a record inside plain data as that form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from consult.model import wire
from consult.model.consents import Confirmation, ConsentAnswer, ConsentEvent, ConsentVersion
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
