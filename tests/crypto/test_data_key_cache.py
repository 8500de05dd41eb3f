"""One cache of unwrapped data keys per process (the envelope's, consult/crypto/datakey.py): the
vault reads through it, so its check that the key-encryption key version is still active applies
to every path, a service call included."""

from __future__ import annotations

import pathlib

import pytest

from consult.crypto import CryptoError
from consult.http import keys
from consult.services.vault import REGISTRY
from tests.conftest import Api
from tests.synthetic import hetu

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_no_second_data_key_cache() -> None:
    """Only the envelope keeps unwrapped data keys: no other module under crypto/ or services/
    holds an LRU of its own."""
    holders = {p.relative_to(ROOT).as_posix() for folder in ("crypto", "services")
               for p in (ROOT / "consult" / folder).rglob("*.py")
               if "OrderedDict" in p.read_text(encoding="utf-8") or "lru_cache" in p.read_text(encoding="utf-8")}
    # holidays.py caches a year's public holidays, gate.py a display name scanned once: no keys.
    assert holders == {"consult/crypto/datakey.py", "consult/services/holidays.py", "consult/services/gate.py"}


async def test_a_retired_version_stops_a_cached_key_on_the_service_path(api: Api) -> None:
    """A data key the service has cached is refused once its key-encryption key version is
    retired, exactly as a key read from its row would be (before, the vault's own cache kept
    handing it out)."""
    await api.register(hetu(1))  # the registry's data key is now unwrapped and cached
    vault = api.client.app[keys.CLIENTS].vault
    async with api.client.app[keys.DB].read() as conn:
        assert await vault.key(conn, REGISTRY) is vault.envelope.cached(REGISTRY)
        keyring = vault.keyring
        old = keyring.current_version()
        keyring.add_version()
        keyring.retire(old)
        with pytest.raises(CryptoError):
            await vault.key(conn, REGISTRY)
    assert vault.envelope.cached(REGISTRY) is None  # the refused entry is forgotten


async def test_shredding_forgets_the_one_cached_copy(api: Api) -> None:
    await api.register(hetu(2))  # creates the registry's key, not cached before it is stored
    await api.register(hetu(3))  # reads it back from its row: cached
    vault = api.client.app[keys.CLIENTS].vault
    assert vault.envelope.cached(REGISTRY) is not None
    vault.forget(REGISTRY)
    assert vault.envelope.cached(REGISTRY) is None
