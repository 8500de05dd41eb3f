"""what a message's sender was told was withheld

A message keeps, sealed under its consultation's key like its text, the policy outcome its
sender was shown when it was sent: per recipient and item index, the category, effect, rule,
citation and reason — never an item's value. Only the author is shown it again. Null for
messages sent before.

Revision ID: 0017_sent_withheld
Revises: 0016_presence_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_sent_withheld'
down_revision = '0016_presence_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('sent_policy_sealed', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('sent_policy_sealed')
