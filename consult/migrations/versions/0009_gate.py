"""content gate

Free text that another organisation reads is filtered per reader at every read, the close note
included: the close note records its author (who closed the consultation, in which organisation
and role) and the positions of the identifiers in it, and every data item records the positions
of the identifiers in its value. Positions only, never the values.

Fields that the content gate now refuses when they hold an identifier, and that were stored in
clear before it — case references, consent evidence references, agreement references (with
their kept versions), display names of users, experts and message authors — have every
identifier the scanner finds replaced by "[poistettu]". Sealed content cannot be read here
(upgrading needs no keys), and the append-only audit log is never rewritten.

Revision ID: 0009_gate
Revises: 0008_hetu
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from consult.migrations.frozen.scanner_0009 import redact, scan

revision = '0009_gate'
down_revision = '0008_hetu'
branch_labels = None
depends_on = None


_REMOVED = "[poistettu]"
# (table, column) kept in clear and now gated as a reference or a name.
_CLEAR_TEXT = (("consultations", "case_ref"), ("consents", "evidence_ref"), ("agreements", "reference"),
               ("directory_users", "name"), ("experts", "name"), ("messages", "author_name"))


def _without_identifiers(value: str) -> str:
    # What the gate of this revision refuses, this removes (the scanner frozen with it).
    found = scan(value)
    return redact(value, found, lambda _kind: _REMOVED) if found else value


def _redact_clear_text() -> None:
    conn = op.get_bind()
    for table_name, column_name in _CLEAR_TEXT:
        column = sa.column(column_name, sa.String)
        table = sa.table(table_name, column)
        for (value,) in conn.execute(sa.select(column).where(column.is_not(None)).distinct()).all():
            cleaned = _without_identifiers(value)
            if cleaned != value:
                conn.execute(sa.update(table).where(column == value).values({column_name: cleaned}))
    versions = sa.table("agreement_versions", sa.column("agreement_id", sa.String), sa.column("version", sa.Integer),
                        sa.column("snapshot", sa.JSON))
    for agreement_id, version, snapshot in conn.execute(sa.select(versions.c.agreement_id, versions.c.version,
                                                                  versions.c.snapshot)).all():
        reference = (snapshot or {}).get("reference")
        if isinstance(reference, str) and _without_identifiers(reference) != reference:
            conn.execute(sa.update(versions).where(versions.c.agreement_id == agreement_id,
                                                   versions.c.version == version)
                         .values(snapshot={**snapshot, "reference": _without_identifiers(reference)}))


def upgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.add_column(sa.Column('outcome_note_spans', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('closed_by', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('closed_org', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('closed_role', sa.String(length=32), nullable=True))
    with op.batch_alter_table('message_items') as batch:
        batch.add_column(sa.Column('value_spans', sa.JSON(), nullable=True))
    _redact_clear_text()


def downgrade() -> None:
    with op.batch_alter_table('message_items') as batch:
        batch.drop_column('value_spans')
    with op.batch_alter_table('consultations') as batch:
        batch.drop_column('closed_role')
        batch.drop_column('closed_org')
        batch.drop_column('closed_by')
        batch.drop_column('outcome_note_spans')
