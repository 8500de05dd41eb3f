"""The two ways the crypto layer fails: an opaque `CryptoError` for anything an
attacker or a corrupt row could cause, and a loud `KeyFileError` for a key file
an operator has to fix."""

from __future__ import annotations

import os

__all__ = ["CryptoError", "KeyFileError"]

_OPAQUE_MESSAGE = "cryptographic operation failed"


class CryptoError(Exception):
    """A decrypt, unwrap or integrity check failed.

    Raised alike for a wrong key, wrong associated data, a bad tag, a truncated
    or malformed blob and an unknown or retired key version. It never says which:
    telling them apart would hand an attacker an oracle, and the caller's only
    correct reaction is the same in every case (treat the data as unreadable).
    """

    def __init__(self) -> None:
        super().__init__(_OPAQUE_MESSAGE)


class KeyFileError(Exception):
    """The key file is missing, unsafe or malformed: a configuration error.

    Unlike `CryptoError` it is meant for the operator, so it names the path and
    the reason; it never carries key material or file contents.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"key file {self.path}: {reason}")
