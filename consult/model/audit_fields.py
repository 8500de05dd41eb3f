"""The fields of an audit entry, in entry order: the one list the canonical entry, the
``audit_events`` table, the append statement, the verifier's read and the exports derive from.

It lives among the shared value types so that storage (below the audit layer) can read it; the
audit layer re-exports it as ``consult.audit.entry.FIELDS``. Changing it changes every leaf hash:
a new field means a new entry version (consult/audit/entry.py).
"""

from __future__ import annotations

from typing import Final, Literal

FIELDS_V1: Final[tuple[str, ...]] = (
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
"""Entry version 1."""

FIELDS: Final[tuple[str, ...]] = (*FIELDS_V1, "subject_digest")
"""Entry version 2 (the current one): version 1 and the digest of the history row the act wrote."""

LATER_FIELDS: Final = frozenset({"recipient_org", "recipient_role", "reason_id", "reason_digest",
                                 "subject_digest"})
"""Fields added after the first schema: a row from before them (migration 0003 hashes such rows)
may lack them, and an absent one is null. Any other field missing from a row is an error."""

LIST_FIELDS: Final = frozenset({"categories", "flags"})
"""Fields whose value is a list of names (an absent list is ``[]``); stored as JSON."""

ACTOR_FIELDS: Final = ("id", "at", "actor_id", "actor_org", "actor_role", "request_id", "source")
"""Fields the writer fills from the act itself (who, when, which request); the rest come from the
record the service hands over, except ``leaf_index``, which the log assigns."""

ROW_FIELDS: Final = ("entry_version", "leaf_hash")
"""Stored beside the entry fields and not part of the entry: its version and RFC 9162 leaf hash."""

#: What a fault the verification of the log found is about (consult/audit/verify.py), as its
#: answer names it.
ProblemKind = Literal["changed", "missing", "duplicate", "order", "head", "checkpoint", "reason", "version",
                      "anchor", "unanchored", "restored", "subject"]
