"""The OpenAPI 3.1 document, built from the same route table that builds the router."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec.inspect as mi
from aiohttp import web

from consult.http import keys
from consult.http import schemas as s
from consult.http import shapes as sh
from consult.http import vocabulary as vocab
from consult.http.route import Route
from consult.model import actions, secrecy
from consult.model.vocabulary import Vocabulary

_STATUS_TEXT = {
    400: "Malformed request", 401: "Unauthenticated", 403: "Forbidden by role or policy",
    404: "Not visible to you", 409: "Conflict", 413: "Too large", 415: "Unsupported media type",
    422: "Invalid content", 429: "Rate limited",
}


def _schema(declared: Any, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of a declared type (from ``refs``)."""
    if declared is None:
        return {"type": "object"}
    if declared is str:
        return {"type": "string"}
    if declared is bytes:
        return {"type": "string", "format": "binary"}
    return refs[declared]


def _json_parts(body: Any) -> list[str]:
    """The parts of a multipart body that hold an object: each is sent as JSON."""
    info = mi.type_info(body)
    assert isinstance(info, mi.StructType), body
    found = []
    for f in info.fields:
        members = f.type.types if isinstance(f.type, mi.UnionType) else (f.type,)
        if any(isinstance(m, mi.StructType) for m in members):
            found.append(f.encode_name)
    return found


def _declared(route: Route) -> list[Any]:
    """The types a route declares (body, answers), for the document's components."""
    found = [route.body, route.response, *(shape for _status, _text, shape in route.other_responses)]
    return [t for t in found if t is not None and t not in (str, bytes)]


def _operation(route: Route, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "description": f"Who: {route.who}.",
        "operationId": route.handler.__name__,
        "responses": {
            str(route.status): {
                "description": "OK",
                "content": {ct: {"schema": _schema(route.response, refs)}
                            for ct in (route.content_type, *route.other_content_types)},
            }
        },
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        params += sh.query_parameters(route.query)
    if params:
        op["parameters"] = params
    if route.body is not None:
        media: dict[str, Any] = {"schema": _schema(route.body, refs)}
        if route.body_type.startswith("multipart/") and (parts := _json_parts(route.body)):
            media["encoding"] = {name: {"contentType": "application/json"} for name in parts}
        op["requestBody"] = {"required": True, "content": {route.body_type: media}}
    if route.secret:
        op["responses"][str(route.status)]["headers"] = {secrecy.HEADER: {
            "description": "Secrecy marking: the answer carries secret client data (621/1999 § 24(1) 25 k.)",
            "schema": {"type": "string"}}}
    for status, description, schema in route.other_responses:
        op["responses"][str(status)] = {"description": description,
                                        "content": {"application/json": {"schema": _schema(schema, refs)}}}
    for status in route.errors:
        if str(status) in op["responses"]:
            continue  # described with its own schema above
        op["responses"][str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": refs[s.Error]}},
        }
    if route.action is not None:
        roles = sorted(actions.roles_for(route.action))
        op["x-action"] = route.action
        op["x-roles"] = roles
        op["description"] += f" Roles: {', '.join(roles)} (action {route.action})."
    if route.auth:
        op["security"] = [{"bearer": []}]
        op["responses"]["429"] = {
            "description": "Too many failed sign-ins from this address",
            "content": {"application/json": {"schema": refs[s.Error]}},
        }
    return op


def build_document(routes: tuple[Route, ...]) -> dict[str, Any]:
    """The document: each declared type's schema generated once into ``components/schemas``."""
    refs, components = sh.schemas([s.Error, *(t for route in routes for t in _declared(route))])
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    paths["/api/v1/openapi.json"] = {
        "get": {"summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OK",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}
    }
    paths["/api/v1/ws"] = {
        "get": {
            "summary": "WebSocket: live events",
            "operationId": "websocket",
            "description": (
                "Upgrade to a WebSocket. The first frame must be {\"type\": \"auth\", \"token\": \"<JWT>\"}; "
                "the server answers {\"type\": \"ready\"} or closes with 4401. Events: consultation.offered, "
                "consultation.created, consultation.claimed, consultation.participant_added, "
                "consultation.closed, consultation.reoffered, consultation.escalated, message.created, "
                "message.read, presence, expert.updated. consultation.claimed carries the consultation "
                "to the advisor and the claimant; the other experts it was offered to get only "
                "consultation_id, status, claimed_by and claimed_at. "
                "Send {\"type\": \"ping\"} for {\"type\": \"pong\"}. "
                "Every event about a consultation is kept and carries \"event_id\" (an integer increasing over "
                "the service); presence and expert.updated are not kept and carry none. ready carries "
                "\"last_event_id\" (the newest event id). To resume, the auth frame may carry "
                "\"last_event_id\": N (a non-negative integer; anything else is answered with an error frame "
                "of code bad_frame and no replay): after ready the server sends the user's kept events with "
                "an id above N in id order, each once, then {\"type\": \"live.resumed\", \"from\": N, "
                "\"replayed\": k, \"complete\": true}; complete is false when events after N were pruned "
                "(CONSULT_EVENT_RETENTION_HOURS), more than 1000 were due or content was destroyed: the client "
                "then re-reads its views."
            ),
            "responses": {"101": {"description": "Switching protocols"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Konsulta API",
            "version": "1",
            "description": "Secure consultations and case information between Kela and municipalities.",
        },
        "servers": [{"url": "/"}],
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "paths": paths,
    }


def with_vocabulary(document: Any, vocabulary: Vocabulary, topics: Iterable[str] = (),
                    orgs: Iterable[str] = ()) -> Any:
    """``document`` with each enum of the taxonomy's names (a schema marked ``x-taxonomy`` by
    consult/http/shapes.py) replaced by the names of ``vocabulary``, and the configured ``topics``
    and ``orgs`` listed where a body or a parameter takes one: the enums have one home, the loaded
    taxonomy and the configuration, as the edge checks them."""
    marked = sh.enums(sh.names_for(vocabulary, topics, orgs))

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            if isinstance(node.get(sh.TAXONOMY_KEY), str):
                return {**node, "enum": marked[node[sh.TAXONOMY_KEY]]}
            return {k: walk(x) for k, x in node.items()}
        return node

    return walk(document)


def handler(document: dict[str, Any]) -> Any:
    """Serves ``document`` with the enums of the policy the application loaded at start-up."""
    served: dict[int, dict[str, Any]] = {}  # id of the policy engine -> its document

    async def openapi(request: web.Request) -> web.Response:
        engine = request.app[keys.POLICY]
        if id(engine) not in served:
            served.clear()
            settings = request.app[keys.SETTINGS]
            served[id(engine)] = with_vocabulary(document, vocab.of_policy(engine.policy), settings.topics,
                                                 settings.orgs)
        return web.json_response(served[id(engine)])

    return openapi
