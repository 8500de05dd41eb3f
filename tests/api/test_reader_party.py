"""One function (consult/services/parties.py ``reader``) resolves the party a reader is decided
as, with one documented fallback for a reader who has not joined; no service builds a `Party`
of its own, so a message, an attachment and the question are decided for the same reader alike."""

from __future__ import annotations

import pathlib
import re
from dataclasses import replace
from datetime import UTC, datetime

from consult.model import Principal
from consult.model.consultations import Consultation, Participant
from consult.policy.model import Party
from consult.services import parties

ROOT = pathlib.Path(__file__).resolve().parents[2]
AT = datetime(2026, 1, 2, tzinfo=UTC)
C = Consultation(
    seq=1, id="c1", topic="other", urgency="normal", question_sealed=b"", question_spans=None,
    purpose="tt.supplementary_assistance", origin_org="kela", created_by="kela.aino", created_role="advisor",
    target_org="vantaa", pool=None, expert_id=None, client_ref=None, case_ref=None, status="open", claimed_by=None,
    claimed_at=None, first_response_at=None, closed_at=None, outcome=None, outcome_note_sealed=None,
    outcome_note_spans=None, closed_by=None, closed_org=None, closed_role=None, legal_hold=False, shredded_at=None,
    created_at=AT, escalated_pool=None, question_flagged=(), outcome_flagged=())
INTAKE = replace(C, purpose="sh.referral")


def _joined(role: str) -> Participant:
    return Participant("c1", "u1", "vantaa", role, "u1", AT)


def _who(org: str, *roles: str, user: str = "u1") -> Principal:
    return Principal(user_id=user, org=org, roles=frozenset(roles), name="Synthetic")


def test_no_service_builds_a_party_of_its_own() -> None:
    """`Party(...)` appears only in consult/services/parties.py among the services."""
    offenders = [f"{p.name}:{n}" for p in (ROOT / "consult" / "services").rglob("*.py") if p.name != "parties.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bParty\(", line)]
    assert offenders == []


def test_a_participant_reads_in_the_role_they_take_part_in() -> None:
    who = _who("vantaa", "expert", "social_worker")
    assert parties.of_principal(who, _joined("expert"), C) == Party("vantaa", "expert", "u1")


def test_a_reader_offered_the_consultation_reads_in_the_offered_role() -> None:
    """Before claiming, an on-duty reader of the target organisation reads as whoever will claim
    it: an expert, or for a statutory contact the intake's social worker — even when they hold a
    role listed earlier in the preference order."""
    who = _who("vantaa", "expert", "social_worker")
    assert parties.of_principal(who, None, C) == Party("vantaa", "expert", "u1")
    assert parties.of_principal(who, None, INTAKE) == Party("vantaa", "social_worker", "u1")
    assert parties.of_principal(who, None, C) == parties.offered(C, "u1")


def test_any_other_non_participant_reads_in_their_own_most_specific_role() -> None:
    """A privacy officer (break-glass) is never read as an expert, whichever item they open."""
    officer = _who("vantaa", "privacy_officer")
    assert parties.of_principal(officer, None, C) == Party("vantaa", "privacy_officer", "u1")
    advisor = _who("kela", "advisor")
    assert parties.of_principal(advisor, None, C) == Party("kela", "advisor", "u1")


def test_the_unclaimed_recipient_is_the_offered_role() -> None:
    """Messages and consultations agree on who will receive an unclaimed consultation."""
    assert parties.offered(INTAKE) == Party("vantaa", "social_worker")
    assert parties.offered(C) == Party("vantaa", "expert")


def test_every_reader_party_is_made_by_the_one_rule() -> None:
    """The signed-in reader, a participant receiving a live event and an expert offered the
    consultation are one rule's answers: the same user reads as the same party on every path."""
    who = _who("vantaa", "expert", "social_worker")
    row = _joined("expert")
    assert parties.participant(C, row) == parties.of_principal(who, row, C) == parties.reader(
        C, "u1", "vantaa", joined_role="expert")
    assert parties.offered(C, "u1") == parties.reader(C, "u1", "vantaa", roles=("expert",))


def test_parties_builds_a_reader_party_in_reader_only() -> None:
    """Within consult/services/parties.py the reader helpers delegate to ``reader``: no other
    function there builds a reader's `Party`."""
    source = (ROOT / "consult" / "services" / "parties.py").read_text(encoding="utf-8")
    for name in ("of_principal", "participant", "offered"):
        body = source.split(f"\ndef {name}(", 1)[1].split("\ndef ", 1)[0]
        assert "Party(" not in body and "reader(" in body, name
