"""Every parameter and field of the OpenAPI document, with every hostile value that applies to it
(docs/capabilities.md: public API, security floor).

The operations are discovered from the document the service publishes, so a parameter or body
added later is walked too. Each hostile value goes to every place it applies through the real
app, as users of several roles; the answer must be a 4xx JSON error where the value is invalid,
never a 5xx anywhere, nothing may be stored, and the server log must show no unhandled error.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from consult.http import keys
from consult.storage import tables
from tests.api.test_request_schemas import alternatives, json_bodies, place
from tests.synthetic import hetu

USERS = ["kela.aino", "vantaa.sanna", "kela.tuula", "kela.admin", "vantaa.admin"]
SKIP = {"/api/v1/ws", "/api/v1/openapi.json"}

NUMBERS = ["\u00b2", "\u0663", "\uff13", "1\u00b2", "9" * 30, str(2 ** 63), "-1", "+1", "1_0", " 1"]
TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-05:00", "9999-12-31", "0001-01-01", "9999-12",
         "0000-01", "\uff12\uff10\uff12\uff16-01-01"]
CURSORS = [base64.urlsafe_b64encode(f"{kind}:{n}".encode()).decode().rstrip("=")
           for kind in "cman" for n in ("1" * 30, 2 ** 63)]
#: Any text parameter: none of these may cause more than a 4xx.
ANY_TEXT = ["%ED%A0%80", "\u0663", "x" * 5000, "\u202e", "0001-01-01T00:00:00+14:00"]


def _kind(name: str, schema: dict[str, Any]) -> str:
    pattern = schema.get("pattern", "")
    if name == "cursor":
        return "cursor"
    if name in ("from", "to") or schema.get("format") in ("date-time", "date"):
        return "time"
    if schema.get("type") == "integer" or "[0-9]" in pattern or "\\d" in pattern:
        return "number"
    return "text"


def query_parameters(document: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    for path, operations in document["paths"].items():
        if path in SKIP:
            continue
        for method, op in operations.items():
            for parameter in op.get("parameters", []):
                if parameter["in"] == "query":
                    yield method.upper(), path, parameter["name"], _kind(parameter["name"], parameter["schema"])


def string_fields(schema: dict[str, Any], at: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """The path of every place a request body takes text: string properties and string items."""
    members = alternatives(schema)
    kinds = {kind for m in members for kind in (m.get("type") if isinstance(m.get("type"), list) else [m.get("type")])}
    if "string" in kinds:
        yield at
    for member in members:
        for key, sub in (member.get("properties") or {}).items():
            if isinstance(sub, dict):
                yield from string_fields(sub, (*at, key))
        if isinstance(member.get("items"), dict):
            yield from string_fields(member["items"], (*at, []))


async def _stored(api) -> tuple[int, ...]:
    async with api.client.app[keys.DB].read() as conn:
        return tuple([(await conn.execute(select(func.count()).select_from(table))).scalar_one()
                      for table in (tables.consultations, tables.messages, tables.message_items)])


async def _setup(api) -> dict[str, str]:
    consultation = await api.open_consultation()
    return {"id": consultation["id"], "ref": await api.register(hetu(930)), "user_id": "vantaa.mikko",
            "org": "vantaa", "name": "backup"}


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


async def _answer(response) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    if response.status >= 400:
        assert response.content_type == "application/json", (response.status, response.content_type)
        body = await response.json()
        assert set(body) == {"error"}, body
    return response.status, response.status >= 400


def _no_unhandled_error(caplog) -> None:  # type: ignore[no-untyped-def]
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


async def test_every_query_parameter_refuses_every_hostile_value_that_applies(api, caplog):
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    values = await _setup(api)
    before = await _stored(api)
    hostile = {"number": NUMBERS, "time": TIMES, "cursor": CURSORS, "text": []}
    walked = set()
    for method, path, name, kind in query_parameters(document):
        url = _fill(path, values)
        for value in hostile[kind] + ANY_TEXT:
            for user in USERS:
                if value.startswith("%"):  # a raw query string: the byte sequence arrives as sent
                    response = await api.client.request(method, f"{url}?{name}={value}", headers=api.auth(user))
                else:
                    response = await api.client.request(method, url, params={name: value}, headers=api.auth(user))
                status, refused = await _answer(response)
                assert status < 500, (method, path, name, value, user, status)
                if value in hostile[kind]:
                    assert refused, (method, path, name, value, user, status)
        walked.add((path, name))
    assert len(walked) > 60
    assert await _stored(api) == before
    _no_unhandled_error(caplog)


async def test_every_json_body_refuses_deep_nesting_and_a_lone_surrogate_in_every_text_field(api, caplog):
    document = await api.call("GET", "/api/v1/openapi.json", expect=200)
    values = await _setup(api)
    before = await _stored(api)
    deep = "[" * 30_000 + "]" * 30_000
    missed = []
    fields = 0
    for method, path, schema in json_bodies(document):
        url = _fill(path, values)
        first = next(iter(schema.get("properties") or {"x": {}}))
        bodies = [("nesting", '{"' + first + '": ' + deep + "}")]
        for at in string_fields(schema):
            fields += 1
            # json.dumps writes the lone surrogate as the escape "\ud800", as a hostile client would.
            bodies.append((".".join(map(str, at)), json.dumps(place(at, "ok \ud800 ok"))))
        for what, raw in bodies:
            parsed = False
            for user in USERS:
                response = await api.client.request(method, url, data=raw.encode(), headers={
                    **api.auth(user), "Content-Type": "application/json"})
                status, refused = await _answer(response)
                assert refused and status < 500, (method, path, what, user, status)
                if status == 400 and (await response.json())["error"]["code"] == "bad_json":
                    parsed = True
            if not parsed:
                missed.append(f"{method} {path} {what}")
    assert not missed
    assert fields > 60
    assert await _stored(api) == before
    _no_unhandled_error(caplog)
