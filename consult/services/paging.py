"""Opaque cursors for ``{"items", "next"}`` lists (public API, docs/capabilities.md)."""

from __future__ import annotations

import base64
import binascii

from consult.errors import BadRequest

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
#: The largest position a cursor may name: a signed 64-bit SQL integer holds it (SQLite raises
#: OverflowError on anything past 2**63 - 1, before the query runs).
MAX_POSITION = 1 << 62


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = raw.partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("The cursor is not valid.", code="bad_cursor") from None
    # ASCII digits only (``int`` also reads '٣', '+5' and '1_0'), and a number SQL can hold.
    if (prefix != kind or not number.isdigit() or len(number) > len(str(MAX_POSITION))
            or int(number) > MAX_POSITION):
        raise BadRequest("The cursor is not valid.", code="bad_cursor")
    return int(number)


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.", code="bad_limit")
    return limit
