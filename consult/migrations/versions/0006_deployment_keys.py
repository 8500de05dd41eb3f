"""deployment keys

The database records the deployment it belongs to: the audit origin, the fingerprints of the
audit signing key and of the blind-index key (one row), and the fingerprint and status of every
key-encryption-key version. Start-up compares the configured key files with these and refuses
any that do not match, so a database never meets new keys silently. A database upgraded from
0005 has no row yet: the service adopts its keys at the next start, after checking that the
stored data decrypts and the newest checkpoint verifies with them.

The tables are defined here, not imported from the application, so the migration stays what it
was when written.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployment',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.Column('audit_key_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('audit_verifier_key', sa.String(length=300), nullable=False),
    sa.Column('blind_index_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('bound', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment'))
    )
    op.create_table('deployment_keks',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_deployment_keks'))
    )


def downgrade() -> None:
    op.drop_table('deployment_keks')
    op.drop_table('deployment')
