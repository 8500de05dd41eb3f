"""The audit entry's field list has one home (consult/model/audit_fields.py): the table, the
writer's record type, the append statement, the verifier's read and the export all derive from
it, so a field added or dropped in one place and not the others fails here."""

from __future__ import annotations

import dataclasses
import inspect

from consult.audit import entry, records, verify
from consult.model import audit_fields
from consult.services import audit as audit_service
from consult.storage import audit_log
from consult.storage.tables import audit_events


def test_entry_reexports_the_one_list() -> None:
    """The canonical entry is defined by the shared list, not a copy of it."""
    assert entry.FIELDS is audit_fields.FIELDS
    assert entry.FIELDS_V1 is audit_fields.FIELDS_V1
    assert audit_fields.FIELDS[: len(audit_fields.FIELDS_V1)] == audit_fields.FIELDS_V1


def test_every_field_is_a_column_and_every_column_a_field() -> None:
    """The table stores exactly the entry fields, the row fields and its own bookkeeping."""
    columns = {c.name for c in audit_events.columns}
    assert set(audit_fields.FIELDS) | set(audit_fields.ROW_FIELDS) <= columns
    assert columns - set(audit_fields.FIELDS) - set(audit_fields.ROW_FIELDS) == {"seq"}


def test_the_record_type_carries_exactly_the_fields_the_writer_does_not_fill() -> None:
    """An `AuditRecord` field outside the entry would be silently unhashed; an entry field
    missing from both the record and the writer would raise at the first write."""
    declared = {f.name for f in dataclasses.fields(records.AuditRecord)}
    assert declared == set(records.RECORD_FIELDS)
    assert set(records.RECORD_FIELDS) | set(audit_fields.ACTOR_FIELDS) | {"leaf_index"} == set(audit_fields.FIELDS)


def test_append_and_verifier_read_derive_from_the_list() -> None:
    """The SQLite append statement and the verifier's raw read name the fields in entry order."""
    assert audit_log._APPEND_COLUMNS == (*audit_fields.FIELDS, *audit_fields.ROW_FIELDS)
    names = [getattr(c, "name", None) or getattr(getattr(c, "clause", None), "name", None)
             for c in audit_log._entry_columns("sqlite")]
    width = audit_log.ENTRY_WIDTH
    assert width == len(audit_fields.FIELDS)
    assert [n for i, n in enumerate(names[:width]) if i != audit_log.ENTRY_AT] == [
        f for f in audit_fields.FIELDS if f != "at"]
    assert names[width:] == ["leaf_hash", "seq", "entry_version"]
    assert audit_fields.FIELDS[audit_log.ENTRY_CATEGORIES] == "categories"
    assert audit_fields.FIELDS[audit_log.ENTRY_FLAGS] == "flags"


def test_no_module_spells_the_list_again() -> None:
    """No second hand-written copy: the modules that handle whole entries do not spell out a run
    of field names (a literal "reason_digest" beside "request_id" is the tell)."""
    for module in (entry, records, verify, audit_log, audit_service):
        source = inspect.getsource(module)
        assert not ('"reason_digest", "request_id"' in source or '"reason_digest",\n    "request_id"' in source), module


def test_encode_refuses_a_row_missing_a_field() -> None:
    """The entry reads every field by name: a dropped field is an error, not a silent null — except
    the fields added later (`LATER_FIELDS`), which a row from before them lacks."""
    row = {name: None for name in audit_fields.FIELDS} | {"at": "2026-01-31T08:15:00.000000Z", "entry_version": 2}
    full = entry.encode(row)
    assert full.startswith(b"[2,")
    older = {k: v for k, v in row.items() if k not in audit_fields.LATER_FIELDS}
    assert entry.encode(older) == full
    del row["purpose"]
    try:
        entry.encode(row)
    except KeyError:
        return
    raise AssertionError("a row without purpose was encoded")
