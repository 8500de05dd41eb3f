"""The history rows beside the log that audit records vouch for: consent versions and their
events, agreement versions, prohibitions. (Written reasons have their own digest in the entry.)

A record that writes one carries, in entry version 2, the SHA-256 of the row as the database
stored it (``subject_digest``, read back in the same transaction), so the log's hashes cover it:
a changed or deleted row no longer matches the record that vouches for it. The other way round,
every such row must be vouched for by a record with the same act, actor and time, so a row
inserted behind the log's back has none; and the current state kept beside the history — a
consent version's status, an agreement in force — must be the one its history leads to.

Records of entry version 1 (written before) carry no digest: for them only the link between
record and row (ids, act, actor, time) is checked. A client merged into another (duplicates of one
identity code, consult/services/client_merges.py) has its consents and prohibitions repointed:
a row vouched for under a merged reference matches under that reference.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.audit.entry import format_time
from consult.model.clock import iso
from consult.storage import agreements as agreement_store
from consult.storage import audit_log
from consult.storage import client_merges as merge_store
from consult.storage import consents as consent_store

__all__ = ["agreement_version", "check", "consent_event", "prohibition"]

CONSENT_SCOPE = (
    "id", "version", "client_ref", "grantor", "categories", "recipient_orgs", "recipient_roles",
    "recipient_users", "purposes", "valid_from", "valid_until", "method", "evidence_ref", "recorded_by",
    "recorded_org", "created_at",
)
"""A consent version's fields that never change once written (its status does, by events)."""

CONSENT_PARTIES = ("disclosing_org", "witnessed_by")
"""Fields a consent version has carried since 0013_consent; in the digest only when one is set,
so that records written over versions before them still vouch for those versions."""

PROHIBITION = ("id", "client_ref", "category", "org", "created_at", "created_by", "created_org")

# The status a consent version is left in by each event (consult/services/consents.py).
_STATUS_AFTER = {"created": "active", "suspended": "suspended", "resumed": "active", "withdrawn": "withdrawn",
                 "superseded": "withdrawn", "confirmed": "active"}

SUBJECT_ACTIONS = (*(f"consent.{event}" for event in _STATUS_AFTER), "agreement.create", "agreement.update",
                   "prohibition.create", "prohibition.revoke")
"""The acts whose records vouch for a history row."""

Finding = tuple[str, int | None]  # (detail, leaf index or None)


def _value(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def _digest(kind: str, values: Sequence[Any]) -> str:
    text = json.dumps([kind, *(_value(v) for v in values)], ensure_ascii=True, separators=(",", ":"),
                      sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def consent_event(version: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """A consent event together with the scope of the version it happened to."""
    parties = [version.get(f) for f in CONSENT_PARTIES]
    named = [*parties] if any(p is not None for p in parties) else []
    return _digest("consent", [*(version[f] for f in CONSENT_SCOPE), *named, event["event"], event["at"],
                               event["actor_id"], event["actor_org"]])


def agreement_version(row: Mapping[str, Any]) -> str:
    return _digest("agreement", [row["agreement_id"], row["version"], row["snapshot"], row["at"], row["actor_id"],
                                 row["actor_org"]])


def prohibition(row: Mapping[str, Any], *, revoked: bool) -> str:
    """At creation the prohibition as made; at revocation also who lifted it and when."""
    values = [row[f] for f in PROHIBITION]
    if revoked:
        values += [row["revoked_at"], row["revoked_by"]]
    return _digest("prohibition.revoke" if revoked else "prohibition.create", values)


def prohibition_deleted(row: Mapping[str, Any]) -> str:
    """Retention's deletion of a lifted prohibition: both digests its own records carried."""
    return _digest("prohibition.delete", [prohibition(row, revoked=False), prohibition(row, revoked=True)])


# -- verification ----------------------------------------------------------------------------------


class _Records:
    """The records that vouch for history rows, by the key that links each to its row."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], survivor: Mapping[str, str]) -> None:
        self.by_key: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            self.by_key[self.key(r, survivor)].append(r)

    @staticmethod
    def key(r: Mapping[str, Any], survivor: Mapping[str, str]) -> tuple[Any, ...]:
        action = r["action"]
        if action.startswith("consent."):
            return (action, r["consent_id"], r["consent_version"], r["actor_id"], _value(r["at"]))
        if action.startswith("agreement."):
            return ("agreement", r["rule_id"], r["actor_id"], _value(r["at"]))
        ref = r["client_ref"]  # a prohibition's row now names the client its reference was merged into
        return (action, survivor.get(ref, ref), r["actor_id"], _value(r["at"]))

    def take(self, key: tuple[Any, ...]) -> Mapping[str, Any] | None:
        found = self.by_key.get(key)
        return found.pop(0) if found else None

    def left(self) -> list[Mapping[str, Any]]:
        return [r for rows in self.by_key.values() for r in rows]


def _vouch(record: Mapping[str, Any] | None, digests: set[str], what: str, out: list[Finding]) -> None:
    if record is None:
        out.append((f"{what} has no record in the log", None))
    elif record["entry_version"] >= 2 and record["subject_digest"] not in digests:
        out.append((f"{what} was changed since record {record['leaf_index']} vouched for it", record["leaf_index"]))


class _Merges:
    """Client references merged into others: a repointed row was vouched for under its old one."""

    def __init__(self, merged: Mapping[str, str]) -> None:
        self.survivor = dict(merged)
        self.aliases: dict[str, list[str]] = defaultdict(list)
        for old, new in merged.items():
            self.aliases[new].append(old)

    def refs(self, client_ref: str | None) -> list[str | None]:
        return [client_ref, *self.aliases.get(client_ref or "", ())]

    def digests(self, row: Mapping[str, Any], digest: Any) -> set[str]:
        return {digest({**row, "client_ref": ref}) for ref in self.refs(row["client_ref"])}


async def check(conn: AsyncConnection) -> list[Finding]:
    """Every history row vouched for by its record, every such record's row present and
    unchanged, and the current state the one the history leads to."""
    out: list[Finding] = []
    merges = _Merges(await merge_store.all_merged(conn))
    records = _Records(await audit_log.subject_records(conn, SUBJECT_ACTIONS), merges.survivor)
    versions = {(c["id"], c["version"]): c for c in await consent_store.all_versions(conn)}
    last_event: dict[tuple[str, int], str] = {}
    for e in await consent_store.all_events(conn):
        what = f"consent {e['consent_id']} version {e['version']} event {e['event']!r}"
        version = versions.get((e["consent_id"], e["version"]))
        record = records.take((f"consent.{e['event']}", e["consent_id"], e["version"], e["actor_id"],
                               _value(e["at"])))
        if version is None:
            out.append((f"{what} belongs to no stored consent version",
                        record["leaf_index"] if record else None))
            continue
        _vouch(record, merges.digests(version, lambda v, e=e: consent_event(v, e)), what, out)
        last_event[(e["consent_id"], e["version"])] = e["event"]
    for key, c in versions.items():
        event = last_event.get(key)
        if event is None:
            out.append((f"consent {key[0]} version {key[1]} has no recorded event", None))
        elif c["status"] != _STATUS_AFTER.get(event, c["status"]):
            out.append((f"consent {key[0]} version {key[1]} is {c['status']!r}, but its last recorded event "
                        f"({event!r}) leaves it {_STATUS_AFTER[event]!r}", None))
    newest: dict[str, Mapping[str, Any]] = {}
    for v in await agreement_store.all_versions(conn):
        what = f"agreement {v['agreement_id']} version {v['version']}"
        record = records.take(("agreement", f"agreement:{v['agreement_id']}@{v['version']}", v["actor_id"],
                               _value(v["at"])))
        _vouch(record, {agreement_version(v)}, what, out)
        if v["agreement_id"] not in newest or v["version"] > newest[v["agreement_id"]]["version"]:
            newest[v["agreement_id"]] = v
    for a in await agreement_store.all_agreements(conn):
        latest = newest.get(a["id"])
        if latest is None or not _agreement_is(a, latest["snapshot"]):
            out.append((f"agreement {a['id']} in force is not its newest recorded version", None))
    for p in await consent_store.all_prohibitions(conn):
        what = f"prohibition {p['id']}"
        record = records.take(("prohibition.create", p["client_ref"], p["created_by"], _value(p["created_at"])))
        _vouch(record, merges.digests(p, lambda r: prohibition(r, revoked=False)), what, out)
        if p["revoked_at"] is not None:
            record = records.take(("prohibition.revoke", p["client_ref"], p["revoked_by"], _value(p["revoked_at"])))
            _vouch(record, merges.digests(p, lambda r: prohibition(r, revoked=True)), f"the lifting of {what}", out)
    left = _not_ended_by_retention(records.left(), await audit_log.subject_records(conn, ("retention.delete",)))
    for r in left:  # a record whose row is gone (or was changed out of recognition)
        out.append((f"the {r['action']} row record {r['leaf_index']} vouches for is missing", r["leaf_index"]))
    return out


def _not_ended_by_retention(left: list[Mapping[str, Any]], deletions: Sequence[Mapping[str, Any]]
                            ) -> list[Mapping[str, Any]]:
    """The records whose rows are missing, less those a later retention record says it deleted.

    A consent's deletion names the consent (every version and event goes with it). A lifted
    prohibition's deletion carries the digest of both of its records' digests, so it excuses
    exactly that pair; a prohibition recorded before digests (entry version 1) is excused by a
    deletion under the same client, one pair per deletion.
    """
    consents = {d["consent_id"]: d["leaf_index"] for d in deletions if d["consent_id"]}
    prohibition_deletions = [d for d in deletions if not d["consent_id"] and d["subject_digest"]]
    unused = {d["leaf_index"] for d in prohibition_deletions}
    by_pair = {(d["client_ref"], d["subject_digest"]): d["leaf_index"] for d in prohibition_deletions}
    creates = [r for r in left if r["action"] == "prohibition.create"]
    revokes = [r for r in left if r["action"] == "prohibition.revoke"]
    excused: set[int] = set()
    for c in (c for c in creates if c["subject_digest"]):
        for r in revokes:
            if r["leaf_index"] in excused or r["client_ref"] != c["client_ref"] or not r["subject_digest"]:
                continue
            digest = _digest("prohibition.delete", [c["subject_digest"], r["subject_digest"]])
            at = by_pair.get((c["client_ref"], digest))
            if at is not None and at > r["leaf_index"] and at in unused:
                excused.update((c["leaf_index"], r["leaf_index"]))
                unused.discard(at)
                break
    for c in (c for c in creates if not c["subject_digest"] and c["leaf_index"] not in excused):
        revoke = next((r for r in revokes if r["leaf_index"] not in excused and not r["subject_digest"]
                       and r["client_ref"] == c["client_ref"]), None)
        deletion = next((d["leaf_index"] for d in prohibition_deletions if d["leaf_index"] in unused
                         and d["client_ref"] == c["client_ref"]
                         and d["leaf_index"] > (revoke or c)["leaf_index"]), None)
        if revoke is not None and deletion is not None:
            excused.update((c["leaf_index"], revoke["leaf_index"]))
            unused.discard(deletion)
    return [r for r in left if r["leaf_index"] not in excused
            and not (r["action"].startswith("consent.") and consents.get(r["consent_id"], -1) > r["leaf_index"])]


def _agreement_is(row: Mapping[str, Any], snapshot: Mapping[str, Any]) -> bool:
    """The agreement row says what its newest version's snapshot says (the fields that decide)."""
    return (
        snapshot.get("version") == row["version"]
        and snapshot.get("reference") == row["reference"]
        and snapshot.get("parties") == [row["org_a"], row["org_b"]]
        and snapshot.get("valid_from") == iso(row["valid_from"])
        and snapshot.get("valid_until") == iso(row["valid_until"])
        and snapshot.get("topics") == list(row["topics"])
        and snapshot.get("pools") == list(row["pools"])
    )
