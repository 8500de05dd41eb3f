"""Parsing request bodies and query strings into typed values, with 400/415/422 on bad input."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from consult.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from consult.model import identifiers
from consult.services import gate

# The id grammar has one home (consult/model/identifiers.py).
_ID = identifiers.USER_ID
_ORG = identifiers.ORG
_SLUG = identifiers.NAME
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON.", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="bad_json")
    return data


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


def choice(data: dict[str, Any], field: str, allowed: frozenset[str] | tuple[str, ...], *, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str) or value not in allowed:
        raise _fail(field, "must be one of " + ", ".join(sorted(allowed)))
    return value


def identifier(data: dict[str, Any], field: str, *, required: bool = True, pattern: re.Pattern[str] = _ID) -> str | None:
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


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"{name} must be a non-negative integer.", code="bad_query")
    return int(raw)


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
