"""The one unambiguous byte encoding of a sequence of fields, used for
associated data, key-wrapping context and blind-index input."""

from __future__ import annotations

__all__ = ["length_prefixed", "text_field"]

_MAX_FIELD = 0xFFFF_FFFF


def length_prefixed(*parts: bytes) -> bytes:
    """Encode `parts` as ``len(part)`` (4 bytes, big-endian) ‖ ``part`` for each part.

    The encoding is prefix-free, so two different sequences never give the same
    bytes: ``("ab", "c")`` and ``("a", "bc")`` differ, and so do sequences of
    different lengths. Plain concatenation or a separator character would not.
    """
    out = bytearray()
    for part in parts:
        if len(part) > _MAX_FIELD:
            raise ValueError("field longer than 2**32 - 1 bytes")
        out += len(part).to_bytes(4, "big")
        out += part
    return bytes(out)


def text_field(name: str, value: object, *, allow_empty: bool = False) -> bytes:
    """UTF-8 bytes of a text field; a wrong type or an empty value is a programmer error."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    # Strict UTF-8: a lone surrogate raises UnicodeEncodeError, a ValueError.
    return value.encode("utf-8")
