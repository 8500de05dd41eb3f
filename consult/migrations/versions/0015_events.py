"""live events

Every live event about a consultation is kept, per recipient, as that reader's rendering sealed
under the consultation's data key, so that a client that reconnects gets what it missed and every
server instance on the database hands new events to its own connections. Kept for a bounded time;
``live_event_horizon`` remembers the newest id pruned, so a reconnect after it is told its replay
is incomplete.

Revision ID: 0015_events
Revises: 0014_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_events'
down_revision = '0014_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'live_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('user_id', sa.String(128), nullable=False),
        sa.Column('consultation_id', sa.String(36), nullable=False),
        sa.Column('ref', sa.String(32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('payload_sealed', sa.LargeBinary(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_live_events_user_id', 'live_events', ['user_id', 'id'])
    op.create_index('ix_live_events_created_at', 'live_events', ['created_at'])
    op.create_table(
        'live_event_horizon',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column('pruned_through', sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO live_event_horizon (id, pruned_through) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table('live_event_horizon')
    op.drop_index('ix_live_events_created_at', table_name='live_events')
    op.drop_index('ix_live_events_user_id', table_name='live_events')
    op.drop_table('live_events')
