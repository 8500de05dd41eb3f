"""Data keys per owner, wrapped by the keyring (envelope encryption), and the blind index.

Services seal and open values only through this: a value is bound to its table, row and field
by the associated data, so a ciphertext copied elsewhere fails to open.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from consult.crypto import CryptoError, Envelope, SealingKey, WrappedKey, aad_for, blind_index
from consult.crypto.keyring import FileKeyring
from consult.storage import keys as store

REGISTRY = "registry"


class Vault:
    def __init__(self, keyring: FileKeyring) -> None:
        self.keyring = keyring
        self.envelope = Envelope(keyring)

    def blind_index(self, value: str, *, domain: str) -> str:
        return blind_index(self.keyring.blind_index_key(), value, domain=domain)

    async def key(self, conn: AsyncConnection, owner: str, *, create_at: datetime | None = None) -> SealingKey:
        """The owner's data key; created (inside the caller's transaction) if ``create_at`` is given."""
        row = await store.get(conn, owner)
        if row is None:
            if create_at is None:
                raise CryptoError()
            dek, wrapped = self.envelope.create(owner)
            await store.insert_key(conn, owner, wrapped.version, wrapped.blob, create_at)
            return SealingKey(dek)
        if row["destroyed_at"] is not None or row["wrapped"] is None:
            raise CryptoError()
        return self.envelope.sealing_key(owner, WrappedKey(row["kek_version"], row["wrapped"]))

    @staticmethod
    def seal(key: SealingKey, table: str, row_id: str, field: str, plaintext: str) -> bytes:
        return key.seal(plaintext.encode("utf-8"), aad_for(table, row_id, field))

    @staticmethod
    def open(key: SealingKey, table: str, row_id: str, field: str, blob: bytes) -> str:
        return key.open(blob, aad_for(table, row_id, field)).decode("utf-8")
