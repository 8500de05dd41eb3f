"""The history rows beside the log are covered by its hashes: consent versions and events,
agreement versions, prohibitions and written reasons. Changing, deleting or inserting one with
database access alone — or changing the current state its history leads to — fails verify,
naming the record that vouches for the row where there is one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from pathlib import Path

import pytest

from consult.audit.checkpoint import verifier_key
from consult.audit.verify import VerifyReport
from consult.crypto import signing
from consult.services.audit import verify_database
from tests.conftest import Api
from tests.synthetic import hetu

CONSENT = {"categories": ["health"], "recipient_orgs": ["vantaa"], "purpose": "sh.multidisciplinary",
           "method": "oral", "witnessed_by": "Eero Neuvoja", "evidence_ref": "asiakasmerkintä",
           "valid_until": (datetime.now(UTC) + timedelta(days=90)).date().isoformat()}


@pytest.fixture
async def history(api: Api, settings, tmp_path: Path) -> dict:
    ref = await api.register(hetu(21))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    cid = consent["id"]
    await api.call("POST", f"/api/v1/consents/{cid}/suspend", "kela.aino", expect=200)
    await api.call("POST", f"/api/v1/consents/{cid}/resume", "kela.aino", expect=200)
    await api.call("POST", f"/api/v1/consents/{cid}/versions", "kela.aino", expect=201,
                   json={**CONSENT, "categories": ["health", "income.kela_benefit"]})
    # The county confirms a consent recorded at Kela that releases the county's data.
    confirmed = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", expect=201,
                               json={**CONSENT, "disclosing_org": "vantaa", "recipient_orgs": ["kela"]})
    await api.call("POST", f"/api/v1/consents/{confirmed['id']}/confirm", "vantaa.paula", expect=200)
    kept = await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                          json={"category": "health", "org": "vantaa"}, expect=201)
    lifted = await api.call("POST", f"/api/v1/clients/{ref}/prohibitions", "kela.aino",
                            json={"category": "income.kela_benefit", "org": "vantaa"}, expect=201)
    await api.call("POST", f"/api/v1/prohibitions/{lifted['id']}/revoke", "kela.aino", expect=200)
    agreements = (await api.call("GET", "/api/v1/agreements", "kela.admin", expect=200))["items"]
    aid = agreements[0]["id"]
    await api.call("PUT", f"/api/v1/agreements/{aid}", "kela.admin", json={"topics": ["other"]}, expect=200)
    await api.client.close()
    seed = signing.load_signing_key(tmp_path / "audit-signing.key")
    return {"db": Path(settings.database_url.split("///", 1)[1]), "work": tmp_path, "consent": cid,
            "confirmed": confirmed["id"],
            "kept": kept["id"], "lifted": lifted["id"], "agreement": aid,
            "keys": [verifier_key("konsulta.local/audit", signing.public_key(seed))]}


def _verify(history: dict, name: str, change: Callable[[sqlite3.Connection], object] | None = None) -> VerifyReport:
    copy = history["work"] / f"{name}.db"
    src, dst = sqlite3.connect(history["db"]), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    if change is not None:
        change(dst)
        dst.commit()
    dst.close()
    return verify_database(f"sqlite+aiosqlite:///{copy}", history["keys"], "konsulta.local/audit",
                           checkpoint_file=history["work"] / "audit-checkpoints.jsonl")


def _leaf_of(history: dict, action: str) -> int:
    with sqlite3.connect(history["db"]) as con:
        (index,) = con.execute("SELECT max(leaf_index) FROM audit_events WHERE action = ?", (action,)).fetchone()
    return index


def test_the_history_as_written_verifies(history):
    report = _verify(history, "as-written")
    assert report.ok, report.problems


def test_a_changed_disclosing_organisation_is_caught(history):
    """The organisation a consent releases is changed after the county confirmed it."""
    report = _verify(history, "discloser", lambda c: c.execute(
        "UPDATE consents SET disclosing_org = 'kela' WHERE id = ?", (history["confirmed"],)))
    assert not report.ok


def test_a_changed_consent_scope_is_caught(history):
    """The consent a disclosure cited is widened after the fact."""
    report = _verify(history, "scope", lambda c: c.execute(
        "UPDATE consents SET recipient_orgs = '[\"vantaa\", \"espoo\"]' WHERE id = ? AND version = 1",
        (history["consent"],)))
    assert not report.ok and {p.kind for p in report.problems} == {"subject"}
    first = min(p.leaf_index for p in report.problems if p.leaf_index is not None)
    assert report.first_bad_index == first == _first_leaf(history, "consent.created")


def _first_leaf(history: dict, action: str) -> int:
    with sqlite3.connect(history["db"]) as con:
        (index,) = con.execute("SELECT min(leaf_index) FROM audit_events WHERE action = ?", (action,)).fetchone()
    return index


def test_a_deleted_consent_event_is_caught(history):
    report = _verify(history, "event", lambda c: c.execute(
        "DELETE FROM consent_events WHERE event = 'suspended'"))
    assert not report.ok
    assert any("consent.suspended row record" in p.detail for p in report.problems), report.problems


def test_an_inserted_consent_event_is_caught(history):
    report = _verify(history, "inserted-event", lambda c: c.execute(
        "INSERT INTO consent_events (consent_id, version, event, at, actor_id, actor_org) "
        "VALUES (?, 2, 'resumed', '2026-01-01 00:00:00.000000', 'kela.aino', 'kela')", (history["consent"],)))
    assert not report.ok and any("has no record in the log" in p.detail for p in report.problems)


def test_a_status_changed_behind_the_log_is_caught(history):
    """A superseded (withdrawn) consent version set active again, with no event."""
    report = _verify(history, "status", lambda c: c.execute(
        "UPDATE consents SET status = 'active' WHERE id = ? AND version = 1", (history["consent"],)))
    assert not report.ok and any("last recorded event" in p.detail for p in report.problems)


def test_a_changed_agreement_version_is_caught(history):
    report = _verify(history, "agreement-version", lambda c: c.execute(
        "UPDATE agreement_versions SET snapshot = replace(snapshot, '\"other\"', '\"primary_benefits\"') "
        "WHERE agreement_id = ?", (history["agreement"],)))
    assert not report.ok
    assert report.first_bad_index == _leaf_of(history, "agreement.update")


def test_an_agreement_changed_behind_its_versions_is_caught(history):
    report = _verify(history, "agreement", lambda c: c.execute(
        "UPDATE agreements SET topics = '[]' WHERE id = ?", (history["agreement"],)))
    assert not report.ok and any("not its newest recorded version" in p.detail for p in report.problems)


def test_a_deleted_prohibition_is_caught(history):
    report = _verify(history, "prohibition", lambda c: c.execute(
        "DELETE FROM prohibitions WHERE id = ?", (history["kept"],)))
    assert not report.ok
    assert report.first_bad_index == _first_leaf(history, "prohibition.create")


def test_a_lifted_prohibition_put_back_is_caught(history):
    report = _verify(history, "unlifted", lambda c: c.execute(
        "UPDATE prohibitions SET revoked_at = NULL, revoked_by = NULL WHERE id = ?", (history["lifted"],)))
    assert not report.ok
    assert report.first_bad_index == _leaf_of(history, "prohibition.revoke")


def test_canonical_entry_version_2_known_answer():
    """Entry version 2 is version 1 with ``subject_digest`` appended: fixed row, fixed bytes."""
    from datetime import UTC, datetime

    from consult.audit.entry import encode

    row = {
        "leaf_index": 9, "id": "0b0e7c1e-8a4c-4a7e-9f4e-2f3f3b6b7a10",
        "at": datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC), "actor_id": "kela.aino", "actor_org": "kela",
        "actor_role": "advisor", "action": "consent.created", "outcome": "permit", "consultation_id": None,
        "message_id": None, "client_ref": "c-123", "categories": ["health"], "purpose": None, "basis": None,
        "rule_id": None, "policy_version": None, "consent_id": "k1", "consent_version": 1, "subject_user": None,
        "recipient_org": None, "recipient_role": None, "flags": None, "reason_id": None, "reason_digest": None,
        "request_id": "req-2", "source": "192.0.2.1", "subject_digest": "ab" * 32, "entry_version": 2,
    }
    entry = encode(row)
    assert entry == (
        b'[2,9,"0b0e7c1e-8a4c-4a7e-9f4e-2f3f3b6b7a10","2026-03-02T08:30:15.123456Z","kela.aino","kela",'
        b'"advisor","consent.created","permit",null,null,"c-123",["health"],null,null,null,null,"k1",1,null,'
        b'null,null,[],null,null,"req-2","192.0.2.1","' + b"ab" * 32 + b'"]'
    )
    # The same row as version 1: no subject digest, so it does not change the hash.
    assert encode({**row, "entry_version": 1}) == b"[1" + entry[2:entry.rindex(b',"')] + b"]"
    assert encode({**row, "subject_digest": None}) != entry


def test_a_retention_deletion_excuses_only_the_rows_it_vouches_for():
    """Retention's record of a deleted prohibition carries the digest of exactly that
    prohibition's two records: another prohibition of the same client deleted by hand, or a
    consent deleted before the deletion record claims it, is still missing."""
    from consult.audit import subjects

    def rec(leaf, action, digest=None, consent=None, ref="cl_a"):
        return {"leaf_index": leaf, "action": action, "subject_digest": digest, "consent_id": consent,
                "client_ref": ref}

    gone = [rec(1, "prohibition.create", "c1"), rec(2, "prohibition.revoke", "r1"),
            rec(3, "prohibition.create", "c2"), rec(4, "prohibition.revoke", "r2"),
            rec(5, "consent.created", consent="k1"), rec(9, "consent.created", consent="k2")]
    pair = subjects._digest("prohibition.delete", ["c1", "r1"])
    deletions = [rec(7, "retention.delete", pair), rec(8, "retention.delete", consent="k1"),
                 rec(6, "retention.delete", consent="k2")]  # k2's deletion comes before k2 was written
    left = subjects._not_ended_by_retention(gone, deletions)
    assert [r["leaf_index"] for r in left] == [3, 4, 9]
    # The same digest under another client excuses nothing.
    assert len(subjects._not_ended_by_retention(gone[:2], [rec(7, "retention.delete", pair, ref="cl_b")])) == 2
