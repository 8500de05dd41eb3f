"""Data keys (DEKs): one random AES-256 key per owner (a consultation, a client
record), stored only wrapped by the keyring, and the envelope that creates,
unwraps, caches, rewraps and forgets them.

Crypto-shredding (docs/capabilities.md C4, retention) is deleting the owner's wrapped key from
storage and calling `Envelope.invalidate(owner)`, so that no copy remains in
this process either.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ._encoding import text_field
from .aead import KEY_SIZE, SealingKey
from .errors import CryptoError
from .keyring import ACTIVE, Keyring, WrappedKey

__all__ = ["DATA_KEY_SIZE", "Envelope", "new_data_key", "owner_context"]

DATA_KEY_SIZE = KEY_SIZE


def new_data_key(random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """32 fresh random bytes for one owner's data key."""
    key = random_bytes(DATA_KEY_SIZE)
    if not isinstance(key, bytes) or len(key) != DATA_KEY_SIZE:
        raise ValueError(f"random source returned something other than {DATA_KEY_SIZE} bytes")
    return key


def owner_context(owner: str) -> bytes:
    """The wrapping context for `owner`, e.g. ``"consultation:42"`` → ``b"consultation:42"``.

    Binding the wrap to the owner means a wrapped key copied to another
    consultation's row does not unwrap there.
    """
    return text_field("owner", owner)


@dataclass(slots=True)
class _Cached:
    version: int
    blob: bytes
    dek: bytes = field(repr=False)
    sealer: SealingKey


class Envelope:
    """Envelope encryption over a `Keyring`, with a small LRU of unwrapped data keys.

    This is the process's one cache of data keys (the vault reads through it, see `cached`). It
    is keyed by owner and remembers the KEK version and wrapped blob each key came from. Every
    hit requires that KEK version to be active still, so retiring a version takes effect for
    cached keys too; a hit against a stored row also requires the row's version and blob.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        cache_size: int = 1024,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._keyring = keyring
        self._cache_size = cache_size
        self._random_bytes = random_bytes
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def create(self, owner: str) -> tuple[bytes, WrappedKey]:
        """A new data key for `owner` and its wrapped form, to be stored with the owner."""
        dek = new_data_key(self._random_bytes)
        wrapped = self._keyring.wrap(dek, owner_context(owner))
        self._remember(owner, wrapped, dek)
        return dek, wrapped

    def unwrap(self, owner: str, wrapped: WrappedKey) -> bytes:
        """The data key of `owner`, or `CryptoError`."""
        return self._entry(owner, wrapped).dek

    def sealing_key(self, owner: str, wrapped: WrappedKey) -> SealingKey:
        """A ready `SealingKey` for `owner`'s data key, or `CryptoError`."""
        return self._entry(owner, wrapped).sealer

    def rewrap(self, owner: str, wrapped: WrappedKey) -> WrappedKey:
        """`wrapped` re-encrypted under the current KEK version (unchanged if it already is).

        The data key itself stays the same, so nothing sealed with it changes.
        """
        if wrapped.version == self._keyring.current_version():
            return wrapped
        context = owner_context(owner)
        dek = self._keyring.unwrap(wrapped, context)
        rewrapped = self._keyring.wrap(dek, context)
        self._remember(owner, rewrapped, dek)
        return rewrapped

    def cached(self, owner: str) -> SealingKey | None:
        """The cached `SealingKey` of `owner` without reading its stored row, or None if none is
        cached; `CryptoError` (and the entry forgotten) if its KEK version is no longer active."""
        with self._lock:
            entry = self._cache.get(owner)
            if entry is not None:
                self._cache.move_to_end(owner)
        if entry is None:
            return None
        return self._checked(owner, entry).sealer

    def invalidate(self, owner: str) -> None:
        """Forget the cached data key of `owner` (crypto-shredding, revocation)."""
        with self._lock:
            self._cache.pop(owner, None)

    def clear(self) -> None:
        """Forget every cached data key."""
        with self._lock:
            self._cache.clear()

    def _entry(self, owner: str, wrapped: WrappedKey) -> _Cached:
        with self._lock:
            cached = self._cache.get(owner)
            if cached is not None and cached.version == wrapped.version and cached.blob == wrapped.blob:
                self._cache.move_to_end(owner)
            else:
                cached = None
        if cached is not None:
            return self._checked(owner, cached)
        dek = self._keyring.unwrap(wrapped, owner_context(owner))
        return self._remember(owner, wrapped, dek)

    def _checked(self, owner: str, entry: _Cached) -> _Cached:
        """``entry`` if its KEK version is still active; else forget it and fail."""
        if self._keyring.versions().get(entry.version) != ACTIVE:
            self.invalidate(owner)
            raise CryptoError()
        return entry

    def _remember(self, owner: str, wrapped: WrappedKey, dek: bytes) -> _Cached:
        entry = _Cached(wrapped.version, wrapped.blob, dek, SealingKey(dek))
        if self._cache_size == 0:
            return entry
        with self._lock:
            self._cache[owner] = entry
            self._cache.move_to_end(owner)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry
