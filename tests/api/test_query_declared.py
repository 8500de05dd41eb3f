"""Query parameters are declared once (a ``shapes.Query`` per route): the edge reads them by that
declaration and the document describes them from it, so what the document says of a parameter
is what the service enforces.

Before, each handler read ``request.query`` itself and each route described its parameters in
a hand-written schema: the two had drifted (a receipt's ``lang`` documented as fi/sv/en took
any value and answered in Finnish; the audit filters documented a length where the handler
checked a grammar; the statistics months and the holidays' year answered 422 where every other
parameter answered 400).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from consult.auth.dev import DEMO_USERS
from consult.config import Settings
from consult.http import shapes
from consult.http.app import routes_for
from consult.http.openapi import build_document
from tests.api.test_clients_consents import CONSENT
from tests.synthetic import hetu

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "consult" / "http" / "route.py"
SKIP = {"/api/v1/ws", "/api/v1/openapi.json"}


def test_no_handler_reads_the_query_string_itself() -> None:
    """Only the edge (consult/http/route.py) reads ``request.query``, into the route's declaration."""
    found = []
    for path in (ROOT / "consult").rglob("*.py"):
        if path == EDGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("query", "rel_url", "query_string")
                    and isinstance(node.value, ast.Name) and node.value.id == "request"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_every_route_declares_its_parameters_as_one_struct_and_the_document_is_made_from_it() -> None:
    routes = routes_for(Settings(dev=True, demo=True, data_dir=ROOT / "does-not-exist"))
    document = build_document(routes)
    declared = 0
    for route in routes:
        op = document["paths"][route.path][route.method.lower()]
        described = [p for p in op.get("parameters", []) if p["in"] == "query"]
        if route.query is None:
            assert described == [], route.path
            continue
        declared += 1
        assert issubclass(route.query, shapes.Query), route.path
        assert described == shapes.query_parameters(route.query), route.path
    assert declared >= 20


def _caller(op: dict[str, Any]) -> str:
    """A demo user the route's role check lets through (the parameters are read after it)."""
    roles = set(op.get("x-roles") or [])
    if not roles:
        return "kela.aino"
    return next(u.user_id for u in DEMO_USERS if roles & set(u.roles))


def _breaking(schema: dict[str, Any]) -> list[str]:
    """Values the schema refuses, one per constraint it states."""
    item = schema.get("items", schema)
    values = []
    if "enum" in item:
        values.append("not-a-listed-value")
    if "maximum" in item:
        values.append(str(item["maximum"] + 1))
    if item.get("minimum", 0) > 0:
        values.append(str(item["minimum"] - 1))
    if "maxLength" in item:
        values.append("a" * (item["maxLength"] + 1))
    if "pattern" in item:
        # A value of the wrong form: spaces and punctuation for a name, a control character for text.
        values.append(next(c for c in ("Not Of That Form!", "a\x01b") if not re.search(item["pattern"], c)))
    if item.get("type") == "integer":
        values.append("twelve")
    if item.get("format") == "date-time" or "YYYY-MM" in item.get("description", ""):
        values.append("yesterday")
    return values


async def test_every_constraint_the_document_states_of_a_parameter_is_enforced(api) -> None:
    """For each query parameter of the served document, a value breaking each stated constraint is
    refused with 400 bad_query naming the parameter (and no value); each listed value of an enum is
    taken."""
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    consultation = await api.open_consultation()
    values = {"id": consultation["id"], "ref": await api.register(hetu(931)), "user_id": "vantaa.mikko",
              "org": "vantaa", "name": "backup"}
    refused, listed = 0, 0
    for path, operations in document["paths"].items():
        if path in SKIP:
            continue
        url = path.format(**values)
        for method, op in operations.items():
            user = _caller(op)
            for parameter in (p for p in op.get("parameters", []) if p["in"] == "query"):
                name = parameter["name"]
                for value in _breaking(parameter["schema"]):
                    response = await api.client.request(method.upper(), url, params={name: value},
                                                        headers=api.auth(user))
                    body = await response.json()
                    assert response.status == 400, (method, path, name, value, response.status, body)
                    assert body["error"]["code"] == "bad_query", (path, name, body)
                    assert re.match(rf"{name}(\[\d+\])?: ", body["error"]["message"]), (path, name, body)
                    assert value not in body["error"]["message"], (path, name, body)
                    refused += 1
                for value in parameter["schema"].get("enum", []):
                    response = await api.client.request(method.upper(), url, params={name: value},
                                                        headers=api.auth(user))
                    text = await response.text()
                    assert "bad_query" not in text, (method, path, name, value, response.status, text)
                    listed += 1
    assert refused > 60 and listed > 20, (refused, listed)


@pytest.mark.parametrize(("path", "value"), [("/api/v1/holidays?year=", "99999"),
                                              ("/api/v1/stats?from=", "2026-13")])
async def test_a_number_or_month_out_of_range_is_malformed_like_any_other_parameter(api, path, value) -> None:
    body = await api.call("GET", path + value, "kela.admin", expect=400)
    assert body["error"]["code"] == "bad_query"
    assert value not in body["error"]["message"]


async def test_a_receipt_in_a_language_it_is_not_written_in_is_refused_not_given_in_finnish(api) -> None:
    ref = await api.register(hetu(932))
    consent = await api.call("POST", f"/api/v1/clients/{ref}/consents", "kela.aino", json=CONSENT, expect=201)
    receipt = f"/api/v1/consents/{consent['id']}/receipt"
    assert "KUITTI ASIAKKAALLE" in await api.call("GET", receipt, "kela.aino", expect=200)
    assert "KVITTO TILL KUNDEN" in await api.call("GET", receipt + "?lang=sv", "kela.aino", expect=200)
    body = await api.call("GET", receipt + "?lang=de", "kela.aino", expect=400)
    assert body["error"] == {"code": "bad_query",
                             "message": "lang: is not one of the values the document lists."}


async def test_repeated_client_references_are_each_checked(api) -> None:
    url = "/api/v1/retention/client-record?client_ref=cl_abc&client_ref=Not%20A%20Ref"
    body = await api.call("GET", url, "vantaa.ville", expect=400)
    assert body["error"]["code"] == "bad_query" and body["error"]["message"].startswith("client_ref")
    too_many = "&".join(f"client_ref=cl_{n:04d}" for n in range(1001))
    await api.call("GET", f"/api/v1/retention/client-record?{too_many}", "vantaa.ville", expect=400)
    await api.call("GET", "/api/v1/retention/client-record?client_ref=cl_abc&client_ref=cl_def", "vantaa.ville",
                   expect=200)


async def test_the_largest_tree_position_is_taken_and_one_above_it_is_refused(api) -> None:
    """An audit log position may be up to 2^62 (19 digits): the reader takes every digit the bound
    needs, and the declaration refuses what is above it."""
    largest, above = str(1 << 62), str((1 << 62) + 1)
    answer = await api.call("GET", f"/api/v1/audit/proof/consistency?first={largest}", "kela.tuula")
    assert answer.get("error", {}).get("code") != "bad_query", answer
    refused = await api.call("GET", f"/api/v1/audit/proof/consistency?first={above}", "kela.tuula", expect=400)
    assert refused["error"]["code"] == "bad_query" and above not in refused["error"]["message"]
