"""The privacy officer's answers are declared for every form the services build them in, not
only the forms the API tests happen to reach: a verification with each kind of problem, a
restore and a narrowed range, and every kind of anomaly. The declarations are those of the routes
(consult/http/api_audit.py); the development-mode answer check decodes answers the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import msgspec
import pytest

from consult.audit.verify import Problem, VerifyReport
from consult.http import api_audit as answers
from consult.http import shapes
from consult.model.audit_fields import ProblemKind
from consult.services.anomalies import AccessAnomalies, AnomalyRules, flagged_record

ROUTES = {(r.method, r.path): r for r in answers.AUDIT_ROUTES}
ANOMALY_KINDS = ("many_clients", "off_hours", "break_glass", "referral_without_consent", "sensitive_free_text")


def _declared(method: str, path: str) -> Any:
    return ROUTES[(method, path)].response


def _check(data: Any, shape: Any) -> None:
    shapes.check_answer(msgspec.json.encode(data), shape)


def test_a_verification_of_every_outcome_is_as_declared():
    shape = _declared("GET", "/api/v1/audit/verify")
    intact = VerifyReport(size=3, root=bytes(32), records=3, checkpoints=1, checkpoints_verified=1, anchored=3,
                          checkpoint_file="read", file_newest=3)
    _check(intact.as_json(), shape)
    tampered = VerifyReport(size=9, root=bytes(range(32)), records=9, first_bad_range=(2, 5),
                            checkpoint_file="unreadable", restored=(4, 9), restore_acknowledged=True)
    for n, kind in enumerate(get_args(ProblemKind)):
        tampered.add(Problem(kind, f"problem {kind}", n if n % 2 else None, n if n % 3 else None))
    assert {p.kind for p in tampered.problems} == set(get_args(ProblemKind))
    _check(tampered.as_json(), shape)
    with pytest.raises(shapes.UndeclaredAnswer):
        _check({**intact.as_json(), "undeclared": 1}, shape)


def test_every_kind_of_anomaly_is_as_declared():
    shape = _declared("GET", "/api/v1/audit/anomalies")
    folded = AccessAnomalies(AnomalyRules(clients_per_hour=1))
    night = datetime(2026, 3, 7, 1, 5, tzinfo=UTC)  # a Saturday night in Helsinki
    folded.feed([(i, night + timedelta(minutes=i), "kela.aino", "kela", f"cl_{i}", "consultation.read")
                 for i in range(3)])
    found = folded.results()
    row = {"actor_id": "vantaa.ville", "actor_org": "vantaa", "at": night, "consultation_id": "c1",
           "client_ref": None, "recipient_org": "kela", "leaf_index": 7}
    found += [flagged_record(kind, row) for kind in ANOMALY_KINDS[2:]]
    assert sorted({a["kind"] for a in found}) == sorted(ANOMALY_KINDS)
    page = {"items": found, "next": None, "rules": {"clients_per_hour": 1, "office_hours": "07-18",
                                                    "office_days": "1-5", "timezone": "Europe/Helsinki"}}
    _check(page, shape)
    with pytest.raises(shapes.UndeclaredAnswer):
        _check({**page, "items": [{**found[0], "kind": "unheard_of"}]}, shape)
    with pytest.raises(shapes.UndeclaredAnswer):
        _check({**page, "items": [{**found[-1], "count": 1}]}, shape)


def test_the_document_lists_each_kind_of_anomaly():
    """The answer's items are one of the kinds, told apart by ``kind`` (a discriminator)."""
    _refs, components = shapes.schemas([_declared("GET", "/api/v1/audit/anomalies")])
    items = components["AnomalyPage"]["properties"]["items"]["items"]
    assert sorted(items["discriminator"]["mapping"]) == sorted(ANOMALY_KINDS)
