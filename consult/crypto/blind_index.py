"""Keyed blind indexes: equality lookup of an identifier (a HETU) without
storing it or anything an attacker could reverse.

Why keyed: the HETU space is small. For one century separator there are about
36,524 birth dates × 898 individual numbers ≈ 32.8 million codes, and the
checksum character adds nothing secret. An unkeyed SHA-256 of every candidate
takes about 12 s per separator on one core (2.65 M hashes/s measured on the
development machine), about 75 s for all six 1900s separators, so an unkeyed
hash in the database is as good as the plain HETU. With HMAC-SHA256 under a
32-byte key kept outside the database, the index reveals only which rows share
a value.

The key is its own entry in the key file, not derived from a KEK, so rotating
KEKs never changes an index value. The domain separates indexes from each
other: the same value gives unrelated results in different domains.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable

from ._encoding import length_prefixed, text_field
from .aead import check_key

__all__ = [
    "BLIND_INDEX_KEY_SIZE",
    "HETU_DOMAIN",
    "blind_index",
    "hmac_sha256",
    "normalise_identifier",
]

BLIND_INDEX_KEY_SIZE = 32
HETU_DOMAIN = "client.hetu"
_LABEL = b"konsulta/blind-index/v1"


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104, checked against RFC 4231); any key length, as the RFC allows."""
    return hmac.digest(key, data, hashlib.sha256)


def normalise_identifier(value: str) -> str:
    """Canonical form of an identifier such as a HETU: NFKC, outer whitespace stripped, upper case.

    ``" 131052-308t "`` and ``"131052-308T"`` index alike. Validation (checksum,
    separator) belongs to the caller; this only removes harmless variation.
    """
    return unicodedata.normalize("NFKC", value).strip().upper()


def blind_index(
    key: bytes,
    value: str,
    *,
    domain: str,
    normalise: Callable[[str], str] = normalise_identifier,
) -> str:
    """Hex HMAC-SHA256 of the normalised `value` under `key`, separated by `domain`.

    Input to the MAC: length-prefixed ("konsulta/blind-index/v1", domain, value).
    """
    check_key(key, name="blind-index key", size=BLIND_INDEX_KEY_SIZE)
    domain_bytes = text_field("domain", domain)
    text_field("value", value)
    normalised = text_field("normalised value", normalise(value))
    return hmac_sha256(bytes(key), length_prefixed(_LABEL, domain_bytes, normalised)).hex()
