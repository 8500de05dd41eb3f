"""Migrations are frozen: each does the same thing on every database whatever the live code has
become, so none imports ``consult`` outside ``consult.migrations``."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import consult.migrations
from consult.audit.entry import encode

MIGRATIONS = Path(consult.migrations.__file__).parent
FROZEN_SOURCES = sorted([*(MIGRATIONS / "versions").glob("*.py"), *(MIGRATIONS / "frozen").glob("*.py")])


def _consult_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n.split(".")[0] == "consult" and not n.startswith("consult.migrations")]
    return found


@pytest.mark.parametrize("path", FROZEN_SOURCES, ids=lambda p: p.name)
def test_a_migration_imports_nothing_of_the_live_code(path: Path) -> None:
    assert _consult_imports(path) == [], f"{path.name} imports live code"


def test_the_frozen_v1_entry_is_the_one_the_verifier_recomputes() -> None:
    import importlib

    m = importlib.import_module("consult.migrations.versions.0003_audit_merkle_log_checkpoints_reasons")
    row = {"leaf_index": 7, "id": "e1", "at": datetime(2026, 1, 31, 8, 15, 0, 123456, tzinfo=UTC),
           "actor_id": "kela.a", "actor_org": "kela", "actor_role": "advisor", "action": "disclose",
           "outcome": "permit", "consultation_id": "c1", "message_id": None, "client_ref": "cl_1",
           "categories": ["decision.period"], "purpose": "tt.application_intake", "basis": "x",
           "rule_id": "r", "policy_version": "v", "consent_id": None, "consent_version": None,
           "subject_user": None, "flags": None, "request_id": "q", "source": "127.0.0.1"}
    # Columns a pre-0003 row lacks (recipient_org, reason_id, ...) are null in both.
    assert m._entry_v1(row) == encode(row)
