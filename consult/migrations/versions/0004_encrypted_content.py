"""Encrypted content: questions, notes, message texts, data values, referral justifications and
attachments stored only as AES-256-GCM ciphertext under per-consultation data keys; legal hold
and crypto-shredding columns.

Rows written by an earlier version are sealed here, with the keyring of ``CONSULT_KEY_FILE``
(default ``keys.json`` in ``CONSULT_DATA_DIR``), using the same associated data as the service:
the envelope format of this revision, frozen with it in ``consult/migrations/frozen/envelope_0004.py``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from consult.migrations.frozen.envelope_0004 import data_key, open_keyring, seal

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("outcome_note_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("legal_hold", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("shredded_at", TS, nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("message_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("attachment_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("referral_justification_sealed", sa.LargeBinary(), nullable=True))

    _seal_existing_rows(op.get_bind())

    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_column("question")
        batch_op.drop_column("outcome_note")
        batch_op.alter_column("question_sealed", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("text")
        batch_op.alter_column("text_sealed", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("message_items", schema=None) as batch_op:
        batch_op.drop_column("value")
        batch_op.drop_column("referral_justification")
        batch_op.alter_column("value_sealed", existing_type=sa.LargeBinary(), nullable=False)

    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("consultation_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("content_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultations.id"],
                                name=op.f("fk_attachments_consultation_id_consultations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_consultation_id"), ["consultation_id"], unique=False)


def _seal_existing_rows(bind: sa.Connection) -> None:
    """Seal what an earlier version stored in clear; nothing to do on a new database."""
    consultations = bind.execute(sa.text("SELECT id, question, outcome_note FROM consultations")).all()
    if not consultations:
        return
    # The service's own key file: CONSULT_KEY_FILE, else keys.json in CONSULT_DATA_DIR.
    keyring = open_keyring()
    now = datetime.now(UTC)

    for cid, question, note in consultations:
        owner = f"consultation:{cid}"
        dek, wrapped = data_key(keyring, owner)
        bind.execute(sa.text("INSERT INTO data_keys (owner, kek_version, wrapped, created_at) "
                             "VALUES (:o, :v, :w, :t)"),
                     {"o": owner, "v": wrapped.version, "w": wrapped.blob, "t": now})
        bind.execute(sa.text("UPDATE consultations SET question_sealed = :q, outcome_note_sealed = :n WHERE id = :id"),
                     {"id": cid, "q": seal(dek, "consultations", cid, "question", question),
                      "n": None if note is None else seal(dek, "consultations", cid, "outcome_note", note)})
        for mid, text in bind.execute(sa.text("SELECT id, text FROM messages WHERE consultation_id = :c"),
                                      {"c": cid}).all():
            bind.execute(sa.text("UPDATE messages SET text_sealed = :t WHERE id = :id"),
                         {"id": mid, "t": seal(dek, "messages", mid, "text", text)})
            items = bind.execute(sa.text("SELECT idx, value, referral_justification FROM message_items "
                                         "WHERE message_id = :m"), {"m": mid}).all()
            for idx, value, justification in items:
                row = f"{mid}/{idx}"
                bind.execute(sa.text("UPDATE message_items SET value_sealed = :v, referral_justification_sealed = :j "
                                     "WHERE message_id = :m AND idx = :i"),
                             {"m": mid, "i": idx, "v": seal(dek, "message_items", row, "value", value),
                              "j": None if justification is None
                              else seal(dek, "message_items", row, "referral_justification", justification)})


def downgrade() -> None:
    raise NotImplementedError("Encrypted content cannot be downgraded to plaintext columns.")
