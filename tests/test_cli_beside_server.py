"""Commands beside a running server on the same SQLite file: writers coordinate through SQLite's own
locks; a schema change is refused while another process has the database open."""

from __future__ import annotations

from tests.serverproc import ServerProcess


def test_db_upgrade_is_refused_while_the_server_has_the_database_open(tmp_path):
    """Property: `consult db upgrade` never changes the schema under a running server; it says so in
    one line and changes nothing, and runs once the server has stopped."""
    server = ServerProcess(tmp_path).start()
    try:
        acked = server.consultation()
        refused = server.cli("db", "upgrade")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        line = refused.stderr.strip()
        assert "\n" not in line and line.startswith("refused:") and "open in another process" in line
        assert "consult db upgrade" in line
        assert server.consultation()  # the server still serves and writes
    finally:
        server.stop()
    upgraded = server.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert server.query("SELECT count(*) FROM consultations WHERE id = ?", acked) == [(1,)]
