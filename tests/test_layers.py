"""The layering of the README's Architecture section holds: edge → auth → policy → services →
audit · storage · crypto."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is part of the test dependencies"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # the contracts that keep the wiring in the composition root and the migrations frozen are there
    for name in ("HTTP handlers do not import storage, crypto or the audit internals",
                 "Migrations are frozen: they import nothing of consult outside consult.migrations"):
        assert name in " ".join(result.stdout.split()), name


def test_the_migrations_are_visible_to_the_import_contracts():
    """Alembic loads revisions from their files; as a package they are part of the import graph."""
    assert (ROOT / "consult" / "migrations" / "versions" / "__init__.py").is_file()


#: The envelope encryption migration 0004 applies, frozen with it (it may not import consult.crypto).
FROZEN_CRYPTO = ROOT / "consult" / "migrations" / "frozen" / "envelope_0004.py"


def test_only_crypto_imports_hazmat():
    """Property: the hazardous primitives are reachable only through consult/crypto/ (and the frozen
    copy of it that migration 0004 seals existing rows with)."""
    offenders = []
    for path in (ROOT / "consult").rglob("*.py"):
        if path.parent.name == "crypto" or path == FROZEN_CRYPTO:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("cryptography")]
    assert offenders == []


SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_", "exists", "Table",
                "Column", "MetaData"}


def test_only_storage_writes_sql():
    """Property: SQL statements are built in consult/storage/ only (and the migrations)."""
    offenders = []
    for path in (ROOT / "consult").rglob("*.py"):
        rel = path.relative_to(ROOT / "consult")
        if rel.parts[0] in ("storage", "migrations"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                offenders += [f"{rel}: {a.name}" for a in node.names if a.name in SQL_BUILDERS]
            elif isinstance(node, ast.Import):
                offenders += [f"{rel}: {a.name}" for a in node.names if a.name.startswith("sqlalchemy.sql")]
    assert offenders == []
