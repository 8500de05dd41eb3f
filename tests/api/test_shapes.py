"""Each request body and success answer is declared once, as a Struct, and the OpenAPI document
and the edge agree on it.

The declarations are read from the route table; the document is read from the running app.
Bodies the document allows are generated from its schemas and must pass the edge's reader; a
field given a JSON type its schema forbids must be refused naming that field.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consult.errors import Unprocessable
from consult.http import keys, shapes
from consult.http.app import routes_for
from consult.http.openapi import build_document
from consult.http.route import Route, names
from consult.http.schemas import ConsultationPage
from tests.api.test_request_schemas import alternatives, json_bodies

_WRONG: list[Any] = [{"zz": 1}, ["zz"], 12345, 1.5, "zz", True, None]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a value of ``schema`` may have (an enum's values' types; integer when number)."""
    found: set[str] = set()
    for member in alternatives(schema):
        kinds = member.get("type")
        if kinds is None and "enum" in member:
            kinds = [_json_type(v) for v in member["enum"]]
        found.update(kinds if isinstance(kinds, list) else [kinds])
    if "number" in found:
        found.add("integer")
    return found


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of ``schema`` as far as the API's request schemas use JSON Schema."""
    if "anyOf" in schema:
        return st.one_of([strategy(m) for m in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(10 ** 6)), schema.get("maximum", 10 ** 6))
    if kind == "number":
        return st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 50)
        text = st.from_regex(schema["pattern"]) if "pattern" in schema else st.text(max_size=min(high, 50))
        return text.filter(lambda t: low <= len(t) <= high)
    if kind == "array":
        return st.lists(strategy(schema["items"]), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 3), 3))
    assert kind == "object", schema
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries({k: strategy(v) for k, v in properties.items() if k in required},
                                 optional={k: strategy(v) for k, v in properties.items() if k not in required})


def _routes(settings_: Any) -> tuple[Route, ...]:
    return routes_for(settings_)


def test_every_route_with_a_json_body_declares_a_struct(settings):
    """A body the handler would read as a dict has no declaration to check it or document it."""
    undeclared = [f"{r.method} {r.path}" for r in _routes(settings)
                  if r.body is not None and r.body_type == "application/json" and not r.reads_body]
    assert not undeclared
    assert sum(r.reads_body for r in _routes(settings)) >= 20


def _undeclared(shape: Any, base: type) -> bool:
    """True unless ``shape`` is a ``base`` Struct type (or a list of one)."""
    if get_origin(shape) is list:
        return _undeclared(get_args(shape)[0], base)
    return not (isinstance(shape, type) and issubclass(shape, base))


def test_no_body_or_answer_is_a_json_schema_dict(settings):
    """Every body and every JSON answer of every route (other statuses too) is a declared type: a
    JSON Schema dict would be documented but neither read by the edge nor checked as an answer.
    Only an answer of another content type is ``str`` or ``bytes``; query parameters may stay dicts."""
    found = []
    for r in _routes(settings):
        where = f"{r.method} {r.path}"
        if r.body is not None and _undeclared(r.body, shapes.Body):
            found.append(f"{where}: body {r.body!r:.60}")
        if r.content_type == "application/json" and _undeclared(r.response, shapes.Answer):
            found.append(f"{where}: answer {r.response!r:.60}")
        if r.content_type != "application/json" and r.response not in (str, bytes):
            found.append(f"{where}: {r.content_type} answer {r.response!r:.60}")
        found += [f"{where}: {status} answer {shape!r:.60}" for status, _text, shape in r.other_responses
                  if _undeclared(shape, shapes.Answer)]
    assert found == []


def test_the_document_has_no_inline_body_or_answer_schema(settings):
    """In the generated document every body and every JSON answer is a reference to a component
    generated from its Struct, or a list of one; only the document itself is a bare object."""
    document = build_document(_routes(settings))
    bare = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            contents = [("body", op.get("requestBody", {}).get("content", {}))]
            contents += [(status, answer.get("content", {})) for status, answer in op["responses"].items()]
            for what, content in contents:
                for kind, media in content.items():
                    schema = media["schema"]
                    schema = schema.get("items", schema) if schema.get("type") == "array" else schema
                    if "$ref" not in schema and schema.get("type") == "object":
                        bare.append(f"{method.upper()} {path} {what} {kind}")
    assert bare == ["GET /api/v1/openapi.json 200 application/json"]


def test_the_upload_form_is_documented_from_its_struct(settings):
    """The multipart upload's parts come from its declaration: the file as binary, and the object
    part (``sensitive_confirmation``) as JSON, which is how the handler reads it."""
    document = build_document(_routes(settings))
    media = document["paths"]["/api/v1/consultations/{id}/attachments"]["post"]["requestBody"]["content"]
    form = media["multipart/form-data"]
    assert form["schema"] == {"$ref": "#/components/schemas/Upload"}
    assert form["encoding"] == {"sensitive_confirmation": {"contentType": "application/json"}}
    upload = document["components"]["schemas"]["Upload"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}
    assert upload["required"] == ["file"] and upload["additionalProperties"] is False


async def test_a_body_the_document_allows_passes_the_edge_and_a_forbidden_type_is_refused(api):
    """Walked over every JSON request body the document describes: generated schema-valid bodies
    are read by the edge without a refusal; each property given a JSON type its schema does not
    allow is refused with a 422 naming it."""
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    declared = {(r.method, r.path): r.body for r in _routes(api.client.app[keys.SETTINGS])}

    class _Request:
        app = api.client.app

    known = names(_Request())  # type: ignore[arg-type]
    walked = 0
    for method, path, schema in json_bodies(document):
        shape = declared[(method, path)]
        assert isinstance(shape, type) and issubclass(shape, shapes.Body), (method, path)
        examples: list[Any] = []

        @hypothesis_settings(max_examples=15, database=None, derandomize=True, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=strategy(schema))
        def accepted(body: dict[str, Any]) -> None:
            shapes.convert(body, shape, known)
            examples.append(body)

        accepted()
        base = examples[-1]
        for name, sub in schema["properties"].items():
            for wrong in (w for w in _WRONG if _json_type(w) not in _types(sub)):
                with pytest.raises(Unprocessable) as refused:
                    shapes.convert({**base, name: wrong}, shape, known)
                assert refused.value.status == 422
                assert refused.value.message.startswith(name), (method, path, name, refused.value.message)
        walked += 1
    assert walked >= 20


def test_an_answer_outside_its_declaration_is_found():
    """The development-mode check of answers fails on a field the declaration does not name and
    on a missing required one, and passes the declared shape."""
    good = b'{"items": [], "next": null}'
    shapes.check_answer(good, ConsultationPage)
    for bad in (b'{"items": [], "next": null, "extra": 1}', b'{"items": []}',
                b'{"items": [{"id": "x"}], "next": null}'):
        with pytest.raises(shapes.UndeclaredAnswer):
            shapes.check_answer(bad, ConsultationPage)


async def test_the_pools_of_an_org_that_cannot_exist_are_answered_as_declared(api):
    """The development-mode answer check found this answer without its ``unpooled`` list; an org
    that is not shaped like one is refused by the query's declaration."""
    body = await api.call("GET", "/api/v1/pools?org=no-such-org", "kela.aino", expect=200)
    assert body == {"items": [], "next": None, "unpooled": []}
    refused = await api.call("GET", "/api/v1/pools?org=Not%20An%20Org", "kela.aino", expect=400)
    assert refused["error"] == {"code": "bad_query", "message": "org: is not of the form the document describes."}
