"""ended sessions

An administrator can end a user's sessions: every token of that user in that organisation
issued at or before the moment is refused from then on, and the user's live connections are
closed. One row per (organisation, user) keeps the latest such moment.

Revision ID: 0014_sessions
Revises: 0013_consent
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_sessions'
down_revision = '0013_consent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'session_ends',
        sa.Column('org', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.String(128), primary_key=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_by', sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('session_ends')
