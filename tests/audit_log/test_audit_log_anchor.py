"""The log is anchored outside the database: what someone with database access alone does to the
log — delete the stored checkpoints and rewrite a record with its hash recomputed, delete the last
checkpoint and cut the log back, delete a written reason — is caught by `consult audit verify`
against the checkpoint file the service keeps beside the database."""

from __future__ import annotations

import sqlite3

from tests.audit_log.test_audit_log_tamper import _rehash, _tampered, _verify, written  # noqa: F401


def test_rewrite_after_deleting_every_stored_checkpoint_is_caught(written):  # noqa: F811
    """Database access alone: every checkpoint row deleted and a record rewritten with its leaf hash
    recomputed. The stored rows are self-consistent; only the external checkpoint tells."""
    def change(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM audit_checkpoints")
        c.execute("UPDATE audit_events SET outcome = 'deny' WHERE leaf_index = 2")
        _rehash(c, 2)

    result = _verify(_tampered(written, "no-checkpoints", change), written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TAMPERED" in result.stdout and "first bad entry" in result.stdout, result.stdout


def test_deleting_the_last_checkpoint_and_cutting_the_log_back_is_caught(written):  # noqa: F811
    """Database access alone: the newest checkpoint row deleted and the log cut back to the size of
    the one before it, head adjusted. The database now agrees with itself."""
    signed = written["signed"]

    def change(c: sqlite3.Connection) -> None:
        (seq,) = c.execute("SELECT max(seq) FROM audit_checkpoints").fetchone()
        c.execute("DELETE FROM audit_checkpoints WHERE seq = ?", (seq,))
        c.execute("DELETE FROM audit_events WHERE leaf_index >= ?", (signed,))
        c.execute("UPDATE audit_head SET size = ?", (signed,))

    result = _verify(_tampered(written, "cut-back", change), written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"leaf {signed}" in result.stdout, result.stdout


def test_deleting_a_break_glass_reason_is_caught(written):  # noqa: F811
    """Database access alone: the written justification of a break-glass access deleted."""
    db = _tampered(written, "no-reason", lambda c: c.execute("DELETE FROM audit_reasons"))
    result = _verify(db, written["work"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "written reason" in result.stdout, result.stdout
