"""content gate

Free text that another organisation reads is filtered per reader at every read, the close note
included: the close note records its author (who closed the consultation, in which organisation
and role) and the positions of the identifiers in it, and every data item records the positions
of the identifiers in its value. Positions only, never the values.

Revision ID: 0009_gate
Revises: 0008_hetu
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009_gate'
down_revision = '0008_hetu'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.add_column(sa.Column('outcome_note_spans', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('closed_by', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('closed_org', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('closed_role', sa.String(length=32), nullable=True))
    with op.batch_alter_table('message_items') as batch:
        batch.add_column(sa.Column('value_spans', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('message_items') as batch:
        batch.drop_column('value_spans')
    with op.batch_alter_table('consultations') as batch:
        batch.drop_column('closed_role')
        batch.drop_column('closed_org')
        batch.drop_column('closed_by')
        batch.drop_column('outcome_note_spans')
