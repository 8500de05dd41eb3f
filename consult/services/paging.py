"""Opaque cursors for ``{"items", "next"}`` lists (SPEC §5)."""

from __future__ import annotations

import base64
import binascii

from consult.errors import BadRequest

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = raw.partition(":")
        value = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("The cursor is not valid.", code="bad_cursor") from None
    if prefix != kind or value < 0:
        raise BadRequest("The cursor is not valid.", code="bad_cursor")
    return value


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.", code="bad_limit")
    return limit
