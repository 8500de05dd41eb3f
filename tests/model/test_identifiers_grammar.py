"""One identifier grammar (consult/model/identifiers.py): validation, the token check, the gate,
the services and the command line read the same shapes, and no module spells one again."""

from __future__ import annotations

import pathlib
import re

import pytest

from consult.auth import tokens
from consult.errors import Unprocessable
from consult.http import api_admin, api_audit, shapes, validation
from consult.model import identifiers
from consult.services import client_merges, clients, gate

ROOT = pathlib.Path(__file__).resolve().parents[2] / "consult"
HOME = ROOT / "model" / "identifiers.py"
#: Fragments that only a copy of one of the grammars would contain.
COPIES = (
    re.compile(r"A-Za-z0-9\._@:-"),  # user ids
    re.compile(r"cl_\[[0-9A-Za-z-]"),  # client references
    re.compile(r"\[0-9a-f\]\{8\}-"),  # UUIDs
    re.compile(r"\[a-z0-9_-\]\{1,64\}"),  # organisation ids
)


def test_no_second_copy_of_an_identifier_grammar() -> None:
    """A regex for a user id, client reference, UUID or organisation id outside the one module
    (frozen migrations keep the copies they were written with) fails here."""
    found = []
    for path in ROOT.rglob("*.py"):
        if path == HOME or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in COPIES if p.search(text)]
    assert found == []


def _pattern(shape: type, name: str) -> str:
    (parameter,) = [p for p in shapes.query_parameters(shape) if p["name"] == name]
    schema = parameter["schema"]
    return str(schema.get("items", schema)["pattern"])


def test_every_reader_uses_the_same_patterns() -> None:
    assert validation._ID is identifiers.USER_ID is tokens._ID
    assert validation._ORG is identifiers.ORG is tokens._ORG
    # Query parameters are read by their declarations, with the shared shapes of consult/http/shapes.py.
    assert _pattern(api_audit.AuditFilter, "actor") == _pattern(api_audit.AuditFilter, "client_ref") \
        == shapes.whole(identifiers.USER_ID_SHAPE)
    assert _pattern(api_admin.RecordExportQuery, "client_ref") == shapes.whole(identifiers.CLIENT_REF_SHAPE)
    assert gate._ISSUED_ID is identifiers.ISSUED_ID
    assert client_merges._LINK is identifiers.CLIENT_LINK


def test_issued_references_fit_the_grammar_the_gate_and_storage_accept() -> None:
    """What the service issues, it accepts again everywhere: the gate treats it as an issued id
    (never a person's identifier) and the lookup accepts its shape."""
    for _ in range(50):
        ref = clients.new_client_ref()
        assert identifiers.ISSUED_CLIENT_REF.match(ref)
        assert identifiers.is_client_ref(ref)
        assert identifiers.is_issued_id(ref)
        assert not gate.holds_identifier(ref)
        assert identifiers.CLIENT_LINK.fullmatch(f"[client:{ref}]")


class _UserIdBody(shapes.Body):
    id: shapes.UserId


class _OrgBody(shapes.Body):
    org: shapes.OrgId


@pytest.mark.parametrize("value", ["abc\n", "kela\n", "x" * 129, "", "a b", "é"])
def test_a_trailing_newline_or_foreign_character_is_not_an_id(value: str) -> None:
    """``$`` matches before a final newline: the anchored grammar does not let one through."""
    with pytest.raises(Unprocessable):
        shapes.convert({"id": value}, _UserIdBody, {})
    assert not identifiers.is_user_id(value)


@pytest.mark.parametrize("value", ["kela\n", "Kela", "x" * 65])
def test_an_org_id_is_lowercase_and_whole(value: str) -> None:
    with pytest.raises(Unprocessable):
        shapes.convert({"org": value}, _OrgBody, {})


@pytest.mark.parametrize("value", ["cl_\n", "cl_abc\n", "cl_" + "a" * 38, "CL_abc", "cl_ab-c"])
def test_a_malformed_client_ref_is_refused(value: str) -> None:
    assert not identifiers.is_client_ref(value)
    assert not identifiers.CLIENT_REF.match(value)
