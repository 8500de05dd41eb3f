"""Data keys (DEKs): one random AES-256 key per owner (a consultation, a client
record), stored only wrapped by the keyring, and the envelope that creates,
unwraps, caches, rewraps and forgets them.

Crypto-shredding (SPEC C4 retention) is deleting the owner's wrapped key from
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
    blob: bytes
    dek: bytes = field(repr=False)
    sealer: SealingKey


class Envelope:
    """Envelope encryption over a `Keyring`, with a small LRU of unwrapped data keys.

    The cache is keyed by (owner, KEK version). A hit still requires the stored
    blob to match and the KEK version to be active, so retiring a version takes
    effect for cached keys too.
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
        self._cache: OrderedDict[tuple[str, int], _Cached] = OrderedDict()
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

    def invalidate(self, owner: str) -> None:
        """Forget every cached data key of `owner` (crypto-shredding, revocation)."""
        with self._lock:
            for key in [key for key in self._cache if key[0] == owner]:
                del self._cache[key]

    def clear(self) -> None:
        """Forget every cached data key."""
        with self._lock:
            self._cache.clear()

    def _entry(self, owner: str, wrapped: WrappedKey) -> _Cached:
        slot = (owner, wrapped.version)
        with self._lock:
            cached = self._cache.get(slot)
            if cached is not None and cached.blob == wrapped.blob:
                self._cache.move_to_end(slot)
            else:
                cached = None
        if cached is not None:
            if self._keyring.versions().get(wrapped.version) != ACTIVE:
                self.invalidate(owner)
                raise CryptoError()
            return cached
        dek = self._keyring.unwrap(wrapped, owner_context(owner))
        return self._remember(owner, wrapped, dek)

    def _remember(self, owner: str, wrapped: WrappedKey, dek: bytes) -> _Cached:
        entry = _Cached(wrapped.blob, dek, SealingKey(dek))
        if self._cache_size == 0:
            return entry
        with self._lock:
            self._cache[(owner, wrapped.version)] = entry
            self._cache.move_to_end((owner, wrapped.version))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry
