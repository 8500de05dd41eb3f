"""AES-256-GCM sealing of one value under one key, in Konsulta's blob format,
and the associated data that binds a ciphertext to its row.

Blob format, version 1::

    0x01 (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)

The nonce is 96 random bits per seal (NIST SP 800-38D §8.2.2). With random
nonces a key must seal fewer than 2**32 values; data keys are per consultation,
far below that. The version byte is not fed to GCM, so the ciphertext and tag
are exactly those of the standard and can be checked against published vectors;
it is checked strictly instead, and any other value is refused. A future format
must put its version byte into the associated data so that it cannot be
downgraded.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._encoding import length_prefixed, text_field
from .errors import CryptoError

__all__ = [
    "BLOB_FORMAT_V1",
    "BLOB_OVERHEAD",
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "SealingKey",
    "aad_for",
    "open_sealed",
    "seal",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
BLOB_FORMAT_V1 = 0x01
_HEADER = bytes([BLOB_FORMAT_V1])
BLOB_OVERHEAD = len(_HEADER) + NONCE_SIZE + TAG_SIZE

_AAD_LABEL = b"konsulta/aad/v1"


def check_key(key: bytes, *, name: str = "key", size: int = KEY_SIZE) -> None:
    """Raise at once when code passes something that is not a key of `size` bytes."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"{name} must be bytes, not {type(key).__name__}")
    if len(key) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(key)}")


class SealingKey:
    """One AES-256-GCM key, prepared once for repeated seal and open calls.

    Use it on hot paths (a consultation's data key, a key-encryption key); the
    module functions `seal` and `open_sealed` build one per call.
    """

    __slots__ = ("_aead", "_random_bytes")

    def __init__(
        self, key: bytes, *, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        check_key(key)
        self._aead = AESGCM(bytes(key))
        self._random_bytes = random_bytes

    def __repr__(self) -> str:
        return "SealingKey(<hidden>)"

    def seal(self, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
        """Encrypt and authenticate `plaintext` bound to `aad`; return a v1 blob.

        `nonce` is for known-answer tests only; leave it out in product code.
        """
        if nonce is None:
            nonce = self._random_bytes(NONCE_SIZE)
        elif not isinstance(nonce, bytes):
            raise TypeError(f"nonce must be bytes, not {type(nonce).__name__}")
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        return b"".join((_HEADER, nonce, self._aead.encrypt(nonce, plaintext, aad)))

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Return the plaintext of a v1 blob, or raise `CryptoError`."""
        if not isinstance(blob, bytes):
            if not isinstance(blob, (bytearray, memoryview)):
                raise TypeError(f"blob must be bytes, not {type(blob).__name__}")
            blob = bytes(blob)
        if len(blob) < BLOB_OVERHEAD or blob[0] != BLOB_FORMAT_V1:
            raise CryptoError()
        try:
            return self._aead.decrypt(blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :], aad)
        except InvalidTag:
            raise CryptoError() from None


def seal(key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
    """Encrypt `plaintext` under `key` (32 bytes) bound to `aad`; return a v1 blob."""
    return SealingKey(key).seal(plaintext, aad, nonce=nonce)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a v1 blob sealed under `key` with the same `aad`, or raise `CryptoError`."""
    return SealingKey(key).open(blob, aad)


def aad_for(table: str, row_id: str, field: str, *extra: str) -> bytes:
    """Associated data naming where a ciphertext lives: table, row, field, and more.

    A ciphertext copied to another table, row or field no longer opens, because
    its associated data differs (docs/capabilities.md C4). `extra` adds further binding, e.g. the
    consultation id of a message row. Each part is length-prefixed, so no two
    different tuples encode alike: ``("ab", "c", ...)`` is not ``("a", "bc", ...)``.
    """
    parts = [
        text_field("table", table),
        text_field("row_id", row_id),
        text_field("field", field),
    ]
    parts += [text_field("extra", value, allow_empty=True) for value in extra]
    return length_prefixed(_AAD_LABEL, *parts)
