"""The opaque error: every way to fail a decrypt or unwrap raises the same
CryptoError, whose text and traceback chain say nothing about why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consult.crypto import (
    CryptoError,
    Envelope,
    FileKeyring,
    KeyFileError,
    WrappedKey,
    aad_for,
    open_sealed,
    seal,
)

KEY = bytes(range(32))
AAD = aad_for("messages", "m-1", "text")


def _failures(keyring: FileKeyring) -> dict[str, Callable[[], object]]:
    blob = seal(KEY, b"secret text", AAD)
    wrapped = keyring.wrap(bytes(32), b"consultation:1")
    return {
        "wrong-key": lambda: open_sealed(bytes(32), blob, AAD),
        "wrong-aad": lambda: open_sealed(KEY, blob, aad_for("messages", "m-2", "text")),
        "bad-tag": lambda: open_sealed(KEY, blob[:-1] + bytes([blob[-1] ^ 1]), AAD),
        "truncated": lambda: open_sealed(KEY, blob[:5], AAD),
        "bad-version-byte": lambda: open_sealed(KEY, b"\x07" + blob[1:], AAD),
        "unknown-kek-version": lambda: keyring.unwrap(WrappedKey(9, wrapped.blob), b"consultation:1"),
        "wrong-context": lambda: keyring.unwrap(wrapped, b"consultation:2"),
        "wrong-owner": lambda: Envelope(keyring).unwrap("consultation:2", wrapped),
        "short-wrapped-bytes": lambda: WrappedKey.from_bytes(b"\x00"),
    }


def test_crypto_error_carries_no_detail(keyring: FileKeyring) -> None:
    """No oracle: str(), args and the exception chain are identical for every failure."""
    seen = set()
    for name, attempt in _failures(keyring).items():
        with pytest.raises(CryptoError) as caught:
            attempt()
        error = caught.value
        assert str(error) == "cryptographic operation failed", name
        assert error.args == ("cryptographic operation failed",), name
        assert error.__cause__ is None, name
        assert error.__context__ is None or error.__suppress_context__, name
        seen.add((type(error), str(error), repr(error)))
    assert len(seen) == 1


def test_crypto_error_is_not_a_value_error() -> None:
    """Callers catching ValueError for bad input must not swallow a failed decrypt."""
    assert not issubclass(CryptoError, ValueError)
    assert not issubclass(KeyFileError, CryptoError)
    assert not issubclass(CryptoError, KeyFileError)


def test_key_file_error_names_the_path(tmp_path: Path) -> None:
    error = KeyFileError(tmp_path / "keys.json", "does not exist")
    assert str(error) == f"key file {tmp_path / 'keys.json'}: does not exist"
    assert error.path == str(tmp_path / "keys.json") and error.reason == "does not exist"
