"""Key-encryption keys (KEKs): the `Keyring` interface that wraps and unwraps
data keys, and `FileKeyring`, its embedded implementation over a local key file.

An external KMS or HSM can implement `Keyring` later; nothing else in the
product needs to change (docs/capabilities.md C4).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from . import _keyfile
from ._encoding import length_prefixed
from ._keyfile import FileStamp, KekRecord, KeyFileContents
from .aead import KEY_SIZE, NONCE_SIZE, SealingKey
from .errors import CryptoError, KeyFileError
from .fingerprint import key_fingerprint

__all__ = [
    "ACTIVE",
    "RETIRED",
    "BlindIndexKeySource",
    "FileKeyring",
    "KeyStatus",
    "Keyring",
    "PreparedVersion",
    "WrappedKey",
    "check_context",
    "wrap_aad",
]

KEK_FINGERPRINT = "kek"
BLIND_INDEX_FINGERPRINT = "blind-index"

KeyStatus = Literal["active", "retired"]
ACTIVE: KeyStatus = "active"
RETIRED: KeyStatus = "retired"

_WRAP_LABEL = b"konsulta/wrap/v1"
_VERSION_BYTES = 4


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under KEK `version`; `blob` is an AEAD v1 blob.

    Storage may keep the two fields in two columns, or one column through
    `to_bytes` / `from_bytes`.
    """

    version: int
    blob: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or isinstance(self.version, bool):
            raise TypeError("version must be int")
        if not isinstance(self.blob, bytes):
            raise TypeError("blob must be bytes")

    def __repr__(self) -> str:
        return f"WrappedKey(version={self.version}, blob=<{len(self.blob)} bytes>)"

    def to_bytes(self) -> bytes:
        """``version`` (4 bytes, big-endian) ‖ ``blob``."""
        if not 0 <= self.version < 2 ** (8 * _VERSION_BYTES):
            raise ValueError("version out of range")
        return self.version.to_bytes(_VERSION_BYTES, "big") + self.blob

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        """Inverse of `to_bytes`; a value too short to hold one raises `CryptoError`."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) <= _VERSION_BYTES:
            raise CryptoError()
        raw = bytes(data)
        return cls(int.from_bytes(raw[:_VERSION_BYTES], "big"), raw[_VERSION_BYTES:])


def check_context(context: bytes) -> None:
    """A wrapping context must be non-empty bytes: it names the key's owner."""
    if not isinstance(context, bytes):
        raise TypeError(f"context must be bytes, not {type(context).__name__}")
    if not context:
        raise ValueError("context must not be empty")


def wrap_aad(version: int, context: bytes) -> bytes:
    """Associated data for wrapping: binds the wrapped key to its KEK version and owner."""
    return length_prefixed(_WRAP_LABEL, version.to_bytes(_VERSION_BYTES, "big"), context)


def check_data_key(dek: bytes) -> None:
    """Raise at once when code passes something that is not a 32-byte data key."""
    if not isinstance(dek, (bytes, bytearray)):
        raise TypeError(f"data key must be bytes, not {type(dek).__name__}")
    if len(dek) != KEY_SIZE:
        raise ValueError(f"data key must be {KEY_SIZE} bytes, got {len(dek)}")


@runtime_checkable
class Keyring(Protocol):
    """Versioned key-encryption keys that wrap and unwrap data keys.

    Exactly one version is current: new wraps use it. Older versions stay
    `active` until retired; a `retired` version unwraps nothing. Rotation without
    downtime: `add_version`, rewrap stored data keys to the new version (see
    `Envelope.rewrap`), and only then `retire` the old one.
    """

    def current_version(self) -> int:
        """The version new wraps use."""
        ...

    def versions(self) -> dict[int, str]:
        """Every known version and its status, ``"active"`` or ``"retired"``."""
        ...

    def wrap(self, dek: bytes, context: bytes) -> WrappedKey:
        """Encrypt a 32-byte data key under the current version, bound to `context`."""
        ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The data key, or `CryptoError` (wrong context, unknown or retired version, bad blob)."""
        ...

    def add_version(self) -> int:
        """Create a new key version, make it current and return it."""
        ...

    def retire(self, version: int) -> None:
        """Stop `version` from unwrapping; refuses (ValueError) the current version."""
        ...


@runtime_checkable
class BlindIndexKeySource(Protocol):
    """Where the blind-index key comes from: a key kept apart from the KEKs, so
    rotating KEKs leaves every blind index unchanged."""

    def blind_index_key(self) -> bytes:
        """The 32-byte HMAC key for blind indexes."""
        ...


@dataclass(frozen=True, slots=True)
class PreparedVersion:
    """A new KEK version generated but not yet in the key file: its fingerprint can be recorded
    elsewhere first, so a rotation that stops half-way leaves nothing unaccounted for."""

    version: int
    fingerprint: str
    key: bytes = field(repr=False)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One consistent snapshot of the key file, swapped in whole on reload."""

    contents: KeyFileContents
    stamp: FileStamp
    sealers: dict[int, SealingKey]  # active versions only

    @classmethod
    def read(cls, path: Path) -> _Loaded:
        contents, stamp = _keyfile.read_key_file(path)
        sealers = {
            kek.version: SealingKey(kek.key) for kek in contents.keks if kek.status == ACTIVE
        }
        return cls(contents, stamp, sealers)


class FileKeyring:
    """A `Keyring` kept in one local JSON key file (the embedded default).

    The file holds every KEK version (32 random bytes each) with its status, and
    the separate blind-index key. Only its owner may have any access (0600 or
    0400): a file open to group or others is refused with `KeyFileError`. Every
    change is written atomically (temporary file, fsync, rename) under a
    cross-process lock (a sibling ``<name>.lock`` file), so the CLI may rotate
    keys while the server runs. A running keyring notices a replaced file by its
    stat stamp on each call (one `stat`), or at once through `reload()`; with
    ``auto_reload=False`` only `reload()` re-reads it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], datetime] = _utc_now,
        auto_reload: bool = True,
    ) -> None:
        """Use `FileKeyring.open`; this constructor reads an existing file."""
        self._path = Path(path)
        self._random_bytes = random_bytes
        self._clock = clock
        self._auto_reload = auto_reload
        self._state = _Loaded.read(self._path)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], datetime] = _utc_now,
        auto_reload: bool = True,
    ) -> FileKeyring:
        """Open the key file at `path`; with `create`, make a new one if none exists.

        Creation is opt-in: a mistyped path must not silently start a fresh
        keyring that cannot read the data already stored.
        """
        key_path = Path(path)
        if create and not key_path.exists():
            _create(key_path, random_bytes, clock)
        return cls(key_path, random_bytes=random_bytes, clock=clock, auto_reload=auto_reload)

    def __repr__(self) -> str:
        return f"FileKeyring({os.fspath(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    def reload(self) -> None:
        """Re-read the key file now (raises `KeyFileError` if it became unsafe or malformed)."""
        self._state = _Loaded.read(self._path)

    def current_version(self) -> int:
        return self._fresh().contents.current

    def versions(self) -> dict[int, str]:
        return {kek.version: kek.status for kek in self._fresh().contents.keks}

    def blind_index_key(self) -> bytes:
        return self._fresh().contents.blind_index_key

    def fingerprints(self) -> dict[int, str]:
        """The fingerprint of every KEK version in the file (active and retired)."""
        return {kek.version: key_fingerprint(KEK_FINGERPRINT, kek.key) for kek in self._fresh().contents.keks}

    def blind_index_fingerprint(self) -> str:
        return key_fingerprint(BLIND_INDEX_FINGERPRINT, self._fresh().contents.blind_index_key)

    def check_writable(self) -> None:
        """Raise `KeyFileError` unless the key file can be replaced (and its lock taken) now."""
        directory = self._path.parent
        if not os.access(self._path, os.W_OK) or not os.access(directory, os.W_OK | os.X_OK):
            raise KeyFileError(self._path, "cannot be written (no write permission on it or its directory)")
        with _keyfile.exclusive_lock(self._path):
            pass

    def prepare_version(self) -> PreparedVersion:
        """Generate the next version's key without writing it; `add_prepared` writes it."""
        contents = self._fresh().contents
        key = self._new_key()
        version = max(kek.version for kek in contents.keks) + 1
        return PreparedVersion(version, key_fingerprint(KEK_FINGERPRINT, key), key)

    def add_prepared(self, prepared: PreparedVersion) -> None:
        """Write a prepared version into the file and make it current.

        Refuses (`KeyFileError`) if the file changed so that the version is no longer next.
        """
        with _keyfile.exclusive_lock(self._path):
            contents, _ = _keyfile.read_key_file(self._path)
            if prepared.version != max(kek.version for kek in contents.keks) + 1:
                raise KeyFileError(self._path, f"changed meanwhile: version {prepared.version} is no longer next")
            new = KekRecord(prepared.version, ACTIVE, prepared.key, self._now())
            _keyfile.write_key_file(
                self._path, replace(contents, current=prepared.version, keks=(*contents.keks, new))
            )
            self.reload()

    def wrap(self, dek: bytes, context: bytes) -> WrappedKey:
        check_data_key(dek)
        check_context(context)
        state = self._fresh()
        version = state.contents.current
        nonce = self._random_bytes(NONCE_SIZE)
        blob = state.sealers[version].seal(bytes(dek), wrap_aad(version, context), nonce=nonce)
        return WrappedKey(version, blob)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if not isinstance(wrapped, WrappedKey):
            raise TypeError(f"wrapped must be WrappedKey, not {type(wrapped).__name__}")
        check_context(context)
        sealer = self._fresh().sealers.get(wrapped.version)
        if sealer is None:  # unknown or retired
            raise CryptoError()
        dek = sealer.open(wrapped.blob, wrap_aad(wrapped.version, context))
        if len(dek) != KEY_SIZE:
            raise CryptoError()
        return dek

    def add_version(self) -> int:
        with _keyfile.exclusive_lock(self._path):
            contents, _ = _keyfile.read_key_file(self._path)
            version = max(kek.version for kek in contents.keks) + 1
            new = KekRecord(version, ACTIVE, self._new_key(), self._now())
            _keyfile.write_key_file(
                self._path, replace(contents, current=version, keks=(*contents.keks, new))
            )
            self.reload()
        return version

    def retire(self, version: int) -> None:
        with _keyfile.exclusive_lock(self._path):
            contents, _ = _keyfile.read_key_file(self._path)
            kek = next((k for k in contents.keks if k.version == version), None)
            if kek is None:
                raise ValueError(f"unknown key version {version}")
            if version == contents.current:
                raise ValueError(
                    f"refusing to retire key version {version}: it is current; "
                    "add a new version and rewrap first"
                )
            if kek.status != RETIRED:
                retired = replace(kek, status=RETIRED, retired_at=self._now())
                keks = tuple(retired if k is kek else k for k in contents.keks)
                _keyfile.write_key_file(self._path, replace(contents, keks=keks))
            self.reload()

    def remove(self, version: int) -> None:
        """Delete a retired version's key material from the file for good.

        Only a retired version can be removed; the caller must first make sure that nothing
        (no data key, no backup it still needs to read) is wrapped under it.
        """
        with _keyfile.exclusive_lock(self._path):
            contents, _ = _keyfile.read_key_file(self._path)
            kek = next((k for k in contents.keks if k.version == version), None)
            if kek is None:
                raise ValueError(f"unknown key version {version}")
            if kek.status != RETIRED:
                raise ValueError(f"refusing to remove key version {version}: retire it first")
            keks = tuple(k for k in contents.keks if k.version != version)
            _keyfile.write_key_file(self._path, replace(contents, keks=keks))
            self.reload()

    def _fresh(self) -> _Loaded:
        state = self._state
        if self._auto_reload and _keyfile.file_stamp(self._path) != state.stamp:
            self.reload()
            state = self._state
        return state

    def _new_key(self) -> bytes:
        return _checked_random(self._random_bytes, KEY_SIZE)

    def _now(self) -> str:
        return self._clock().isoformat()


def _checked_random(random_bytes: Callable[[int], bytes], size: int) -> bytes:
    value = random_bytes(size)
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"random source returned something other than {size} bytes")
    return value


def _create(
    path: Path, random_bytes: Callable[[int], bytes], clock: Callable[[], datetime]
) -> None:
    """Write a new key file (version 1 and a blind-index key) unless one appeared meanwhile."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(path, f"cannot create its directory ({exc.strerror})") from None
    with _keyfile.exclusive_lock(path):
        if path.exists():  # another process won the race; use its keys
            return
        now = clock().isoformat()
        contents = KeyFileContents(
            current=1,
            keks=(KekRecord(1, ACTIVE, _checked_random(random_bytes, KEY_SIZE), now),),
            blind_index_key=_checked_random(random_bytes, KEY_SIZE),
            blind_index_created_at=now,
        )
        _keyfile.write_key_file(path, contents)
