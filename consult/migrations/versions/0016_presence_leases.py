"""presence and job leases

Several server instances on one database act as one service: each instance's live connections
are rows of ``presence`` (renewed by its heartbeat, counted only until they expire), and each
periodic job runs only on the instance holding its row in ``job_leases``.

Revision ID: 0016_presence_leases
Revises: 0015_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_presence_leases'
down_revision = '0015_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'presence',
        sa.Column('instance_id', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.String(128), primary_key=True),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'job_leases',
        sa.Column('name', sa.String(64), primary_key=True),
        sa.Column('holder', sa.String(64), nullable=False),
        sa.Column('term', sa.BigInteger(), nullable=False),
        sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('job_leases')
    op.drop_table('presence')
