"""signals in free text

A message and a consultation's question record the categories that their free text looked
like and that the sender confirmed sending to another organisation (policies/signals.toml):
category names only, never text. Null for everything written before, and for text that was
not flagged.

Revision ID: 0011_signals
Revises: 0009_gate
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_signals'
down_revision = '0009_gate'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('flagged_categories', sa.JSON(), nullable=True))
    with op.batch_alter_table('consultations') as batch:
        batch.add_column(sa.Column('question_flagged', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.drop_column('question_flagged')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('flagged_categories')
