"""The canonical bytes of one audit record: what the Merkle log hashes as a leaf.

An entry is a JSON array of the record's fields in a fixed order, without whitespace and with
ASCII-only escapes (``json.dumps(..., ensure_ascii=True, separators=(",", ":"))``), so the same
row always gives the same bytes on SQLite and PostgreSQL and anyone can recompute it from an
export. It holds ids, codes and bases only — never message content or an identity code. The
leaf index is part of the entry, so a record moved to another position no longer matches its
own hash. (An array rather than an object: the field names are this fixed list, and encoding
without them halves the cost of re-verifying a million records.)

Entry version 1, fields in this order (``FIELDS_V1``, after the version number ``1``)::

    leaf_index, id, at, actor_id, actor_org, actor_role, action, outcome,
    consultation_id, message_id, client_ref, categories, purpose, basis, rule_id,
    policy_version, consent_id, consent_version, subject_user, recipient_org,
    recipient_role, flags, reason_id, reason_digest, request_id, source

Entry version 2 (every record written since) appends one field, ``subject_digest``: the SHA-256
(hex) of the history row the act wrote beside the log — a consent version and its event, an
agreement version, a prohibition (consult/audit/subjects.py) — or ``null``. A row records its
version in ``entry_version``; a row without one is version 1.

``at`` is UTC ISO 8601 with microseconds and a ``Z`` (``2026-01-31T08:15:00.123456Z``); absent
values are ``null``; ``categories`` and ``flags`` are lists (an absent list is ``[]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from consult.model.audit_fields import FIELDS, FIELDS_V1, LATER_FIELDS, LIST_FIELDS

__all__ = ["ENTRY_VERSION", "FIELDS", "FIELDS_V1", "VERSIONS", "encode", "encode_values", "format_time"]

ENTRY_VERSION = 2
"""The version new records are written in."""
VERSIONS = (1, 2)

# The field list has one home (consult/model/audit_fields.py, readable by storage too); the
# names are re-exported here, where the entry is defined.
_FIELDS_OF = {1: itemgetter(*FIELDS_V1), 2: itemgetter(*FIELDS)}
# Positions in the entry array, after its leading version number.
_AT = 1 + FIELDS.index("at")
_LISTS = tuple(1 + FIELDS.index(name) for name in sorted(LIST_FIELDS))


def _make_dumps() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)``, with the
    C encoder built once rather than per call (a third of the cost of re-verifying the log)."""
    encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return encoder.encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"not part of an audit entry: {type(value).__name__}")

    # Entries are flat lists of str, int, None and lists of str: no cycles to check.
    iterate = make(None, refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    return lambda value: "".join(iterate(value, 0))


_dumps = _make_dumps()


def format_time(at: datetime) -> str:
    """UTC, microseconds, ``Z``. A naive timestamp is UTC (SQLite returns them naive)."""
    if at.tzinfo is None:
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(row: Mapping[str, Any]) -> bytes:
    """The canonical entry of ``row`` (a stored ``audit_events`` row or the values to insert; one
    without ``entry_version`` is version 1)."""
    version = row.get("entry_version") or 1
    if version not in VERSIONS:
        raise ValueError(f"unknown audit entry version {version!r}")
    try:
        values = [version, *_FIELDS_OF[version](row)]
    except KeyError:  # a row from before a later field; any other missing field still raises
        fields = FIELDS if version >= 2 else FIELDS_V1
        values = [version, *(row.get(n) if n in LATER_FIELDS else row[n] for n in fields)]
    at = values[_AT]
    if isinstance(at, datetime):
        values[_AT] = format_time(at)
    for i in _LISTS:
        values[i] = list(values[i] or ())
    return _dumps(values).encode("ascii")


def encode_values(values: Sequence[Any], version: int = ENTRY_VERSION) -> bytes:
    """The canonical entry from values already in the version's field order (`FIELDS_V1`, or
    `FIELDS`), ``at`` already as text and lists as lists: the verifier's fast path."""
    return _dumps([version, *values]).encode("ascii")
