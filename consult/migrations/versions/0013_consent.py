"""consents name their disclosing organisation and an oral consent's witness; referrals record
why consent could not be obtained; child-welfare notifications record their notifier

A consent now names the organisation whose disclosure it waives secrecy for (julkisuuslaki
621/1999 29 § 1 mom. 2 k.) and, when given orally, who witnessed it. Existing rows are left as
they were (the audit log vouches for them); the service reads an older consent's disclosing
organisation as its recorder where the recorder is not among the recipients, and an open-ended
one as ending 365 days after it became valid (consult/services/consents.py).

A § 35(2) referral item now keeps, sealed, why the person's consent could not be obtained
(message_items.referral_why_no_consent_sealed; NULL on items sent before). A child-welfare
notification (a consultation of purpose ls.notification) records its notifier and the policy
decision it went under (child_welfare_notifications).

Revision ID: 0013_consent
Revises: 0012_close_flags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_consent'
down_revision = '0012_close_flags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consents') as batch:
        batch.add_column(sa.Column('disclosing_org', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('witnessed_by', sa.String(length=200), nullable=True))
    with op.batch_alter_table('message_items') as batch:
        batch.add_column(sa.Column('referral_why_no_consent_sealed', sa.LargeBinary(), nullable=True))
    op.create_table('child_welfare_notifications',
    sa.Column('consultation_id', sa.String(length=36), nullable=False),
    sa.Column('notifier_id', sa.String(length=128), nullable=False),
    sa.Column('notifier_name', sa.String(length=200), nullable=False),
    sa.Column('notifier_org', sa.String(length=64), nullable=False),
    sa.Column('notifier_role', sa.String(length=32), nullable=False),
    sa.Column('rule_id', sa.String(length=128), nullable=False),
    sa.Column('basis', sa.String(length=200), nullable=False),
    sa.Column('citation', sa.Text(), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'],
                            name=op.f('fk_child_welfare_notifications_consultation_id_consultations')),
    sa.PrimaryKeyConstraint('consultation_id', name=op.f('pk_child_welfare_notifications'))
    )


def downgrade() -> None:
    op.drop_table('child_welfare_notifications')
    with op.batch_alter_table('message_items') as batch:
        batch.drop_column('referral_why_no_consent_sealed')
    with op.batch_alter_table('consents') as batch:
        batch.drop_column('witnessed_by')
        batch.drop_column('disclosing_org')
