"""The canonical bytes of one audit record: what the Merkle log hashes as a leaf.

An entry is a JSON object with a fixed key order, no whitespace and ASCII-only escapes, so the
same row always gives the same bytes on SQLite and PostgreSQL and anyone can recompute it from an
export. It holds ids, codes and bases only — never message content or an identity code. The
leaf index is part of the entry, so a record moved to another position no longer matches its
own hash.

Entry version 1, keys in this order::

    v, leaf_index, id, at, actor_id, actor_org, actor_role, action, outcome,
    consultation_id, message_id, client_ref, categories, purpose, basis, rule_id,
    policy_version, consent_id, consent_version, subject_user, recipient_org,
    recipient_role, flags, reason_id, reason_digest, request_id, source

``at`` is UTC ISO 8601 with microseconds and a ``Z``; absent values are ``null``; ``categories``
and ``flags`` are lists (an absent list is ``[]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["ENTRY_VERSION", "FIELDS", "encode", "format_time"]

ENTRY_VERSION = 1

FIELDS: tuple[str, ...] = (
    "leaf_index",
    "id",
    "at",
    "actor_id",
    "actor_org",
    "actor_role",
    "action",
    "outcome",
    "consultation_id",
    "message_id",
    "client_ref",
    "categories",
    "purpose",
    "basis",
    "rule_id",
    "policy_version",
    "consent_id",
    "consent_version",
    "subject_user",
    "recipient_org",
    "recipient_role",
    "flags",
    "reason_id",
    "reason_digest",
    "request_id",
    "source",
)

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def format_time(at: datetime) -> str:
    """UTC, microseconds, ``Z``. A naive timestamp is UTC (SQLite returns them naive)."""
    if at.tzinfo is None:
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(row: Mapping[str, Any]) -> bytes:
    """The canonical entry of ``row`` (a stored ``audit_events`` row or the values to insert)."""
    version = row.get("entry_version") or ENTRY_VERSION
    if version != ENTRY_VERSION:
        raise ValueError(f"unknown audit entry version {version!r}")
    at = row["at"]
    return _dumps(
        {
            "v": ENTRY_VERSION,
            "leaf_index": row["leaf_index"],
            "id": row["id"],
            "at": format_time(at) if isinstance(at, datetime) else at,
            "actor_id": row["actor_id"],
            "actor_org": row["actor_org"],
            "actor_role": row["actor_role"],
            "action": row["action"],
            "outcome": row["outcome"],
            "consultation_id": row["consultation_id"],
            "message_id": row["message_id"],
            "client_ref": row["client_ref"],
            "categories": list(row["categories"] or ()),
            "purpose": row["purpose"],
            "basis": row["basis"],
            "rule_id": row["rule_id"],
            "policy_version": row["policy_version"],
            "consent_id": row["consent_id"],
            "consent_version": row["consent_version"],
            "subject_user": row["subject_user"],
            "recipient_org": row.get("recipient_org"),
            "recipient_role": row.get("recipient_role"),
            "flags": list(row["flags"] or ()),
            "reason_id": row.get("reason_id"),
            "reason_digest": row.get("reason_digest"),
            "request_id": row["request_id"],
            "source": row["source"],
        }
    ).encode("ascii")
