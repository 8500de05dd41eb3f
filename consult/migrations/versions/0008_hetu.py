"""identity-code form and client merges

Identity codes used to be indexed as typed (an en dash kept), so one person could be several
clients. Each client now records the form its blind index was computed under (1: as typed,
before this revision; 2: the canonical form of consult/model/hetu.py), and ``client_merges``
records every duplicate merged into the client that survives, so that the audit records of the
merged reference stay findable (the append-only log is never rewritten). The re-indexing itself
needs the keys and runs as ``consult clients merge-duplicates``.

Revision ID: 0008_hetu
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_hetu'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients') as batch:
        batch.add_column(sa.Column('hetu_form', sa.SmallInteger(), server_default='1', nullable=False))
    op.create_table('client_merges',
    sa.Column('merged_ref', sa.String(length=40), nullable=False),
    sa.Column('into_ref', sa.String(length=40), nullable=False),
    sa.Column('merged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('links_repointed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('merged_ref', name=op.f('pk_client_merges'))
    )
    op.create_index(op.f('ix_client_merges_into_ref'), 'client_merges', ['into_ref'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_client_merges_into_ref'), table_name='client_merges')
    op.drop_table('client_merges')
    with op.batch_alter_table('clients') as batch:
        batch.drop_column('hetu_form')
