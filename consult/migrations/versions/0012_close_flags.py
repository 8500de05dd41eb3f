"""close note signals

A consultation records the categories that its close note looked like and that the closer
confirmed sending to another organisation (policies/signals.toml), like a message: category
names only, never text. Null for everything closed before, and for a note that was not flagged.

Revision ID: 0012_close_flags
Revises: 0007_anchor
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_close_flags'
down_revision = '0007_anchor'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.add_column(sa.Column('outcome_flagged', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('consultations') as batch:
        batch.drop_column('outcome_flagged')
