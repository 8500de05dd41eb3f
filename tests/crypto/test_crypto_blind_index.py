"""Blind indexes: HMAC-SHA256 against RFC 4231, the frozen index format,
normalisation, domain separation and independence from KEK rotation."""

from __future__ import annotations

import hashlib

import pytest
from crypto_vectors import load_vectors

from consult.crypto import HETU_DOMAIN, FileKeyring, blind_index
from consult.crypto.blind_index import hmac_sha256

KEY = bytes(range(0xC0, 0xE0))
HETU = "010101-900R"  # synthetic: individual numbers 900-999 are never issued


@pytest.mark.parametrize("vector", load_vectors("hmac_sha256_rfc4231.json"), ids=lambda v: f"tc{v['tc_id']}")
def test_hmac_sha256_rfc4231(vector: dict) -> None:
    key, data = bytes.fromhex(vector["key"]), bytes.fromhex(vector["data"])
    assert hmac_sha256(key, data).hex() == vector["mac"]


@pytest.mark.parametrize("vector", load_vectors("blind_index.json"), ids=lambda v: f"{v['domain']}:{v['value'].strip()}")
def test_blind_index_is_frozen(vector: dict) -> None:
    """Stored index values stay findable: the index input encoding never drifts."""
    key = bytes.fromhex(vector["key"])
    assert blind_index(key, vector["value"], domain=vector["domain"]) == vector["index"]


def test_same_value_in_any_harmless_spelling_gives_the_same_index() -> None:
    """docs/capabilities.md C3: the same HETU gives the same client_ref, however it was typed."""
    expected = blind_index(KEY, HETU, domain=HETU_DOMAIN)
    for spelling in (" 010101-900r ", "010101-900r", "\t010101-900R\n", "０１０１０１-９００Ｒ"):
        assert blind_index(KEY, spelling, domain=HETU_DOMAIN) == expected


def test_index_is_64_hex_digits_and_not_a_plain_hash() -> None:
    """Not enumerable: the index is not the unkeyed SHA-256 an attacker could precompute."""
    index = blind_index(KEY, HETU, domain=HETU_DOMAIN)
    assert len(index) == 64 and index == index.lower() and int(index, 16) >= 0
    assert index != hashlib.sha256(HETU.encode()).hexdigest()
    assert HETU not in index


def test_key_and_domain_separate_indexes() -> None:
    base = blind_index(KEY, HETU, domain=HETU_DOMAIN)
    assert blind_index(bytes(32), HETU, domain=HETU_DOMAIN) != base
    assert blind_index(KEY, HETU, domain="audit.hetu") != base
    assert blind_index(KEY, "010101-901T", domain=HETU_DOMAIN) != base


def test_custom_normalisation() -> None:
    exact = blind_index(KEY, "Abc", domain="token", normalise=lambda v: v)
    assert exact != blind_index(KEY, "abc", domain="token", normalise=lambda v: v)


def test_index_survives_kek_rotation(keyring: FileKeyring, open_keyring) -> None:
    """Rotating KEKs must not orphan every client lookup."""
    before = blind_index(keyring.blind_index_key(), HETU, domain=HETU_DOMAIN)
    keyring.add_version()
    keyring.retire(1)
    after = blind_index(open_keyring().blind_index_key(), HETU, domain=HETU_DOMAIN)
    assert after == before


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_wrong_key_length_raises_value_error(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        blind_index(bytes(size), HETU, domain=HETU_DOMAIN)


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_empty_value_raises_value_error(value: str) -> None:
    with pytest.raises(ValueError):
        blind_index(KEY, value, domain=HETU_DOMAIN)


def test_domain_is_required_and_non_empty() -> None:
    with pytest.raises(ValueError):
        blind_index(KEY, HETU, domain="")
    with pytest.raises(TypeError):
        blind_index(KEY, HETU)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        blind_index(KEY, b"010101-900R", domain=HETU_DOMAIN)  # type: ignore[arg-type]
