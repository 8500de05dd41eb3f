"""Envelope encryption: per-owner data keys, the unwrap cache and its
invalidation (crypto-shredding), and rewrapping during key rotation."""

from __future__ import annotations

import pytest

from consult.crypto import (
    CryptoError,
    Envelope,
    FileKeyring,
    WrappedKey,
    aad_for,
    new_data_key,
    open_sealed,
    owner_context,
)


class CountingKeyring:
    """The real keyring, with a count of unwraps, to observe the cache."""

    def __init__(self, inner: FileKeyring) -> None:
        self.inner = inner
        self.unwraps = 0

    def current_version(self) -> int:
        return self.inner.current_version()

    def versions(self) -> dict[int, str]:
        return self.inner.versions()

    def wrap(self, dek: bytes, context: bytes) -> WrappedKey:
        return self.inner.wrap(dek, context)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap(wrapped, context)

    def add_version(self) -> int:
        return self.inner.add_version()

    def retire(self, version: int) -> None:
        self.inner.retire(version)


@pytest.fixture
def counting(keyring: FileKeyring) -> CountingKeyring:
    return CountingKeyring(keyring)


def test_new_data_key_is_32_fresh_bytes() -> None:
    keys = {new_data_key() for _ in range(50)}
    assert len(keys) == 50 and all(len(k) == 32 for k in keys)
    with pytest.raises(ValueError):
        new_data_key(lambda n: bytes(n - 1))


def test_owner_context_is_the_owner_name() -> None:
    assert owner_context("consultation:42") == b"consultation:42"
    with pytest.raises(ValueError):
        owner_context("")


def test_create_and_unwrap_round_trip(keyring: FileKeyring) -> None:
    envelope = Envelope(keyring)
    dek, wrapped = envelope.create("consultation:1")
    assert len(dek) == 32 and wrapped.version == 1
    assert Envelope(keyring).unwrap("consultation:1", wrapped) == dek


def test_wrapped_key_moved_to_another_owner_fails(keyring: FileKeyring) -> None:
    """Owner binding: one consultation's wrapped key does not open another's."""
    _, wrapped = Envelope(keyring).create("consultation:1")
    with pytest.raises(CryptoError):
        Envelope(keyring).unwrap("consultation:2", wrapped)


def test_message_sealed_under_a_consultation_key_is_bound_to_its_row(keyring: FileKeyring) -> None:
    """docs/capabilities.md C4 end to end: DEK per consultation, AAD per row; a moved ciphertext fails."""
    envelope = Envelope(keyring)
    dek, wrapped = envelope.create("consultation:9")
    sealer = envelope.sealing_key("consultation:9", wrapped)
    blob = sealer.seal(b"Toimeentulotukihakemus saapunut", aad_for("messages", "m-1", "text", "consultation:9"))
    assert open_sealed(dek, blob, aad_for("messages", "m-1", "text", "consultation:9"))
    with pytest.raises(CryptoError):
        sealer.open(blob, aad_for("messages", "m-2", "text", "consultation:9"))


def test_unwrap_is_cached_per_owner_and_version(counting: CountingKeyring) -> None:
    envelope = Envelope(counting)
    _, wrapped = Envelope(counting).create("consultation:1")
    envelope.unwrap("consultation:1", wrapped)
    envelope.unwrap("consultation:1", wrapped)
    envelope.sealing_key("consultation:1", wrapped)
    assert counting.unwraps == 1


def test_cache_hit_requires_the_same_wrapped_blob(counting: CountingKeyring) -> None:
    """A cached key is not handed out for a different (e.g. tampered) stored blob."""
    envelope = Envelope(counting)
    _, wrapped = envelope.create("consultation:1")
    tampered = WrappedKey(wrapped.version, wrapped.blob[:-1] + bytes([wrapped.blob[-1] ^ 1]))
    with pytest.raises(CryptoError):
        envelope.unwrap("consultation:1", tampered)


def test_invalidate_forgets_only_that_owner(counting: CountingKeyring) -> None:
    """Crypto-shredding: after invalidate the process holds no copy of the owner's key."""
    envelope = Envelope(counting)
    _, first = envelope.create("consultation:1")
    _, second = envelope.create("consultation:2")
    envelope.invalidate("consultation:1")
    envelope.unwrap("consultation:2", second)
    assert counting.unwraps == 0
    envelope.unwrap("consultation:1", first)
    assert counting.unwraps == 1
    envelope.clear()
    envelope.unwrap("consultation:2", second)
    assert counting.unwraps == 2


def test_cache_is_bounded_lru(counting: CountingKeyring) -> None:
    envelope = Envelope(counting, cache_size=2)
    wrapped = {owner: envelope.create(owner)[1] for owner in ("c:1", "c:2", "c:3")}
    envelope.unwrap("c:2", wrapped["c:2"])
    envelope.unwrap("c:3", wrapped["c:3"])
    assert counting.unwraps == 0
    envelope.unwrap("c:1", wrapped["c:1"])  # evicted, oldest
    assert counting.unwraps == 1
    with pytest.raises(ValueError):
        Envelope(counting, cache_size=-1)


def test_cache_disabled(counting: CountingKeyring) -> None:
    envelope = Envelope(counting, cache_size=0)
    _, wrapped = envelope.create("c:1")
    envelope.unwrap("c:1", wrapped)
    envelope.unwrap("c:1", wrapped)
    assert counting.unwraps == 2


def test_cached_key_under_a_retired_version_fails(keyring: FileKeyring, open_keyring) -> None:
    """Retirement, even by another process, applies to keys already in the cache."""
    envelope = Envelope(keyring)
    _, wrapped = envelope.create("consultation:1")
    cli = open_keyring()
    cli.add_version()
    cli.retire(1)
    with pytest.raises(CryptoError):
        envelope.unwrap("consultation:1", wrapped)
    with pytest.raises(CryptoError):
        envelope.unwrap("consultation:1", wrapped)


def test_rewrap_moves_a_key_to_the_current_version(keyring: FileKeyring) -> None:
    """Rotation without re-encrypting data: the DEK stays, only its wrapping changes."""
    envelope = Envelope(keyring)
    dek, old = envelope.create("consultation:1")
    assert envelope.rewrap("consultation:1", old) is old  # already current
    keyring.add_version()
    new = envelope.rewrap("consultation:1", old)
    assert new.version == 2 and new.blob != old.blob
    keyring.retire(1)
    fresh = Envelope(keyring)
    assert fresh.unwrap("consultation:1", new) == dek
    with pytest.raises(CryptoError):
        fresh.unwrap("consultation:1", old)


def test_rewrap_with_wrong_owner_fails(keyring: FileKeyring) -> None:
    envelope = Envelope(keyring)
    _, old = envelope.create("consultation:1")
    keyring.add_version()
    with pytest.raises(CryptoError):
        envelope.rewrap("consultation:2", old)
