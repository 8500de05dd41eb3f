"""Parsing request bodies and query strings into typed values, with 400/415/422 on bad input.

The one place where untrusted bytes become values: one JSON loader (a nesting limit, no lone
surrogates, no non-finite numbers), one integer parameter reader (ASCII digits within a bound)
and one reader of times (``consult.model.instant``), so no handler parses these itself.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

from aiohttp import web

from consult.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from consult.http import keys
from consult.model import identifiers
from consult.model.instant import BadInstant, DayMeans, parse_day, parse_instant
from consult.services import gate

# The id grammar has one home (consult/model/identifiers.py).
_ID = identifiers.USER_ID
_ORG = identifiers.ORG
_SLUG = identifiers.NAME
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: A field name worth repeating in an error: anything else (an identity code sent as a key)
#: is not echoed back.
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
#: A lone UTF-16 surrogate: JSON lets a client write one as an escape ("\\ud800"), but it is no
#: character, cannot be encoded as UTF-8 and would fail wherever the text is stored or sealed.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: The deepest nesting a request body may have; the deepest the API describes is 4.
MAX_DEPTH = 16
#: The largest integer a query parameter may carry (a 64-bit SQL integer holds it with room).
MAX_QUERY_INT = 1 << 62


class BadJson(ValueError):
    """The bytes are not a JSON document this service reads; the message says why."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("The body holds a number too large to represent.")
    return value


def _no_constant(name: str) -> Any:
    raise BadJson(f"The body holds {name}, which is not JSON.")


def loads(raw: bytes | str) -> Any:
    """Parse untrusted JSON (UTF-8, RFC 8259 8.1): at most ``MAX_DEPTH`` deep, no lone surrogate
    in any string or key, no NaN/Infinity and no number that overflows a float. Raises ``BadJson``."""
    try:
        # Decoded here, strictly: ``json.loads`` would also take UTF-16/32 bytes, decoded with
        # surrogatepass, so a lone surrogate could arrive without an escape.
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw  # a UTF-8 BOM is ignored
        data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BadJson("The body is nested too deeply.") from None
    except BadJson:
        raise
    except (ValueError, UnicodeDecodeError):
        raise BadJson("The body is not valid JSON.") from None
    # Both checks below walk the parsed value only when the text makes it necessary: fewer
    # brackets than the limit cannot nest past it, and a surrogate in text decoded from UTF-8 can
    # only have come from a \uD800-\uDFFF escape (a caller's own text is searched as it is).
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(data)
    if _SURROGATE_ESCAPE.search(text) or (not isinstance(raw, bytes) and _SURROGATE.search(text)):
        _check_text(data)
    return data


def _check_depth(data: Any) -> None:
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise BadJson(f"The body is nested more than {MAX_DEPTH} deep.")
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
            below.extend(c for c in children if isinstance(c, dict | list))
        level = below


def _check_text(data: Any) -> None:
    stack = [data]
    while stack:  # iterative: a walk must not recurse either
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise BadJson("The body holds text that is not valid Unicode (a lone surrogate).")
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    try:
        data = loads(raw)
    except BadJson as exc:
        raise BadRequest(str(exc), code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="bad_json")
    route = request.match_info.route
    schema = request.app.get(keys.BODY_SCHEMAS, {}).get(route.name) if route is not None else None
    if schema is not None:
        refuse_unknown(data, schema)
    return data


def refuse_unknown(value: Any, schema: dict[str, Any], where: str = "") -> None:
    """422 ``unknown_field`` for a field that an object with ``additionalProperties: false`` in
    ``schema`` does not name, at any depth. Types are left to the field readers."""
    stack: list[tuple[Any, dict[str, Any], str]] = [(value, schema, where)]
    while stack:
        value, schema, where = stack.pop()
        properties = schema.get("properties")
        if isinstance(value, dict) and isinstance(properties, dict):
            unknown = sorted(set(value) - set(properties))
            if unknown and schema.get("additionalProperties") is False:
                named = [k for k in unknown if _FIELD_NAME.match(k)][:5]
                listed = ": " + ", ".join(named) if named else ""
                raise Unprocessable(f"{where or 'body'} has unknown fields{listed}", code="unknown_field")
            stack.extend((value[k], sub, f"{where}.{k}" if where else k)
                         for k, sub in properties.items() if k in value and isinstance(sub, dict))
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            stack.extend((item, schema["items"], f"{where}[{i}]") for i, item in enumerate(value))


def _fail(field: str, what: str) -> Unprocessable:
    return Unprocessable(f"{field}: {what}", code="invalid_field")


def text(data: dict[str, Any], field: str, *, max_len: int, required: bool = True, allow_empty: bool = False,
         multiline: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str):
        raise _fail(field, "must be a string")
    if len(value) > max_len:
        raise _fail(field, f"must be at most {max_len} characters")
    if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
        raise _fail(field, "contains control characters")
    if not allow_empty and not value.strip():
        raise _fail(field, "must not be empty")
    return value


def choice(data: dict[str, Any], field: str, allowed: frozenset[str] | tuple[str, ...], *,
           required: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _fail(field, "must be one of " + ", ".join(sorted(allowed)))
    return value


def identifier(data: dict[str, Any], field: str, *, required: bool = True,
               pattern: re.Pattern[str] = _ID) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _fail(field, "is not a valid identifier")
    return value


def org(data: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    return identifier(data, field, required=required, pattern=_ORG)


def slug_list(data: dict[str, Any], field: str, *, max_items: int = 50) -> list[str] | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > max_items:
        raise _fail(field, f"must be a list of at most {max_items} names")
    if not all(isinstance(v, str) and _SLUG.match(v) for v in value):
        raise _fail(field, "items must be short lowercase names")
    return list(dict.fromkeys(value))


def boolean(data: dict[str, Any], field: str) -> bool | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _fail(field, "must be true or false")
    return value


def query_int(request: web.Request, name: str, *, required: bool = False, high: int = 999_999_999) -> int | None:
    """A non-negative integer in ASCII digits, at most ``high`` (``str.isdigit`` alone would let
    '²' or '٣' through, and ``int`` reads the second as 3)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"{name} is required.", code="bad_query")
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or int(raw) > high:
        raise BadRequest(f"{name} must be a non-negative integer (ASCII digits, at most {high}).", code="bad_query")
    return int(raw)


def instant(data: dict[str, Any], field: str, *, required: bool = True, day: DayMeans | None = None) -> datetime | None:
    """A time field of a body, in UTC (``consult.model.instant``); 422 naming the field."""
    raw = data.get(field)
    if raw is None:
        if required:
            raise _fail(field, "is required")
        return None
    try:
        return parse_instant(raw, day=day)
    except BadInstant as exc:
        raise _fail(field, str(exc)) from None


def moment(raw: str | None, field: str, *, day: DayMeans | None = None) -> datetime | None:
    """A time a body field holds (``consult.model.instant``), in UTC; 422 naming the field."""
    if raw is None:
        return None
    try:
        return parse_instant(raw, day=day)
    except BadInstant as exc:
        raise _fail(field, str(exc)) from None


def day(data: dict[str, Any], field: str) -> date | None:
    """A date field of a body (YYYY-MM-DD); 422 naming the field."""
    raw = data.get(field)
    if raw is None:
        return None
    try:
        return parse_day(raw)
    except BadInstant as exc:
        raise _fail(field, str(exc)) from None


def query_instant(request: web.Request, name: str, *, day: DayMeans | None = None) -> datetime | None:
    """A time in the query string, in UTC; 400 naming the parameter."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw, day=day)
    except BadInstant as exc:
        raise BadRequest(f"{name}: {exc}.", code="bad_query") from None


def query_choice(request: web.Request, name: str, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise BadRequest(f"{name} must be one of " + ", ".join(sorted(allowed)) + ".", code="bad_query")
    return raw


def path_id(request: web.Request, name: str = "id") -> str:
    """An id from the path; 404 unless it is id-shaped and holds no personal identifier (nothing
    is named by one, and the id would reach the audit log as typed: the content gate)."""
    value = request.match_info[name]
    if not _ID.match(value) or gate.holds_identifier(value, staff_id=name == "user_id"):
        raise NotFound()
    return value
