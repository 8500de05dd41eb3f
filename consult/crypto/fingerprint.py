"""Key fingerprints: short public names for secret keys, so that a database can record which keys
it was written with and start-up can tell a different or missing key file at once.

A fingerprint is HMAC-SHA256 keyed with the key itself over a fixed, per-kind label, cut to 128
bits and written in hex. Without the key it is a random-looking value (HMAC is a PRF), so it can
be stored beside the data and printed in error messages without revealing anything usable; the
label keeps fingerprints of different kinds of keys apart even if two happened to share bytes.
"""

from __future__ import annotations

import hashlib
import hmac

from ._encoding import length_prefixed

__all__ = ["FINGERPRINT_HEX_LENGTH", "key_fingerprint", "public_key_fingerprint"]

_LABEL = b"konsulta/key-fingerprint/v1"
_BYTES = 16
FINGERPRINT_HEX_LENGTH = 2 * _BYTES


def key_fingerprint(kind: str, key: bytes) -> str:
    """The fingerprint of secret ``key`` of ``kind`` (e.g. ``"kek"``, ``"blind-index"``)."""
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise TypeError("key must be non-empty bytes")
    message = length_prefixed(_LABEL, kind.encode("ascii"))
    return hmac.digest(bytes(key), message, hashlib.sha256)[:_BYTES].hex()


def public_key_fingerprint(kind: str, public: bytes) -> str:
    """The fingerprint of a public key: SHA-256 over the label, the kind and the key, cut likewise."""
    if not isinstance(public, (bytes, bytearray)) or not public:
        raise TypeError("public key must be non-empty bytes")
    return hashlib.sha256(length_prefixed(_LABEL, kind.encode("ascii"), bytes(public))).digest()[:_BYTES].hex()
