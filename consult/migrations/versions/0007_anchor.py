"""audit anchor

Entry version 2: an audit record carries the SHA-256 of the history row its act wrote beside the
log (a consent version and event, an agreement version, a prohibition) in ``subject_digest``.
A checkpoint row records whether it was also appended to the checkpoint file outside the
database (``kept_in_file``), so that a start without that file is refused instead of silently
beginning a new one. Records and checkpoints written before stay as they were (entry version 1;
not kept in a file).

Revision ID: 0007_anchor
Revises: 0011_signals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_anchor'
down_revision = '0011_signals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_digest', sa.String(length=64), nullable=True))
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kept_in_file', sa.Boolean(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.drop_column('kept_in_file')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('subject_digest')
