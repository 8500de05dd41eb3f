"""Parsing request bodies and query strings into values, with 400/415/422 on bad input.

The one place where untrusted bytes become values: one JSON loader (a nesting limit, no lone
surrogates, no non-finite numbers) and the one reader of times (``consult.model.instant``) for
body fields, so no handler parses these itself. What a body's fields and a route's query
parameters may hold is declared once, by its ``Struct`` (consult/http/shapes.py), which also
reads the query string.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any, overload

from aiohttp import web

from consult.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from consult.model import identifiers
from consult.model.instant import BadInstant, DayMeans, parse_day, parse_instant
from consult.services import gate

# The id grammar has one home (consult/model/identifiers.py).
_ID = identifiers.USER_ID
_ORG = identifiers.ORG
#: A lone UTF-16 surrogate: JSON lets a client write one as an escape ("\\ud800"), but it is no
#: character, cannot be encoded as UTF-8 and would fail wherever the text is stored or sealed.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: The deepest nesting a request body may have; the deepest the API describes is 4.
MAX_DEPTH = 16


class BadJson(ValueError):
    """The bytes are not a JSON document this service reads; the message says why."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("The body holds a number too large to represent.")
    return value


def _no_constant(name: str) -> Any:
    raise BadJson(f"The body holds {name}, which is not JSON.")


# Built once: ``json.loads`` with these hooks builds a new decoder for every body.
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def loads(raw: bytes | str) -> Any:
    """Parse untrusted JSON (UTF-8, RFC 8259 8.1): at most ``MAX_DEPTH`` deep, no lone surrogate
    in any string or key, no NaN/Infinity and no number that overflows a float. Raises ``BadJson``."""
    try:
        # Decoded here, strictly: ``json.loads`` would also take UTF-16/32 bytes, decoded with
        # surrogatepass, so a lone surrogate could arrive without an escape.
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw  # a UTF-8 BOM is ignored
        data = _DECODER.decode(text)
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
    return data


def _fail(field: str, what: str) -> Unprocessable:
    return Unprocessable(f"{field}: {what}", code="invalid_field")


@overload
def moment(raw: str, field: str, *, day: DayMeans | None = None) -> datetime: ...
@overload
def moment(raw: str | None, field: str, *, day: DayMeans | None = None) -> datetime | None: ...
def moment(raw: str | None, field: str, *, day: DayMeans | None = None) -> datetime | None:
    """A time a body field holds (``consult.model.instant``), in UTC; 422 naming the field."""
    if raw is None:
        return None
    try:
        return parse_instant(raw, day=day)
    except BadInstant as exc:
        raise _fail(field, str(exc)) from None


def date_of(raw: str | None, field: str) -> date | None:
    """A date a body field holds (YYYY-MM-DD); 422 naming the field."""
    if raw is None:
        return None
    try:
        return parse_day(raw)
    except BadInstant as exc:
        raise _fail(field, str(exc)) from None


def path_id(request: web.Request, name: str = "id") -> str:
    """An id from the path; 404 unless it is id-shaped and holds no personal identifier (nothing
    is named by one, and the id would reach the audit log as typed: the content gate)."""
    value = request.match_info[name]
    if not _ID.match(value) or gate.holds_identifier(value, staff_id=name == "user_id"):
        raise NotFound()
    return value
