"""Konsulta's crypto layer, the only package that touches `cryptography.hazmat`:
AEAD sealing bound to rows, envelope encryption under versioned KEKs, and
keyed blind indexes. Every failed decrypt or unwrap raises one `CryptoError`."""

from .aead import (
    BLOB_FORMAT_V1,
    BLOB_OVERHEAD,
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    SealingKey,
    aad_for,
    open_sealed,
    seal,
)
from .blind_index import (
    BLIND_INDEX_KEY_SIZE,
    HETU_DOMAIN,
    blind_index,
    normalise_identifier,
)
from .datakey import DATA_KEY_SIZE, Envelope, new_data_key, owner_context
from .errors import CryptoError, KeyFileError
from .fingerprint import key_fingerprint, public_key_fingerprint
from .keyring import (
    ACTIVE,
    RETIRED,
    BlindIndexKeySource,
    FileKeyring,
    Keyring,
    KeyStatus,
    PreparedVersion,
    WrappedKey,
)

__all__ = [
    "ACTIVE",
    "BLIND_INDEX_KEY_SIZE",
    "BLOB_FORMAT_V1",
    "BLOB_OVERHEAD",
    "DATA_KEY_SIZE",
    "HETU_DOMAIN",
    "KEY_SIZE",
    "NONCE_SIZE",
    "RETIRED",
    "TAG_SIZE",
    "BlindIndexKeySource",
    "CryptoError",
    "Envelope",
    "FileKeyring",
    "KeyFileError",
    "KeyStatus",
    "Keyring",
    "PreparedVersion",
    "SealingKey",
    "WrappedKey",
    "aad_for",
    "blind_index",
    "key_fingerprint",
    "new_data_key",
    "normalise_identifier",
    "open_sealed",
    "owner_context",
    "public_key_fingerprint",
    "seal",
]
