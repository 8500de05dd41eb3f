"""The OpenAPI document and the edge agree on every request body (docs/capabilities.md: public API, security floor).

The document is read from the running app; each request schema is checked against what the
app actually does with a body: every object the document describes is closed
(``additionalProperties: false``) exactly because the edge refuses any other field there, at
every depth, and a value type the document leaves out is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from consult.auth.dev import DEMO_USERS

USERS = [u.user_id for u in DEMO_USERS]
#: A well-formed value for each path parameter, so a request reaches the body check.
PATH_VALUES = {"id": "x1", "ref": "cl_x1", "user_id": "vantaa.mikko", "org": "vantaa", "name": "backup"}
UNKNOWN = "zz_not_a_field"


def _path(template: str) -> str:
    for name, value in PATH_VALUES.items():
        template = template.replace("{" + name + "}", value)
    return template


def inline(node: Any, document: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``components/schemas`` replaced by what it names."""
    if isinstance(node, list):
        return [inline(x, document) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        return inline(document["components"]["schemas"][name], document)
    return {k: inline(x, document) for k, x in node.items()}


def json_bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield method.upper(), path, inline(content["application/json"]["schema"], document)


def alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a value may match: the members of an ``anyOf``, or the schema itself."""
    return [m for m in schema.get("anyOf", [schema]) if isinstance(m, dict)]


def objects(schema: dict[str, Any], at: tuple[object, ...] = ()) -> Iterator[tuple[tuple[object, ...], dict[str, Any]]]:
    """Every object schema with named properties, with the path to it (a key, or ``[]`` for items)."""
    for member in alternatives(schema):
        if isinstance(member.get("properties"), dict):
            yield at, member
            for key, sub in member["properties"].items():
                if isinstance(sub, dict):
                    yield from objects(sub, (*at, key))
        if isinstance(member.get("items"), dict):
            yield from objects(member["items"], (*at, []))


def place(at: tuple[object, ...], leaf: object) -> object:
    """A body that holds ``leaf`` at the path ``at``."""
    value = leaf
    for step in reversed(at):
        value = [value] if step == [] else {step: value}
    return value


async def test_every_request_object_is_closed_in_the_document(api):
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    open_objects = [f"{method} {path} {'.'.join(map(str, at)) or '$'}"
                    for method, path, schema in json_bodies(document)
                    for at, node in objects(schema) if node.get("additionalProperties") is not False]
    assert not open_objects
    assert len(list(json_bodies(document))) >= 20


async def test_the_edge_refuses_an_unknown_field_wherever_the_document_closes_an_object(api):
    """For every request schema and every object in it: some user's request is refused with
    unknown_field (auth, role and path checks may answer first for others), and no user's
    request with the unknown field succeeds or fails with a 5xx."""
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    missed = []
    for method, path, schema in json_bodies(document):
        for at, _node in objects(schema):
            body = place(at, {UNKNOWN: 1})
            refused = False
            for user in USERS:
                response = await api.client.request(method, _path(path), json=body, headers=api.auth(user))
                assert response.status < 500 and not 200 <= response.status < 300, (method, path, at, user)
                answer = await response.json()
                if response.status == 422 and answer["error"]["code"] == "unknown_field":
                    assert UNKNOWN in answer["error"]["message"], answer
                    refused = True
                    break
            if not refused:
                missed.append(f"{method} {path} {at}")
    assert not missed


async def test_a_field_name_that_is_not_field_shaped_is_not_echoed(api):
    """An identity code sent as a key is refused without being repeated in the error."""
    body = await api.call("POST", "/api/v1/scan", "kela.aino", json={"text": "x", "010190-999P": 1}, expect=422)
    assert body["error"]["code"] == "unknown_field" and "010190" not in body["error"]["message"]


async def test_an_item_value_takes_exactly_the_types_the_document_names(api):
    """The document once allowed a boolean item value that the edge refused."""
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    schema = next(s for m, p, s in json_bodies(document) if p == "/api/v1/consultations/{id}/messages/preview")
    data = next(m for m in alternatives(schema["properties"]["data"]) if m.get("type") == "array")
    declared = [m["type"] for m in alternatives(data["items"]["properties"]["value"])]
    consultation = await api.open_consultation()
    path = f"/api/v1/consultations/{consultation['id']}/messages/preview"
    samples = {"string": "Hakemus saapunut", "number": 42, "integer": 42, "boolean": True, "null": None,
               "array": ["x"], "object": {"x": 1}}
    for kind, value in samples.items():
        response = await api.client.post(path, json={"text": "", "data": [
            {"category": "application.status", "value": value}]}, headers=api.auth("kela.aino"))
        documented = kind in declared or (kind == "integer" and "number" in declared)
        assert (response.status == 200) == documented, (kind, declared, response.status, await response.text())
        assert response.status in (200, 422)
