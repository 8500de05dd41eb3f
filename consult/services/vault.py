"""Data keys per owner, wrapped by the keyring (envelope encryption), and the blind index.

Every consultation has its own data key (owner ``consultation:<id>``); the client registry has
one (owner ``registry``). Services seal and open values only through this, each bound by its
associated data to its table, row and field, so a ciphertext copied to another row, table or
field fails to open. Destroying an owner's data key (crypto-shredding) makes everything sealed
under it unreadable for good.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.crypto import CryptoError, Envelope, Keyring, SealingKey, WrappedKey, aad_for, blind_index
from consult.crypto.keyring import BlindIndexKeySource
from consult.storage import keys as store

REGISTRY = "registry"
CACHE_SIZE = 4096
"""Unwrapped data keys kept in memory (the envelope's one cache)."""


def consultation_owner(consultation_id: str) -> str:
    return f"consultation:{consultation_id}"


class Vault:
    def __init__(self, keyring: Keyring, index_keys: BlindIndexKeySource) -> None:
        self.keyring = keyring
        self.index_keys = index_keys
        # The one cache of unwrapped data keys is the envelope's: every hit passes its check that
        # the key-encryption key version is still active. Shredding evicts the owner's entry.
        self.envelope = Envelope(keyring, cache_size=CACHE_SIZE)

    def blind_index(self, value: str, *, domain: str) -> str:
        return blind_index(self.index_keys.blind_index_key(), value, domain=domain)

    async def key(self, conn: AsyncConnection, owner: str, *, create_at: datetime | None = None) -> SealingKey:
        """The owner's data key; created (inside the caller's transaction) if ``create_at`` is given."""
        # A consultation's key may be taken from the cache: its owner id is never used again, so a
        # key cached inside a transaction that then rolled back is never asked for. The registry's
        # is shared: its row is read every time, so a cached key stands only while it is stored.
        cached = self.envelope.cached(owner) if owner != REGISTRY else None
        if cached is not None:
            return cached
        row = await store.get(conn, owner)
        if row is None:
            if create_at is None:
                raise CryptoError()
            dek, wrapped = self.envelope.create(owner)
            # Not cached by its creation: the transaction storing it may still roll back, and a shared
            # owner (the registry) would then go on using a key stored nowhere. The next use reads the row.
            self.envelope.invalidate(owner)
            if await store.insert_key_if_absent(conn, owner, wrapped.version, wrapped.blob, create_at):
                return SealingKey(dek)
            # Another instance created this owner's key at the same moment and committed first.
            row = await store.get(conn, owner)
            if row is None:
                raise CryptoError()
        if row["destroyed_at"] is not None or row["wrapped"] is None:
            raise CryptoError()
        return self.envelope.sealing_key(owner, WrappedKey(row["kek_version"], bytes(row["wrapped"])))

    def forget(self, owner: str) -> None:
        self.envelope.invalidate(owner)

    @staticmethod
    def seal(key: SealingKey, table: str, row_id: str, field: str, plaintext: str) -> bytes:
        return key.seal(plaintext.encode("utf-8"), aad_for(table, row_id, field))

    @staticmethod
    def open(key: SealingKey, table: str, row_id: str, field: str, blob: bytes) -> str:
        return key.open(bytes(blob), aad_for(table, row_id, field)).decode("utf-8")

    @staticmethod
    def seal_bytes(key: SealingKey, table: str, row_id: str, field: str, data: bytes) -> bytes:
        return key.seal(data, aad_for(table, row_id, field))

    @staticmethod
    def open_bytes(key: SealingKey, table: str, row_id: str, field: str, blob: bytes) -> bytes:
        return key.open(bytes(blob), aad_for(table, row_id, field))
